/**
 * Zone transfers out of the built-in zone server (RFC 5936 AXFR, RFC 1995
 * IXFR, RFC 8945 TSIG, RFC 1996 NOTIFY): real dig as the client, and real
 * BIND named and Knot knotd as secondaries of nsregd (hidden primary),
 * each through the initial transfer, the 10,000-name zone, a claim, a
 * refresh that changes nothing, a removal, an expiry and a restart.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Algorithm, RRClass, Rcode } from '../../src/dns/constants.js';
import { startKnotSecondary, type KnotLab } from '../helpers/knot.js';
import { startNamed, type NamedLab } from '../helpers/named.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { a, makeClient, signedUpdate } from '../helpers/sig0-client.js';
import { requireTool, run } from '../helpers/tools.js';
import { serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';

const ZONE = 'xfr.example.org.';
const REV = '2.0.192.in-addr.arpa.';
const KEY = { name: 'xfr-key.example.org.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
const now = (): number => Math.floor(Date.now() / 1000);

function zones(dnsPort: number, extra: Record<string, unknown> = {}): string {
  return zoneYaml(ZONE, {
    'max-key-ttl': '720h',
    'max-addr-ttl': '1h',
    'reserved-names': ['ns'],
    'allowed-nets': ['127.0.0.0/8'],
    'allow-any-addr': true,
    upstreams: [
      serveUpstream(dnsPort, {
        'record-ttl': '30s',
        'negative-ttl': '5s',
        'reverse-zones': [REV],
        'rate-limit': 0,
        'transfer-keys': [KEY],
        'allow-transfer': ['127.0.0.2/32'],
        'soa-refresh': '2m',
        'soa-retry': '30s',
        'soa-expire': '336h',
        ...extra,
      }),
    ],
  });
}

/** dig's AXFR/IXFR output: the records (one line each, blanks folded), and the trailer lines. */
async function transfer(port: number, args: string[]): Promise<{ records: string[]; raw: string }> {
  const r = await run(requireTool('dig'), ['@127.0.0.1', '-p', String(port), '+time=5', '+tries=1', '+nocmd', ...args], { timeoutMs: 30_000 });
  const raw = r.stdout;
  const records = raw
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith(';'))
    .map((l) => l.split(/\s+/).join(' '))
    .filter((l) => !/ ANY TSIG /.test(l));
  assert.equal(r.code === 0 || r.code === 9 || r.code === 1, true, `dig exited ${String(r.code)}: ${r.stderr}`);
  return { records, raw };
}

