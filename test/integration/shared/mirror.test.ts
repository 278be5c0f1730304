/**
 * The zone mirror against a real etcd: the first snapshot, events from
 * another client's writes, this daemon's own writes applied at once, old
 * events and deleted keys never coming back, bad entries skipped and
 * logged once, and a fresh snapshot (reported as events) after the watch
 * was cut while others wrote. The zone mirror leaves the deadlines
 * (until/) out; the publisher's deadline schedule reads them when it needs
 * them, and is tested here too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3, Range, type Namespace } from 'etcd3';
import { Algorithm } from '../../../src/dns/constants.js';
import { generateKeyPair, keyTag, publicKeyToRData } from '../../../src/dns/keys.js';
import type { AddrRecord } from '../../../src/daemon/records.js';
import type { KeyRData } from '../../../src/dns/types.js';
import type { MirrorEvent, SharedStore, StoreConfig, ZoneMirror } from '../../../src/daemon/shared/contract.js';
import { openSharedStore } from '../../../src/daemon/shared/etcd.js';
import type { EtcdZoneMirror } from '../../../src/daemon/shared/mirror.js';
import { readAtOneRevision } from '../../../src/daemon/shared/reads.js';
import { DeadlineSchedule } from '../../../src/daemon/shared/deadlines.js';
import { fragmentingWatcher, WatchAssembler } from '../../../src/daemon/shared/watch.js';
import {
  changeKey,
  claimKey,
  deadlinesKey,
  encodeChange,
  encodeClaim,
  encodeDeadlines,
  encodeRecord,
  encodeResult,
  recordPath,
  resultKey,
  SERIAL_KEY,
  zoneNamespacePrefix,
} from '../../../src/daemon/shared/layout.js';
import { startEtcdCluster, type EtcdCluster } from '../../helpers/etcd.js';
import { eventually } from '../../helpers/eventually.js';
import { logSink, type LogLine } from '../../helpers/log-sink.js';

const ZONE = 'example.test.';
const PREFIX = '/mirror-test';
const rec = (name: string, address: string, ttl = 300): AddrRecord => ({ name, type: address.includes(':') ? 'AAAA' : 'A', address, ttl });
/** Claims of different versions hold different keys (a claim holds nothing else that changes). */
const keys = new Map<number, KeyRData>();
function keyOf(version: number): KeyRData {
  let k = keys.get(version);
  if (k === undefined) keys.set(version, (k = publicKeyToRData(generateKeyPair(Algorithm.ED25519).publicKey, Algorithm.ED25519)));
  return k;
}
const rdata = keyOf(0);
const claimValue = (version: number): string => encodeClaim({ rdata: keyOf(version), keyTag: keyTag(keyOf(version)) });
/** Which claimValue(version) a mirrored claim is. */
const versionOf = (c: { value: { rdata: KeyRData } } | undefined): number | undefined =>
  [...keys].find(([, k]) => c !== undefined && k.publicKey.equals(c.value.rdata.publicKey))?.[0];

function config(endpoints: readonly string[], prefix: string): StoreConfig {
  return { type: 'etcd', endpoints, prefix, timeoutMs: 2000, leaseMs: 1000 };
}

/** Collects a mirror's events. */
function events(m: ZoneMirror): MirrorEvent[] {
  const seen: MirrorEvent[] = [];
  m.onEvent((e) => seen.push(e));
  return seen;
}

const skipped = (lines: LogLine[]): LogLine[] => lines.filter((l) => l.msg.includes('does not decode'));

