/**
 * Restart and reload convergence (Zone.shutdown/restore/start and
 * Zone.reconfigure) with the real state file in a temporary directory and
 * fake upstreams: records withdrawn at a clean stop come back at the next
 * start while their deadlines have not passed; a reload brings every
 * upstream to the live records as its new settings publish them.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { UpstreamConfig } from '../../../src/config/upstreams/index.js';
import { RecordCache } from '../../../src/daemon/cache.js';
import type { AddrRecord, UpstreamChange } from '../../../src/daemon/records.js';
import { Zone } from '../../../src/daemon/zone.js';
import { ZoneState, type LoadedState } from '../../../src/daemon/zonestate.js';
import { Cidr } from '../../../src/net/address.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeUpstream } from '../../helpers/fake-upstream.js';
import { labZoneConfig, LAB_ZONE } from '../../helpers/handler-lab.js';
import { MemoryKeyStore } from '../../helpers/memory-keystore.js';
import { makeClient } from '../../helpers/sig0-client.js';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const owner = makeClient('owner', LAB_ZONE);
const rec = (address: string, ttl = 600, name = owner.name): AddrRecord => ({ name, type: 'A', address, ttl });

/** The records each change added or removed, in order: '+a.b.c.d' / '-a.b.c.d'. */
const sent = (u: FakeUpstream): string[] =>
  u.changes.flatMap((c: UpstreamChange) => [...c.add.map((r) => `+${r.address}/${r.ttl}`), ...c.remove.map((r) => `-${r.address}`)]);

/** Waits, without a timer, until `ok()` holds (bounded by a count of event-loop turns). */
async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !ok(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(ok(), `never: ${what}`);
}

interface Run {
  zone: Zone;
  loaded: LoadedState;
  plain: FakeUpstream;
  keeper: FakeUpstream;
}

async function open(dir: string, clock: FakeClock, keys: MemoryKeyStore): Promise<Run> {
  const { state, loaded } = await ZoneState.open(dir, LAB_ZONE, (err) => assert.fail(err));
  const plain = new FakeUpstream('plain');
  const keeper = new FakeUpstream('keeper', true);
  const zone = new Zone(labZoneConfig(), keys, new RecordCache(), [plain, keeper], logger, clock, state);
  zone.restore(loaded.records, loaded.ops);
  await zone.start();
  return { zone, loaded, plain, keeper };
}

async function firstRun(): Promise<{ dir: string; clock: FakeClock; keys: MemoryKeyStore; first: Run }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zone-restart-'));
  dirs.push(dir);
  const clock = new FakeClock(Date.UTC(2026, 10, 22, 12));
  const keys = new MemoryKeyStore();
  keys.put(owner.name, owner.rdata, clock.now() + 3600_000);
  const first = await open(dir, clock, keys);
  const plan = { name: owner.name, signer: owner.rdata, keyExpiry: clock.now() + 3600_000, adds: [rec('192.0.2.1')], removes: [], removeTypes: [], removeAll: false };
  assert.deepEqual(await first.zone.withNameLock(owner.name, () => first.zone.applyUpdate(plan, clock.now())), { ok: true });
  await first.zone.shutdown();
  return { dir, clock, keys, first };
}

describe('zone: a clean stop and a restart', () => {
  it('withdraws the records at the stop, keeps them marked withdrawn, and installs them again at the next start', async () => {
    const { dir, clock, keys, first } = await firstRun();
    assert.deepEqual(sent(first.plain), ['+192.0.2.1/600', '-192.0.2.1'], 'removed at the stop (a daemon stopped for good leaves nothing)');
    assert.deepEqual(sent(first.keeper), ['+192.0.2.1/600'], 'keep-records: never removed');
    clock.advance(60_000);
    const second = await open(dir, clock, keys);
    assert.deepEqual(
      second.loaded.records.map((r) => [r.record.address, r.withdrawn]),
      [['192.0.2.1', true]],
    );
    await until('the record is sent again', () => sent(second.plain).length > 0);
    assert.deepEqual(sent(second.plain), ['+192.0.2.1/600']);
    assert.deepEqual(sent(second.keeper), [], 'the keep-records upstream never lost it');
    assert.equal(second.zone.allLiveRecords().length, 1);
    await second.zone.shutdown();
    // The deadline is the original one, not renewed by the restart.
    const third = await open(dir, clock, keys);
    assert.deepEqual(
      third.loaded.records.map((r) => [r.record.address, r.expiresAt, r.withdrawn]),
      [['192.0.2.1', Date.UTC(2026, 10, 22, 12) + 600_000, true]],
    );
    await third.zone.shutdown();
  });

  it('drops a withdrawn record whose deadline passed while stopped, sending nothing', async () => {
    const { dir, clock, keys } = await firstRun();
    clock.advance(600_000);
    const second = await open(dir, clock, keys);
    assert.equal(second.zone.allLiveRecords().length, 0);
    await second.zone.shutdown();
    assert.deepEqual(sent(second.plain), []);
    assert.deepEqual(sent(second.keeper), []);
    const third = await open(dir, clock, keys);
    assert.deepEqual(third.loaded.records, [], 'gone from the state file');
    await third.zone.shutdown();
  });

  it('drops a withdrawn record whose key expired while stopped, installing nothing', async () => {
    const { dir, clock, keys } = await firstRun();
    keys.put(owner.name, owner.rdata, clock.now() + 30_000);
    clock.advance(60_000);
    const second = await open(dir, clock, keys);
    assert.equal(second.zone.allLiveRecords().length, 0);
    await second.zone.shutdown();
    assert.ok(!sent(second.plain).some((s) => s.startsWith('+')), sent(second.plain).join(' '));
  });

  it('removes, everywhere, a withdrawn record of a name without a confirmed key', async () => {
    const { dir, clock } = await firstRun();
    const second = await open(dir, clock, new MemoryKeyStore());
    await second.zone.shutdown();
    assert.deepEqual(sent(second.plain), ['-192.0.2.1']);
    assert.deepEqual(sent(second.keeper), ['-192.0.2.1']);
  });
});