/** The message count of dig's "XFR size" line. */
const messages = (raw: string): number => Number(/XFR size: \d+ records \(messages (\d+)/.exec(raw)?.[1]);

const keyArg = (k: typeof KEY): string => `-y${k.algorithm}:${k.name}:${k.secret}`;

describe('zone transfers from the built-in zone server', () => {
  let d: NsregdLab;
  let dnsPort: number;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-xfr-'));
    dnsPort = await freePort();
    // Registrations of the large-zone test come quickly from one address (16 at a time, within connections-per-source).
    d = await startNsregd({ zonesYaml: zones(dnsPort), dir, extraYaml: 'limits:\n  sig-rate-per-source: 0\n' });
    for (const [label, addr] of [
      ['alpha', '192.0.2.10'],
      ['beta', '192.0.2.11'],
    ] as const) {
      const c = makeClient(label, ZONE, Algorithm.ED25519);
      assert.equal((await d.send(signedUpdate(c, [a(c.name, addr)], { now: now() }))).rcode, Rcode.NOERROR);
    }
  });

  after(async () => {
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('AXFR with the transfer key: the whole zone, SOA first and last, every message signed', async () => {
    const { records, raw } = await transfer(dnsPort, [keyArg(KEY), ZONE, 'AXFR']);
    assert.doesNotMatch(raw, /Transfer failed|tsig verify failure|; TSIG error/i, raw);
    assert.match(records[0] ?? '', new RegExp(`^${ZONE} 5 IN SOA ns\\.${ZONE} hostmaster\\.${ZONE} \\d+ 120 30 1209600 5$`));
    assert.equal(records.at(-1), records[0], 'SOA last');
    // dig prints the TSIG RR of each signed message; every one is there and verified (no "tsig verify failure").
    assert.ok((raw.match(/\sANY\s+TSIG\s/g) ?? []).length >= 1, raw);
    const body = records.slice(1, -1);
    assert.ok(body.includes(`${ZONE} 3600 IN NS ns.${ZONE}`), raw);
    assert.ok(body.includes(`ns.${ZONE} 3600 IN A 127.0.0.1`), raw);
    assert.ok(body.includes(`alpha.${ZONE} 30 IN A 192.0.2.10`), raw);
    assert.ok(body.includes(`beta.${ZONE} 30 IN A 192.0.2.11`), raw);
    assert.ok(body.some((l) => l.startsWith(`_nsreg._tcp.${ZONE} 30 IN SRV 0 0 ${d.port} `)), raw);
    assert.ok(!body.some((l) => / SOA /.test(l)), 'one SOA at each end only');
    // The reverse zone transfers too.
    const rev = await transfer(dnsPort, [keyArg(KEY), REV, 'AXFR']);
    assert.ok(rev.records.includes(`10.${REV} 30 IN PTR alpha.${ZONE}`), rev.raw);
  });

  it('refusals: no key from a network not allowed, an unknown key, a wrong secret; UDP AXFR', async () => {
    const unsigned = await transfer(dnsPort, [ZONE, 'AXFR']);
    assert.match(unsigned.raw, /Transfer failed|REFUSED/, unsigned.raw);
    assert.ok(!unsigned.records.some((l) => / SOA /.test(l)));
    const unknown = await transfer(dnsPort, [keyArg({ ...KEY, name: 'other-key.example.org.' }), ZONE, 'AXFR']);
    assert.match(unknown.raw, /BADKEY|NOTAUTH|tsig/i, unknown.raw);
    assert.ok(!unknown.records.some((l) => / SOA /.test(l)), unknown.raw);
    const wrong = await transfer(dnsPort, [keyArg({ ...KEY, secret: randomBytes(32).toString('base64') }), ZONE, 'AXFR']);
    assert.match(wrong.raw, /BADSIG|NOTAUTH|tsig/i, wrong.raw);
    assert.ok(!wrong.records.some((l) => / SOA /.test(l)), wrong.raw);
    const udp = await transfer(dnsPort, ['+notcp', '+ignore', keyArg(KEY), ZONE, 'AXFR']);
    assert.doesNotMatch(udp.raw, / IN SOA /, udp.raw);
    // A name inside the zone is not a zone: with the key, still nothing (NOTAUTH), never the zone under that name.
    const below = await transfer(dnsPort, [keyArg(KEY), `alpha.${ZONE}`, 'AXFR']);
    assert.match(below.raw, /NOTAUTH|Transfer failed/, below.raw);
    assert.ok(!below.records.some((l) => / SOA /.test(l)), below.raw);
  });

  it('an allow-transfer network transfers without a key', async () => {
    const { records, raw } = await transfer(dnsPort, ['-b', '127.0.0.2', ZONE, 'AXFR']);
    assert.match(records[0] ?? '', / IN SOA /, raw);
    assert.ok(records.includes(`alpha.${ZONE} 30 IN A 192.0.2.10`), raw);
  });

  it('IXFR: up to date gets the SOA alone; a known serial gets the differences; one older than the history the whole zone', async () => {
    const serialNow = async (): Promise<number> => Number(((await transfer(dnsPort, [keyArg(KEY), '+short', ZONE, 'SOA'])).records[0] ?? '').split(' ')[2]);
    // An AXFR makes this serial a version the history knows.
    await transfer(dnsPort, [keyArg(KEY), ZONE, 'AXFR']);
    const serial = await serialNow();
    assert.ok(serial > 0);
    const current = await transfer(dnsPort, [keyArg(KEY), ZONE, `IXFR=${serial}`]);
    assert.equal(current.records.length, 1, current.raw);
    const c = makeClient('delta', ZONE, Algorithm.ED25519);
    assert.equal((await d.send(signedUpdate(c, [a(c.name, '192.0.2.13')], { now: now() }))).rcode, Rcode.NOERROR);
    const incremental = await transfer(dnsPort, [keyArg(KEY), ZONE, `IXFR=${serial}`]);
    const soas = incremental.records.filter((l) => / IN SOA /.test(l)).map((l) => Number(l.split(' ')[6]));
    const next = await serialNow();
    assert.deepEqual(soas, [next, serial, next, next], incremental.raw);
    assert.deepEqual(incremental.records.filter((l) => !/ IN SOA /.test(l)), [`delta.${ZONE} 30 IN A 192.0.2.13`], incremental.raw);
    const old = await transfer(dnsPort, [keyArg(KEY), ZONE, `IXFR=${serial - 1000}`]);
    assert.ok(old.records.includes(`beta.${ZONE} 30 IN A 192.0.2.11`), old.raw);
    assert.ok(old.records.includes(`delta.${ZONE} 30 IN A 192.0.2.13`), old.raw);
  });

  describe('BIND named as a secondary', () => {
    let named: NamedLab;

    before(async () => {
      named = await startNamed({
        zones: [],
        tsigKeys: [KEY],
        extraConfig: [
          `zone "${ZONE}" { type secondary; file "secondary.db"; primaries { 127.0.0.1 port ${dnsPort} key "${KEY.name}"; }; allow-transfer { any; }; };`,
          `zone "${REV}" { type secondary; file "secondary-rev.db"; primaries { 127.0.0.1 port ${dnsPort} key "${KEY.name}"; }; allow-transfer { any; }; };`,
        ].join('\n'),
      });
    });

    after(async () => {
      await named?.stop();
    });

    it('transfers every live name, then a new claim after a refresh', async () => {
      await eventually('the secondary to serve alpha', () => named.query(`alpha.${ZONE}`, 'A').catch((): string[] => []), (v) => v.includes('192.0.2.10'), 10_000);
      assert.deepEqual(await named.query(`beta.${ZONE}`, 'A'), ['192.0.2.11']);
      await eventually('the secondary to serve the reverse zone', () => named.query(`11.${REV}`, 'PTR').catch((): string[] => []), (v) => v.includes(`beta.${ZONE}`), 10_000);
      const c = makeClient('gamma', ZONE, Algorithm.ED25519);
      assert.equal((await d.send(signedUpdate(c, [a(c.name, '192.0.2.12')], { now: now() }))).rcode, Rcode.NOERROR);
      await named.rndc(['refresh', ZONE]);
      await eventually('the secondary to serve gamma', () => named.query(`gamma.${ZONE}`, 'A'), (v) => v.includes('192.0.2.12'), 10_000);
      // IXFR, not AXFR: the new SOA, the old one with no deletions, the next one with gamma's A, the new SOA again (the whole zone is 8).
      const serial = Number((await named.query(ZONE, 'SOA'))[0]?.split(' ')[2]);
      await eventually('the transfer to be logged', () => named.log(), (log) => log.includes(`(serial ${serial})`), 5000);
      assert.match(named.log(), new RegExp(`transfer of '${ZONE.slice(0, -1)}/IN' from 127\\.0\\.0\\.1#${dnsPort}: Transfer completed: 1 messages, 5 records, .*\\(serial ${serial}\\)`));
    });

    it('a large zone (10,000 names) transfers completely in several messages; the secondary matches record for record', async () => {
      const BULK = 10_000;
      const clients = Array.from({ length: BULK }, (_, i) => makeClient(`bulk${i}`, ZONE, Algorithm.ED25519));
      const t = now();
      for (let i = 0; i < clients.length; i += 16) {
        const batch = clients.slice(i, i + 16);
        const replies = await Promise.all(
          batch.map((c, j) => d.send(signedUpdate(c, [a(c.name, `10.${Math.floor((i + j) / 256)}.${(i + j) % 256}.1`)], { now: t }))),
        );
        assert.ok(replies.every((r) => r.rcode === Rcode.NOERROR));
      }
      const { records, raw } = await transfer(dnsPort, [keyArg(KEY), '+stats', ZONE, 'AXFR']);
      // dig checks the TSIG of every message (each MAC chained on the previous one, RFC 8945 §5.3.1).
      assert.doesNotMatch(raw, /Transfer failed|tsig verify failure|TSIG error/i, raw.slice(-500));
      assert.equal((raw.match(/\sANY\s+TSIG\s/g) ?? []).length, messages(raw), 'one TSIG per message');
      const bulk = records.filter((l) => /^bulk\d+\./.test(l));
      assert.equal(bulk.length, BULK, raw.slice(-500));
      assert.ok(messages(raw) >= 5, `${BULK} names in ${messages(raw)} messages`);
      await named.rndc(['refresh', ZONE]);
      const last = BULK - 1;
      await eventually('the secondary to serve the last bulk name', () => named.query(`bulk${last}.${ZONE}`, 'A'), (v) => v.includes(`10.${last >> 8}.${last % 256}.1`), 20_000);
      // Record for record: the secondary's zone is the primary's.
      const ours = (await transfer(dnsPort, [keyArg(KEY), ZONE, 'AXFR'])).records;
      const theirs = (await transfer(named.port, [keyArg(KEY), ZONE, 'AXFR'])).records;
      assert.equal(theirs.length, ours.length);
      assert.deepEqual([...theirs].sort(), [...ours].sort());
    });
  });

  describe('a BIND secondary holding an old copy of the zone', () => {
    let named: NamedLab;
    let files: string;
    let logsBefore = 0;

    before(async () => {
      logsBefore = d.logs().length;
      // A copy of the zone from long ago (serial 1, a name that has gone since), as a secondary
      // that was offline for a long time still has on disk.
      files = await mkdtemp(path.join(tmpdir(), 'nsregd-xfr-old-'));
      const old = path.join(files, 'old.db');
      await writeFile(
        old,
        ['$TTL 300', `@ IN SOA ns.${ZONE} hostmaster.${ZONE} 1 60 60 1209600 5`, `@ IN NS ns.${ZONE}`, 'gone IN A 192.0.2.99', ''].join('\n'),
      );
      named = await startNamed({
        zones: [],
        tsigKeys: [KEY],
        extraConfig: `zone "${ZONE}" { type secondary; file "${old}"; primaries { 127.0.0.1 port ${dnsPort} key "${KEY.name}"; }; };`,
      });
    });

    after(async () => {
      await named?.stop();
      await rm(files, { recursive: true, force: true });
    });

    it('converges to the primary through a whole-zone transfer: the stale name is gone, the live ones are there', async () => {
      await eventually('the secondary to catch up', () => named.query(`alpha.${ZONE}`, 'A').catch((): string[] => []), (v) => v.includes('192.0.2.10'), 15_000);
      assert.deepEqual(await named.query(`gone.${ZONE}`, 'A'), []);
      // BIND asks AXFR for a copy loaded from a file without a journal; an IXFR from such a serial
      // gets the whole zone too (the dig IXFR test above covers that answer).
      const full = d.logs().slice(logsBefore).filter((l) => l['msg'] === 'zone transfer' && l['zone'] === ZONE && (l['kind'] === 'AXFR' || l['kind'] === 'IXFR, whole zone'));
      assert.ok(full.length > 0);
    });
  });

  describe('Knot as a secondary of the large zone', () => {
    let knot: KnotLab;

    before(async () => {
      knot = await startKnotSecondary({ zones: [ZONE], primary: { address: '127.0.0.1', port: dnsPort }, key: KEY });
    });

    after(async () => {
      await knot?.stop();
    });

    it('transfers the 10,000-name zone; Knot matches the primary record for record', async () => {
      const last = 9_999;
      await eventually('Knot to serve the last bulk name', () => knot.query(`bulk${last}.${ZONE}`, 'A').catch((): string[] => []), (v) => v.includes(`10.${last >> 8}.${last % 256}.1`), 30_000);
      const ours = (await transfer(dnsPort, [keyArg(KEY), ZONE, 'AXFR'])).records;
      const theirs = (await transfer(knot.port, [keyArg(KEY), ZONE, 'AXFR'])).records;
      assert.ok(ours.length > 10_000);
      assert.equal(theirs.length, ours.length);
      assert.deepEqual([...theirs].sort(), [...ours].sort());
    });
  });

  describe('NOTIFY to a BIND secondary', () => {
    let named: NamedLab;
    let primary: NsregdLab;
    let notifyDir: string;
    let port: number;

    before(async () => {
      notifyDir = await mkdtemp(path.join(tmpdir(), 'nsregd-notify-'));
      port = await freePort();
      // The secondary first (its primary is not up yet), then nsregd, which tells it at start.
      named = await startNamed({
        zones: [],
        tsigKeys: [KEY],
        extraConfig: [ZONE, REV]
          .map((z, i) => `zone "${z}" { type secondary; file "notified-${i}.db"; primaries { 127.0.0.1 port ${port} key "${KEY.name}"; }; };`)
          .join('\n'),
      });
      primary = await startNsregd({ zonesYaml: zones(port, { notify: [`127.0.0.1@${named.port}`], 'notify-key': KEY.name }), dir: notifyDir });
    });

    after(async () => {
      await primary?.stop();
      await named?.stop();
      await rm(notifyDir, { recursive: true, force: true });
    });

    it('a claim reaches the secondary within 2 s through a signed NOTIFY and IXFR, without waiting for its refresh', async () => {
      // Its first refresh failed (nsregd was not up): start it over rather than wait for its retry timer.
      await named.rndc(['retransfer', ZONE]);
      await eventually('the secondary to load the zone', () => named.query(ZONE, 'SOA').catch((): string[] => []), (v) => v.length === 1, 10_000);
      await primary.waitForLog('NOTIFY acknowledged', 5000);
      const claim = async (label: string, address: string): Promise<number> => {
        const c = makeClient(label, ZONE, Algorithm.ED25519);
        const t0 = Date.now();
        assert.equal((await primary.send(signedUpdate(c, [a(c.name, address)], { now: now() }))).rcode, Rcode.NOERROR);
        await eventually(`the secondary to serve ${label}`, () => named.query(c.name, 'A'), (v) => v.includes(address), 2000);
        return Date.now() - t0;
      };
      // A first claim also settles what the start left behind (the secondary queues a check when a NOTIFY finds it busy).
      await claim('first', '192.0.2.43');
      const took = await claim('notified', '192.0.2.44');
      assert.ok(took <= 2000, `${took} ms`);
      // The secondary's refresh is 2 minutes away: a NOTIFY for the new serial brought it, and an IXFR
      // (SOA, old SOA, new SOA, the claim, SOA: 5 records; the whole zone is more).
      const serial = Number((await named.query(ZONE, 'SOA'))[0]?.split(' ')[2]);
      assert.match(named.log(), new RegExp(`notify from 127\\.0\\.0\\.1#\\d+: serial ${serial}\\b`));
      assert.match(named.log(), new RegExp(`Transfer completed: 1 messages, 5 records, .*\\(serial ${serial}\\)`));
      assert.ok(primary.logs().some((l) => l['msg'] === 'zone transfer' && l['kind'] === 'IXFR' && l['serial'] === serial && l['records'] === 5));
    });

    it('a removal reaches the secondary within 2 s through NOTIFY and IXFR', async () => {
      const c = makeClient('removed', ZONE, Algorithm.ED25519);
      assert.equal((await primary.send(signedUpdate(c, [a(c.name, '192.0.2.46')], { now: now() }))).rcode, Rcode.NOERROR);
      await eventually('the secondary to serve the claim', () => named.query(c.name, 'A'), (v) => v.includes('192.0.2.46'), 2000);
      const t0 = Date.now();
      assert.equal((await primary.send(signedUpdate(c, [a(c.name, '192.0.2.46', 0, RRClass.NONE)], { now: now(), id: 2 }))).rcode, Rcode.NOERROR);
      await eventually('the secondary to drop the removed record', () => named.query(c.name, 'A'), (v) => v.length === 0, 2000);
      assert.ok(Date.now() - t0 <= 2000);
      const serial = Number((await named.query(ZONE, 'SOA'))[0]?.split(' ')[2]);
      // SOA, old SOA, the deleted A, new SOA, SOA.
      assert.ok(primary.logs().some((l) => l['msg'] === 'zone transfer' && l['kind'] === 'IXFR' && l['serial'] === serial && l['records'] === 5));
    });

    it('a refresh that changes nothing and an expiry reach the secondary within 2 s', async () => {
      const serialOf = async (query: () => Promise<string[]>): Promise<number> => Number((await query())[0]?.split(' ')[2]);
      const c = makeClient('refreshed', ZONE, Algorithm.ED25519);
      const t0 = Date.now();
      assert.equal((await primary.send(signedUpdate(c, [a(c.name, '192.0.2.47', 2)], { now: now() }))).rcode, Rcode.NOERROR);
      await eventually('the secondary to serve the claim', () => named.query(c.name, 'A'), (v) => v.includes('192.0.2.47'), 2000);
      // The same claim again: nothing changes but its deadline; the secondary follows the primary's serial and still serves it.
      assert.equal((await primary.send(signedUpdate(c, [a(c.name, '192.0.2.47', 2)], { now: now(), id: 2 }))).rcode, Rcode.NOERROR);
      const refreshedAt = Date.now();
      const primarySerial = await serialOf(async () => (await transfer(port, [keyArg(KEY), '+short', ZONE, 'SOA'])).records);
      await eventually('the secondary to reach the primary serial', () => serialOf(() => named.query(ZONE, 'SOA')), (v) => v === primarySerial, 2000);
      assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.47']);
      // The record's TTL (2 s) runs out: the secondary drops it within 2 s of the expiry.
      await eventually('the secondary to drop the expired record', () => named.query(c.name, 'A'), (v) => v.length === 0, refreshedAt + 2000 + 2000 - Date.now());
      assert.ok(Date.now() - (refreshedAt + 2000) <= 2000, `${Date.now() - t0} ms after the claim`);
    });

    it('through a restart of nsregd the secondary keeps serving, then catches up from the new process', async () => {
      const before = await named.query(`notified.${ZONE}`, 'A');
      assert.deepEqual(before, ['192.0.2.44']);
      await primary.stop();
      // The hidden primary is gone: the secondary answers on (its expire is two weeks).
      assert.deepEqual(await named.query(`notified.${ZONE}`, 'A'), ['192.0.2.44']);
      primary = await startNsregd({ zonesYaml: zones(port, { notify: [`127.0.0.1@${named.port}`], 'notify-key': KEY.name }), dir: notifyDir });
      const c = makeClient('after-restart', ZONE, Algorithm.ED25519);
      assert.equal((await primary.send(signedUpdate(c, [a(c.name, '192.0.2.45')], { now: now() }))).rcode, Rcode.NOERROR);
      await eventually('the secondary to serve the claim made after the restart', () => named.query(c.name, 'A'), (v) => v.includes('192.0.2.45'), 5000);
      // The names restored at the new start are still there.
      assert.deepEqual(await named.query(`notified.${ZONE}`, 'A'), ['192.0.2.44']);
      assert.deepEqual(await named.query(`first.${ZONE}`, 'A'), ['192.0.2.43']);
      // The history survived the restart: the secondary caught up by IXFR from the old process's serial, not by AXFR.
      const transfers = primary.logs().filter((l) => l['msg'] === 'zone transfer' && l['zone'] === ZONE);
      assert.ok(transfers.length > 0);
      assert.deepEqual(
        transfers.map((l) => l['kind']),
        transfers.map(() => 'IXFR'),
        JSON.stringify(transfers),
      );
    });
  });

  describe('Knot as a secondary', () => {
    let knot: KnotLab;
    let primary: NsregdLab;
    let knotDir: string;
    let port: number;
    const ixfrTo = (serial: number): boolean =>
      primary.logs().some((l) => l['msg'] === 'zone transfer' && l['kind'] === 'IXFR' && l['serial'] === serial && l['records'] === 5);

    before(async () => {
      knotDir = await mkdtemp(path.join(tmpdir(), 'nsregd-knot-'));
      port = await freePort();
      knot = await startKnotSecondary({ zones: [ZONE], primary: { address: '127.0.0.1', port }, key: KEY });
      primary = await startNsregd({ zonesYaml: zones(port, { notify: [`127.0.0.1@${knot.port}`], 'notify-key': KEY.name }), dir: knotDir });
    });

    after(async () => {
      await primary?.stop();
      await knot?.stop();
      await rm(knotDir, { recursive: true, force: true });
    });

    it('loads the zone, then gets a claim and a removal within 2 s each through NOTIFY and IXFR, and serves on through a restart', async () => {
      const c = makeClient('knotted', ZONE, Algorithm.ED25519);
      assert.equal((await primary.send(signedUpdate(c, [a(c.name, '192.0.2.50')], { now: now() }))).rcode, Rcode.NOERROR);
      await eventually('Knot to serve the first claim', () => knot.query(c.name, 'A').catch((): string[] => []), (v) => v.includes('192.0.2.50'), 15_000);
      const soaSerial = async (): Promise<number> => Number((await knot.query(ZONE, 'SOA'))[0]?.split(' ')[2]);
      const c2 = makeClient('knotted2', ZONE, Algorithm.ED25519);
      let t0 = Date.now();
      assert.equal((await primary.send(signedUpdate(c2, [a(c2.name, '192.0.2.51')], { now: now() }))).rcode, Rcode.NOERROR);
      await eventually('Knot to serve the claim', () => knot.query(c2.name, 'A'), (v) => v.includes('192.0.2.51'), 2000);
      assert.ok(Date.now() - t0 <= 2000);
      assert.ok(ixfrTo(await soaSerial()), 'the claim came by IXFR');
      t0 = Date.now();
      assert.equal((await primary.send(signedUpdate(c2, [a(c2.name, '192.0.2.51', 0, RRClass.NONE)], { now: now(), id: 2 }))).rcode, Rcode.NOERROR);
      await eventually('Knot to drop the removed record', () => knot.query(c2.name, 'A'), (v) => v.length === 0, 2000);
      assert.ok(Date.now() - t0 <= 2000);
      assert.ok(ixfrTo(await soaSerial()), 'the removal came by IXFR');
      await primary.stop();
      assert.deepEqual(await knot.query(c.name, 'A'), ['192.0.2.50'], 'serving while the primary is down');
      primary = await startNsregd({ zonesYaml: zones(port, { notify: [`127.0.0.1@${knot.port}`], 'notify-key': KEY.name }), dir: knotDir });
      const c3 = makeClient('knotted3', ZONE, Algorithm.ED25519);
      assert.equal((await primary.send(signedUpdate(c3, [a(c3.name, '192.0.2.52')], { now: now() }))).rcode, Rcode.NOERROR);
      await eventually('Knot to catch up after the restart', () => knot.query(c3.name, 'A'), (v) => v.includes('192.0.2.52'), 5000);
      assert.deepEqual(await knot.query(c.name, 'A'), ['192.0.2.50']);
      const after = primary.logs().filter((l) => l['msg'] === 'zone transfer' && l['zone'] === ZONE);
      assert.ok(after.length > 0 && after.every((l) => l['kind'] === 'IXFR'), JSON.stringify(after));
    });

    it('a refresh that changes nothing and an expiry reach Knot within 2 s', async () => {
      const serialOf = async (query: () => Promise<string[]>): Promise<number> => Number((await query())[0]?.split(' ')[2]);
      const c = makeClient('knot-refreshed', ZONE, Algorithm.ED25519);
      assert.equal((await primary.send(signedUpdate(c, [a(c.name, '192.0.2.53', 2)], { now: now() }))).rcode, Rcode.NOERROR);
      await eventually('Knot to serve the claim', () => knot.query(c.name, 'A'), (v) => v.includes('192.0.2.53'), 2000);
      assert.equal((await primary.send(signedUpdate(c, [a(c.name, '192.0.2.53', 2)], { now: now(), id: 2 }))).rcode, Rcode.NOERROR);
      const refreshedAt = Date.now();
      const primarySerial = await serialOf(async () => (await transfer(port, [keyArg(KEY), '+short', ZONE, 'SOA'])).records);
      await eventually('Knot to reach the primary serial', () => serialOf(() => knot.query(ZONE, 'SOA')), (v) => v === primarySerial, 2000);
      assert.deepEqual(await knot.query(c.name, 'A'), ['192.0.2.53']);
      // The record's TTL (2 s) runs out: Knot drops it within 2 s of the expiry.
      await eventually('Knot to drop the expired record', () => knot.query(c.name, 'A'), (v) => v.length === 0, refreshedAt + 2000 + 2000 - Date.now());
      assert.ok(Date.now() - (refreshedAt + 2000) <= 2000);
    });
  });
});