describe('zone mirror', () => {
  let cluster: EtcdCluster;
  let raw: Etcd3;
  let ns: Namespace;
  let store: SharedStore;
  let mirror: EtcdZoneMirror;
  let log: LogLine[];

  before(async () => {
    cluster = await startEtcdCluster({ members: 1 });
    raw = new Etcd3({ hosts: [...cluster.endpoints] });
    ns = raw.namespace(zoneNamespacePrefix(PREFIX, ZONE));
    // What another daemon wrote before this one started, plus some damage.
    await ns.put(claimKey('a.example.test.')).value(claimValue(0));
    await ns.put(recordPath(rec('a.example.test.', '192.0.2.1'))).value(encodeRecord({ ttl: 300 }));
    await ns.put(recordPath(rec('a.example.test.', '2001:db8::1', 60))).value(encodeRecord({ ttl: 60 }));
    // Deadlines, one of them damaged: the zone mirror reads neither.
    await ns.put(deadlinesKey('a.example.test.')).value(encodeDeadlines({ expiry: 1_900_000_000_000, records: new Map([['A/192.0.2.1', 1_900_000_000_000]]) }));
    await ns.put(deadlinesKey('b.example.test.')).value('{"expiry":"soon"}');
    await ns.put(changeKey('c2')).value(encodeChange({ by: 'd2', at: 2, change: { add: [rec('a.example.test.', '192.0.2.1')], remove: [], removeNames: [] } }));
    await ns.put(changeKey('c1')).value(encodeChange({ by: 'd1', at: 1, change: { add: [], remove: [], removeNames: [] } }));
    await ns.put(resultKey('c0')).value(encodeResult({ ok: false, reason: 'upstream down' }));
    await ns.put(SERIAL_KEY).value('1');
    await ns.put('leader').value('d2');
    await ns.put('junk/key').value('x');
    await ns.put(claimKey('b.example.test.')).value('{"not":"a claim"}');
    await ns.put(claimKey('other.test.')).value(claimValue(1));
    await ns.put('zzz').value('after until/: in no mirror');
    const sink = logSink();
    log = sink.lines;
    store = await openSharedStore(config(cluster.endpoints, PREFIX), sink.logger);
    mirror = (await store.mirror(ZONE)) as EtcdZoneMirror;
  });
  after(async () => {
    await store.close();
    raw.close();
    await cluster.close();
  });

  it('loads a consistent snapshot, skipping and logging what does not decode', async () => {
    assert.equal(mirror.zone, ZONE);
    assert.equal(mirror.current, true);
    assert.equal(await store.mirror('EXAMPLE.test'), mirror, 'one mirror per zone');
    assert.equal(mirror.claimCount, 1);
    assert.deepEqual(mirror.claim('a.example.test.')?.value.rdata, rdata);
    assert.equal(mirror.claim('b.example.test.'), undefined);
    assert.equal(mirror.recordCount, 2);
    assert.deepEqual(
      mirror.records('a.example.test.').map((r) => r.record).sort((x, y) => x.address.localeCompare(y.address)),
      [rec('a.example.test.', '192.0.2.1'), rec('a.example.test.', '2001:db8::1', 60)],
    );
    assert.deepEqual(mirror.changes().map((c) => c.id), ['c2', 'c1'], 'oldest (lowest create revision) first');
    assert.equal(mirror.result('c0'), false);
    assert.notEqual(mirror.dataVersion, '0');
    const serial = await ns.get(SERIAL_KEY).exec();
    assert.equal(mirror.dataVersion, serial.kvs[0].mod_revision);
    assert.equal(BigInt(mirror.revision) >= BigInt(serial.header.revision), true);
    const bad = skipped(log).map((l) => l.key);
    assert.deepEqual(bad.sort(), ['junk/key', claimKey('b.example.test.'), claimKey('other.test.')].sort());
  });

  it('reports the writes of another client as events once caught up to their revision', async () => {
    const seen = events(mirror);
    const put = await ns.put(recordPath(rec('c.example.test.', '192.0.2.9'))).value(encodeRecord({ ttl: 120 }));
    await mirror.caughtUp(put.header.revision, 5000);
    assert.deepEqual(mirror.records('c.example.test.').map((r) => r.record), [rec('c.example.test.', '192.0.2.9', 120)]);
    const del = await ns.delete().key(recordPath(rec('a.example.test.', '2001:db8::1'))).exec();
    const claim = await ns.put(claimKey('c.example.test.')).value(claimValue(7));
    const result = await ns.put(resultKey('c1')).value(encodeResult({ ok: true }));
    await mirror.caughtUp(result.header.revision, 5000);
    const all = seen.flatMap((e) => [
      ...e.records.added.map((r) => `+${r.name}/${r.address}`),
      ...e.records.removed.map((r) => `-${r.name}/${r.address}`),
      ...e.claims.put.map((n) => `claim ${n}`),
      ...e.results.map((r) => `result ${r.id} ${r.ok}`),
    ]);
    assert.deepEqual(all, ['+c.example.test./192.0.2.9', '-a.example.test./2001:db8::1', 'claim c.example.test.', 'result c1 true']);
    assert.ok(BigInt(del.header.revision) < BigInt(claim.header.revision));
    assert.equal(mirror.result('c1'), true);
    assert.equal(mirror.recordCount, 2);
    // A record written again with its TTL is no record change.
    const before = seen.length;
    const rewrite = await ns.put(recordPath(rec('c.example.test.', '192.0.2.9'))).value(encodeRecord({ ttl: 120 }));
    await mirror.caughtUp(rewrite.header.revision, 5000);
    assert.equal(mirror.records('c.example.test.')[0].entry.modRevision, rewrite.header.revision);
    assert.deepEqual(seen.slice(before).flatMap((e) => [...e.records.added, ...e.records.removed]), []);
    // Deadlines are not the zone mirror's: a write of them alone reaches it not at all.
    const quiet = seen.length;
    const until = await ns.put(deadlinesKey('c.example.test.')).value(encodeDeadlines({ expiry: 5, records: new Map() }));
    const serial = await ns.put(SERIAL_KEY).value('2');
    await mirror.caughtUp(serial.header.revision, 5000);
    assert.ok(BigInt(until.header.revision) < BigInt(serial.header.revision));
    assert.deepEqual(
      seen.slice(quiet).map((e) => [e.claims.put, e.records.added]),
      [[[], []]],
      'one event: the serial',
    );
  });

  it('applies its own writes at once and ignores the watch reporting them again', async () => {
    const seen = events(mirror);
    const key = claimKey('own.example.test.');
    const value = claimValue(42);
    const txn = await ns.if(key, 'Create', '==', 0).then(ns.put(key).value(value)).commit();
    assert.equal(txn.succeeded, true);
    mirror.applyOwn(txn.header.revision, { puts: [{ key, value }] });
    assert.equal(mirror.claim('own.example.test.')?.createRevision, txn.header.revision);
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0].claims.put, ['own.example.test.']);
    await mirror.caughtUp(txn.header.revision, 5000);
    assert.equal(seen.length, 1, 'the watch echo of an own write is no new event');
    // A refresh keeps the claim's create revision.
    const refresh = await ns.put(key).value(claimValue(43));
    mirror.applyOwn(refresh.header.revision, { puts: [{ key, value: claimValue(43) }] });
    assert.equal(mirror.claim('own.example.test.')?.createRevision, txn.header.revision);
    assert.equal(mirror.claim('own.example.test.')?.modRevision, refresh.header.revision);
    assert.equal(versionOf(mirror.claim('own.example.test.')), 43);
    // An own write the mirror has already passed (the watch or a snapshot saw it, and maybe later ones) changes nothing.
    await mirror.caughtUp(refresh.header.revision, 5000);
    const count = seen.length;
    mirror.applyOwn(txn.header.revision, { puts: [{ key, value: claimValue(42) }], deletes: [claimKey('a.example.test.')] });
    assert.equal(versionOf(mirror.claim('own.example.test.')), 43);
    assert.ok(mirror.claim('a.example.test.') !== undefined);
    assert.equal(seen.length, count);
  });

  it('never lets an older put or a put older than a delete go back', async () => {
    const key = claimKey('race.example.test.');
    // An own write etcd ordered after what the watch still has to report.
    mirror.applyOwn('100000000', { puts: [{ key, value: claimValue(1000) }] });
    const older = await ns.put(key).value(claimValue(1));
    await mirror.caughtUp(older.header.revision, 5000);
    assert.equal(versionOf(mirror.claim('race.example.test.')), 1000);

    const gone = claimKey('gone.example.test.');
    mirror.applyOwn('100000001', { deletes: [gone] });
    assert.equal(mirror.tombstones, 1);
    const late = await ns.put(gone).value(claimValue(5));
    await mirror.caughtUp(late.header.revision, 5000);
    assert.equal(mirror.claim('gone.example.test.'), undefined, 'a delete is not undone by an older put');

    // A tombstone goes once the mirror's revision has passed it.
    const realKey = claimKey('real.example.test.');
    await ns.put(realKey).value(claimValue(9));
    const del = await ns.delete().key(realKey).exec();
    mirror.applyOwn(del.header.revision, { deletes: [realKey] });
    assert.equal(mirror.claim('real.example.test.'), undefined);
    await mirror.caughtUp(del.header.revision, 5000);
    assert.equal(mirror.tombstones, 1, 'only the far-future tombstone is left');
  });

  it('drops an entry whose value goes bad, logging each bad key once', async () => {
    const seen = events(mirror);
    const key = claimKey('c.example.test.');
    const badBefore = skipped(log).length;
    await ns.put(key).value('garbage');
    const again = await ns.put(key).value('{"still":"garbage"}');
    await mirror.caughtUp(again.header.revision, 5000);
    assert.equal(mirror.claim('c.example.test.'), undefined);
    assert.deepEqual(seen.flatMap((e) => e.claims.deleted), ['c.example.test.']);
    assert.equal(skipped(log).length, badBefore + 1);
    const good = await ns.put(key).value(claimValue(8));
    await mirror.caughtUp(good.header.revision, 5000);
    assert.equal(versionOf(mirror.claim('c.example.test.')), 8);
  });

  it('the deadline schedule loads every until/ entry, learns only what it is told or reads again, and logs what does not decode', async () => {
    const untilLog = logSink();
    const schedule = new DeadlineSchedule({ zone: ZONE, namespace: ns, run: (what, op) => store.run(what, op), logger: untilLog.logger });
    await schedule.load();
    assert.deepEqual(schedule.deadlines('a.example.test.')?.value, { expiry: 1_900_000_000_000, records: new Map([['A/192.0.2.1', 1_900_000_000_000]]) });
    assert.equal(schedule.deadlines('c.example.test.')?.value.expiry, 5);
    assert.equal(schedule.deadlines('b.example.test.'), undefined);
    assert.deepEqual(
      untilLog.lines.filter((l) => l.msg.includes('do not decode')).map((l) => l.name),
      ['b.example.test.'],
    );
    assert.equal(schedule.size, 2);
    assert.deepEqual(schedule.scan(1_000), { due: ['c.example.test.'], next: 1_900_000_000_000 });

    // Another daemon's refresh (until/ alone) reaches nobody: the schedule still holds what it read.
    const refreshed = await ns.put(deadlinesKey('c.example.test.')).value(encodeDeadlines({ expiry: 6, signedAt: 3, records: new Map([['AAAA/2001:db8::1', 4]]) }));
    assert.equal(schedule.deadlines('c.example.test.')?.value.expiry, 5);
    // Read again (as an expiry does before acting), it has the new deadlines.
    assert.deepEqual(await schedule.reread(['c.example.test.'], 10), ['c.example.test.']);
    assert.deepEqual(schedule.deadlines('c.example.test.')?.value, { expiry: 6, signedAt: 3, records: new Map([['AAAA/2001:db8::1', 4]]) });
    assert.equal(schedule.deadlines('c.example.test.')?.modRevision, refreshed.header.revision);
    assert.deepEqual(schedule.scan(4), { due: ['c.example.test.'], next: 1_900_000_000_000 }, 'a record due before the claim counts');
    assert.deepEqual(schedule.scan(3).due, []);

    // A change reported by the zone mirror is read at the next reread; one no newer than what is held is not.
    assert.equal(schedule.changed('c.example.test.', refreshed.header.revision), false);
    const moved = await ns.put(deadlinesKey('c.example.test.')).value(encodeDeadlines({ expiry: 8, records: new Map() }));
    assert.equal(schedule.changed('c.example.test.', moved.header.revision), true);
    assert.equal(schedule.changedCount, 1);
    assert.deepEqual(await schedule.reread([], 10), ['c.example.test.']);
    assert.equal(schedule.changedCount, 0);
    assert.equal(schedule.deadlines('c.example.test.')?.value.expiry, 8);

    // Own writes are taken at once; an older one, or an older read, does not go back.
    const mod = BigInt(moved.header.revision);
    schedule.note('c.example.test.', (mod + 1000n).toString(), { expiry: 9, records: new Map() });
    schedule.note('c.example.test.', (mod + 10n).toString(), { expiry: 10, records: new Map() });
    assert.equal(schedule.deadlines('c.example.test.')?.value.expiry, 9);
    await schedule.reread(['c.example.test.'], 10);
    assert.equal(schedule.deadlines('c.example.test.')?.value.expiry, 9, 'a read older than an own write does not undo it');
    // An own delete: a read from before it does not bring the name back, and the mirror's report of it needs no read.
    schedule.note('a.example.test.', (mod + 2000n).toString(), undefined);
    assert.equal(schedule.deadlines('a.example.test.'), undefined);
    assert.equal(schedule.changed('a.example.test.', (mod + 2000n).toString()), false);
    await schedule.reread(['a.example.test.'], 10);
    assert.equal(schedule.deadlines('a.example.test.'), undefined);

    // Gone from the store: gone from the schedule once read again.
    const d = await ns.put(deadlinesKey('d.example.test.')).value(encodeDeadlines({ expiry: 11, records: new Map() }));
    assert.equal(schedule.changed('d.example.test.', d.header.revision), true);
    await schedule.reread([], 10);
    assert.equal(schedule.deadlines('d.example.test.')?.value.expiry, 11);
    const gone = await ns.delete().key(deadlinesKey('d.example.test.')).exec();
    await schedule.reread(['d.example.test.'], 10);
    assert.equal(schedule.deadlines('d.example.test.'), undefined);
    assert.equal(schedule.changed('c.example.test.', gone.header.revision), false, 'held newer (an own write in the future)');
    assert.equal(schedule.changed('new.example.test.', gone.header.revision), true);
    assert.equal(schedule.changed('other.example.test.', gone.header.revision), true);
    // At most `limit` names a reread, the changed ones first.
    assert.deepEqual(await schedule.reread(['c.example.test.'], 2), ['new.example.test.', 'other.example.test.']);
    assert.equal(schedule.changedCount, 0);
    assert.equal(schedule.deadlines('new.example.test.'), undefined);
  });

  it('reads a range in pages at one revision, and stops early when asked', async () => {
    const paged = raw.namespace('/paged-test/');
    for (const k of ['k1', 'k2', 'k3', 'k4', 'k5']) await paged.put(k).value(k);
    let calls = 0;
    const run: SharedStore['run'] = async (what, op) => {
      // A write between the pages: after the read's revision, so not in it.
      if (++calls === 2) await paged.put('k6').value('late');
      return store.run(what, op);
    };
    const seen: string[] = [];
    const at = await readAtOneRevision(paged, run, 'paged', Range.prefix('k'), 2, (kv) => seen.push(kv.key.toString()));
    assert.deepEqual(seen, ['k1', 'k2', 'k3', 'k4', 'k5']);
    assert.equal(calls, 3, 'three pages of at most two keys');
    const now = await paged.get('k6').exec();
    assert.ok(at < BigInt(now.kvs[0].mod_revision));
    const first: string[] = [];
    await readAtOneRevision(paged, (what, op) => store.run(what, op), 'paged', Range.prefix('k'), 2, (kv) => first.push(kv.key.toString()), () => first.length > 0);
    assert.deepEqual(first, ['k1', 'k2'], 'stopped after the first page');
  });

  it('rejects caughtUp for a revision that does not come within the timeout', async () => {
    await assert.rejects(mirror.caughtUp('999999999', 50), { code: 'ERR_STORE_UNAVAILABLE' });
  });
});