function nsupdateConfig(over: Partial<Extract<UpstreamConfig, { type: 'nsupdate' }>> = {}): UpstreamConfig {
  return {
    type: 'nsupdate',
    hostname: '127.0.0.1',
    port: 53,
    tcp: false,
    timeout: 1000,
    zone: LAB_ZONE,
    reverseZones: [],
    recordTtl: 3600_000,
    tsigName: 'k.',
    tsigSecret: 'c2VjcmV0',
    tsigAlgorithm: 'hmac-sha256',
    keepRecords: false,
    excludeNets: [],
    protectExisting: false,
    reconcileInterval: 0,
    ...over,
  };
}

async function liveZone(upstreams: FakeUpstream[], configs: UpstreamConfig[]): Promise<{ zone: Zone; clock: FakeClock }> {
  const clock = new FakeClock(Date.UTC(2026, 10, 22, 12));
  const keys = new MemoryKeyStore();
  keys.put(owner.name, owner.rdata, clock.now() + 3600_000);
  const zone = new Zone(labZoneConfig({ upstreams: configs }), keys, new RecordCache(), upstreams, logger, clock);
  await zone.start();
  const plan = { name: owner.name, signer: owner.rdata, keyExpiry: clock.now() + 3600_000, adds: [rec('192.0.2.1'), rec('192.0.2.200')], removes: [], removeTypes: [], removeAll: false };
  assert.deepEqual(await zone.withNameLock(owner.name, () => zone.applyUpdate(plan, clock.now())), { ok: true });
  for (const u of upstreams) u.changes.length = 0;
  return { zone, clock };
}

describe('zone: reload', () => {
  it('an added upstream receives every live record; the unchanged one is left alone', async () => {
    const a = new FakeUpstream('a');
    const { zone } = await liveZone([a], [nsupdateConfig()]);
    const a2 = new FakeUpstream('a');
    const b = new FakeUpstream('b');
    await zone.reconfigure(labZoneConfig({ upstreams: [nsupdateConfig(), nsupdateConfig({ port: 54 })] }), [a2, b]);
    assert.deepEqual(sent(b), ['+192.0.2.1/600', '+192.0.2.200/600']);
    assert.deepEqual(sent(a2), []);
    assert.equal(b.started, 1);
    assert.equal(a.closed, 1);
    await zone.shutdown();
  });

  it('a removed upstream has the live records removed, unless it keeps records', async () => {
    const a = new FakeUpstream('a');
    const b = new FakeUpstream('b');
    const k = new FakeUpstream('k', true);
    const configs = [nsupdateConfig(), nsupdateConfig({ port: 54 }), nsupdateConfig({ port: 55, keepRecords: true })];
    const { zone } = await liveZone([a, b, k], configs);
    await zone.reconfigure(labZoneConfig({ upstreams: [nsupdateConfig()] }), [new FakeUpstream('a')]);
    assert.deepEqual(sent(b), ['-192.0.2.1', '-192.0.2.200']);
    assert.deepEqual(sent(k), []);
    assert.equal(b.closed, 1);
    assert.equal(zone.pendingOperations, 0);
    await zone.shutdown();
  });

  it('a changed record-ttl, exclude-nets or reverse-zones: the old settings take back what they published differently, then every live record is sent again', async () => {
    const a = new FakeUpstream('a');
    const { zone } = await liveZone([a], [nsupdateConfig({ reverseZones: ['2.0.192.in-addr.arpa.'] })]);
    const a2 = new FakeUpstream('a');
    const changed = nsupdateConfig({ recordTtl: 300_000, excludeNets: [Cidr.parse('192.0.2.128/25') as Cidr], reverseZones: [] });
    await zone.reconfigure(labZoneConfig({ upstreams: [changed] }), [a2]);
    // Both addresses had PTRs in a reverse zone no longer configured; the old upstream removes them (forward and PTR).
    assert.deepEqual(sent(a), ['-192.0.2.1', '-192.0.2.200']);
    // The new one gets the live records it publishes (its own filter clamps the TTL at apply) and the now-excluded removal.
    assert.deepEqual(a2.changes.map((c) => [c.add.map((r) => r.address), c.remove.map((r) => r.address)]), [[['192.0.2.1'], ['192.0.2.200']]]);
    await zone.shutdown();
  });

  it('a reverse zone added: nothing is taken back, the live records are sent again (their PTRs follow)', async () => {
    const a = new FakeUpstream('a');
    const { zone } = await liveZone([a], [nsupdateConfig()]);
    const a2 = new FakeUpstream('a');
    await zone.reconfigure(labZoneConfig({ upstreams: [nsupdateConfig({ reverseZones: ['2.0.192.in-addr.arpa.'] })] }), [a2]);
    assert.deepEqual(sent(a), []);
    assert.deepEqual(sent(a2), ['+192.0.2.1/600', '+192.0.2.200/600']);
    await zone.shutdown();
  });
});