describe('zone mirror: the watch cut while others write', () => {
  let cluster: EtcdCluster;
  let raw: Etcd3;

  before(async () => {
    cluster = await startEtcdCluster({ members: 3 });
    raw = new Etcd3({ hosts: [cluster.endpoints[1], cluster.endpoints[2]] });
  });
  after(async () => {
    raw.close();
    await cluster.close();
  });

  it('loads a fresh snapshot when its member comes back and reports what it missed', async () => {
    const ns = raw.namespace(zoneNamespacePrefix(PREFIX, ZONE));
    await ns.put(recordPath(rec('k.example.test.', '192.0.2.1'))).value(encodeRecord({ ttl: 300 }));
    await ns.put(recordPath(rec('k.example.test.', '192.0.2.2'))).value(encodeRecord({ ttl: 300 }));
    const { logger, lines } = logSink();
    // This daemon talks to member 0 only.
    const store = await openSharedStore(config([cluster.endpoints[0]], PREFIX), logger);
    try {
      const mirror = await store.mirror(ZONE);
      assert.equal(mirror.recordCount, 2);
      const seen = events(mirror);
      await cluster.stop(0);
      await eventually('the mirror to notice the watch is down', () => mirror.current, (c) => !c, 10_000);
      await ns.delete().key(recordPath(rec('k.example.test.', '192.0.2.1'))).exec();
      await ns.put(recordPath(rec('k.example.test.', '192.0.2.3'))).value(encodeRecord({ ttl: 300 }));
      await ns.put(recordPath(rec('k.example.test.', '192.0.2.2'))).value(encodeRecord({ ttl: 30 }));
      const last = await ns.put(claimKey('k.example.test.')).value(claimValue(3));
      await cluster.start(0);
      await mirror.caughtUp(last.header.revision, 15_000);
      assert.equal(mirror.current, true);
      assert.deepEqual(
        mirror.records('k.example.test.').map((r) => `${r.record.address}/${r.record.ttl}`).sort(),
        ['192.0.2.2/30', '192.0.2.3/300'],
      );
      assert.equal(versionOf(mirror.claim('k.example.test.')), 3);
      const added = seen.flatMap((e) => e.records.added.map((r) => `${r.address}/${r.ttl}`)).sort();
      const removed = seen.flatMap((e) => e.records.removed.map((r) => r.address));
      assert.deepEqual(added, ['192.0.2.2/30', '192.0.2.3/300']);
      assert.deepEqual(removed, ['192.0.2.1']);
      assert.deepEqual(seen.flatMap((e) => e.claims.put), ['k.example.test.']);
      assert.equal(lines.filter((l) => l.msg.includes('watch failed')).length, 1, 'the outage is logged once');
      assert.ok(lines.some((l) => l.msg.includes('current again')));
    } finally {
      await store.close();
    }
  });

  it('is not current while its member has no leader, though the member still runs', async () => {
    const { logger } = logSink();
    const store = await openSharedStore(config([cluster.endpoints[0]], PREFIX), logger);
    try {
      const mirror = await store.mirror(ZONE);
      assert.equal(mirror.current, true);
      await Promise.all([cluster.stop(1), cluster.stop(2)]);
      assert.equal(cluster.running(0), true);
      // etcd ends a leader-requiring watch after a few election timeouts without a leader.
      await eventually('the mirror to stop calling itself current', () => mirror.current, (c) => !c, 15_000);
      await Promise.all([cluster.start(1), cluster.start(2)]);
      const put = await raw.namespace(zoneNamespacePrefix(PREFIX, ZONE)).put(SERIAL_KEY).value('7');
      await mirror.caughtUp(put.header.revision, 15_000);
      assert.equal(mirror.current, true);
    } finally {
      await store.close();
    }
  });
});

describe('reads whose answers are larger than the client takes', () => {
  let cluster: EtcdCluster;
  let raw: Etcd3;
  let ns: Namespace;
  let store: SharedStore;
  let log: LogLine[];
  /** The revision of the first of them. */
  let firstRevision: bigint;
  /** 50 entries of 1.4 MB: 70 MB in one answer, above the client's 64 MB. */
  const BIG = 50;
  const bigName = (i: number): string => `big${i}.example.test.`;

  before(async () => {
    cluster = await startEtcdCluster({ members: 1 });
    raw = new Etcd3({ hosts: [...cluster.endpoints] });
    ns = raw.namespace(zoneNamespacePrefix(PREFIX, ZONE));
    // Written by something other than nsregd: large, and not deadlines at all.
    const junk = Buffer.alloc(1_400_000, 0x7a);
    for (let i = 0; i < BIG; i++) {
      const put = await ns.put(deadlinesKey(bigName(i))).value(junk);
      if (i === 0) firstRevision = BigInt(put.header.revision);
    }
    await ns.put(deadlinesKey('a.example.test.')).value(encodeDeadlines({ expiry: 1_900_000_000_000, records: new Map() }));
    await ns.put(deadlinesKey('zz.example.test.')).value(encodeDeadlines({ expiry: 5, records: new Map() }));
    const sink = logSink();
    log = sink.lines;
    store = await openSharedStore(config(cluster.endpoints, PREFIX), sink.logger);
    // Read through the store's own client (its fault policies), as the daemon does.
    ns = store.zoneNamespace(ZONE);
  });
  after(async () => {
    await store.close();
    raw.close();
    await cluster.close();
  });

  it('a paged read asks again with fewer keys, and etcd is not taken for unavailable', async () => {
    let calls = 0;
    const seen: string[] = [];
    await readAtOneRevision(
      ns,
      (what, op) => {
        calls++;
        return store.run(what, op);
      },
      'big',
      Range.prefix('until/'),
      1000,
      (kv) => seen.push(kv.key.toString()),
    );
    assert.equal(seen.length, BIG + 2);
    assert.deepEqual(seen, [...seen].sort(), 'in key order, each once');
    assert.ok(calls > 2, `asked again with smaller pages (${calls} requests)`);
    assert.equal(store.healthy, true);
    assert.deepEqual(log.filter((l) => l.msg.includes('unavailable')), []);
  });

  it('the deadline schedule loads them and reads them again in smaller transactions', async () => {
    const sink = logSink();
    const schedule = new DeadlineSchedule({ zone: ZONE, namespace: ns, run: (what, op) => store.run(what, op), logger: sink.logger });
    await schedule.load();
    assert.equal(schedule.size, 2, 'the two entries that decode');
    assert.equal(sink.lines.filter((l) => l.msg.includes('do not decode')).length, BIG);
    const names = [...Array.from({ length: BIG }, (_, i) => bigName(i)), 'a.example.test.', 'zz.example.test.'];
    assert.deepEqual(await schedule.reread(names, 64), names, 'every name read again (one transaction would have been 70 MB)');
    assert.deepEqual(schedule.scan(1_000), { due: ['zz.example.test.'], next: 1_900_000_000_000 });
    assert.equal(store.healthy, true);
  });

  it('a watch catching up over them gets them in parts, and hands on whole revisions only', async () => {
    // As the zone mirror's and the election's watches are made: etcd would otherwise send the 52
    // revisions as one 70 MB response, which the client refuses, again at every new attempt.
    const watcher = fragmentingWatcher(ns.watch().prefix('until/'), firstRevision);
    const parts = new WatchAssembler();
    let fragments = 0;
    let upTo = 0n;
    const seen: bigint[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${seen.length} of ${BIG + 2} events within 60 s`)), 60_000);
        const fail = (err: unknown): void => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        };
        watcher.on('disconnected', fail);
        watcher.on('error', fail);
        watcher.on('data', (res) => {
          if (res.fragment) fragments++;
          const whole = parts.take(res);
          for (const ev of whole.events) {
            const mod = BigInt(ev.kv.mod_revision);
            if (mod <= upTo) fail(new Error(`an event of revision ${mod} after revision ${upTo} was counted whole`));
            seen.push(mod);
          }
          if (whole.revision !== undefined) upTo = whole.revision;
          if (seen.length === BIG + 2) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    } finally {
      await watcher.cancel();
    }
    assert.ok(fragments >= BIG / 2, `${fragments} parts marked fragment`);
    assert.deepEqual(
      seen,
      Array.from({ length: BIG + 2 }, (_, i) => firstRevision + BigInt(i)),
    );
    assert.ok(upTo >= firstRevision + BigInt(BIG + 1), `whole up to ${upTo}`);
    assert.equal(parts.held, 0);
    assert.equal(store.healthy, true);
  });
});
