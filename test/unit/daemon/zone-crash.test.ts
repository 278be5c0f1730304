/**
 * A claim interrupted by a crash at any step of Zone.applyUpdate leaves,
 * after the restart, either the claim with its records or neither — with the
 * real key database and state file on disk. A "crash" here is a zone left
 * hanging mid-update and never closed; the restart opens the same files anew.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { RecordCache } from '../../../src/daemon/cache.js';
import { KeyStore } from '../../../src/daemon/keydb/keystore.js';
import type { UpstreamChange } from '../../../src/daemon/records.js';
import { Zone, type KeyStorePort, type UpdatePlan } from '../../../src/daemon/zone.js';
import { ZoneState } from '../../../src/daemon/zonestate.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeUpstream } from '../../helpers/fake-upstream.js';
import { labZoneConfig, LAB_ZONE } from '../../helpers/handler-lab.js';
import { addr } from '../../helpers/records.js';
import { makeClient } from '../../helpers/sig0-client.js';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const never = new Promise<never>(() => undefined);

interface Opened {
  zone: Zone;
  keys: KeyStore;
  state: ZoneState;
  cache: RecordCache;
  upstream: FakeUpstream;
  abandoned: string[];
}

async function open(dir: string, clock: FakeClock, wrap: (k: KeyStore) => KeyStorePort = (k) => k): Promise<Opened> {
  const { store, abandoned } = await KeyStore.open(dir, LAB_ZONE, clock);
  const { state, loaded } = await ZoneState.open(dir, LAB_ZONE, (err) => assert.fail(err));
  const cache = new RecordCache();
  const upstream = new FakeUpstream('fake0');
  const zone = new Zone(labZoneConfig(), wrap(store), cache, [upstream], logger, clock, state);
  zone.restore(loaded.records, loaded.ops);
  return { zone, keys: store, state, cache, upstream, abandoned };
}

/** The key store, except that confirming never completes (the process dies first). */
function confirmHangs(k: KeyStore): KeyStorePort {
  return {
    get: (name) => k.get(name),
    claim: (name, rdata, expiry) => k.claim(name, rdata, expiry),
    confirm: () => never,
    abandon: (name) => k.abandon(name),
    refresh: (name, expiry) => k.refresh(name, expiry),
    remove: (name) => k.remove(name),
    expireDue: (now) => k.expireDue(now),
    nextExpiry: () => k.nextExpiry(),
    claimedKeys: () => k.claimedKeys(),
    get size() {
      return k.size;
    },
    flush: () => k.flush(),
    close: () => k.close(),
  };
}

/** The records each change of `u` added or removed, in order: '+a.b.c.d' / '-a.b.c.d'. */
const sent = (u: FakeUpstream): string[] =>
  u.changes.flatMap((c: UpstreamChange) => [...c.add.map((r) => `+${r.address}`), ...c.remove.map((r) => `-${r.address}`)]);

async function scenario(crash: 'during-forward' | 'before-confirm' | 'after-answer'): Promise<{ before: Opened; after: Opened; name: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zone-crash-'));
  dirs.push(dir);
  const clock = new FakeClock(Date.UTC(2026, 10, 22, 12));
  const client = makeClient('host1', LAB_ZONE);
  const before = await open(dir, clock, (k) => (crash === 'before-confirm' ? confirmHangs(k) : k));
  if (crash === 'during-forward') before.upstream.apply = () => never;
  const plan: UpdatePlan = {
    name: client.name,
    newKey: client.rdata,
    signer: client.rdata,
    keyExpiry: clock.now() + 3600_000,
    adds: [addr(client.name, '192.0.2.1', 60)],
    removes: [],
    removeTypes: [],
    removeAll: false,
  };
  const applying = before.zone.withNameLock(client.name, () => before.zone.applyUpdate(plan, clock.now()));
  if (crash === 'after-answer') {
    assert.deepEqual(await applying, { ok: true });
  } else {
    // Wait until the update is stuck where the crash is to happen.
    const stuck = crash === 'during-forward' ? () => before.zone.pendingOperations > 0 : () => before.cache.size > 0;
    const deadline = Date.now() + 10_000;
    while (!stuck()) {
      assert.ok(Date.now() < deadline, 'the update never reached the step where the crash happens');
      await new Promise((r) => setImmediate(r));
    }
  }
  // What was written lazily reaches the files (a crash may lose it; losing it is covered by the cases above).
  await before.state.idle();
  await before.keys.idle();
  const again = await open(dir, clock);
  await again.zone.start();
  await again.zone.shutdown();
  return { before, after: again, name: client.name };
}

describe('zone: a crash during a first claim', () => {
  it('while the records are being sent upstream: no claim after the restart, and the records are removed', async () => {
    const { after: r, name } = await scenario('during-forward');
    assert.deepEqual(r.abandoned, [name]);
    assert.equal(r.keys.get(name), undefined);
    assert.ok(sent(r.upstream).includes('-192.0.2.1'), `removed upstream: ${sent(r.upstream).join(' ')}`);
    assert.ok(!sent(r.upstream).includes('+192.0.2.1'), 'the unconfirmed add is not sent again');
  });

  it('after the records were installed but before the claim was confirmed: no claim and no records', async () => {
    const { before, after: r, name } = await scenario('before-confirm');
    assert.deepEqual(sent(before.upstream), ['+192.0.2.1'], 'the record had reached the upstream');
    assert.deepEqual(r.abandoned, [name]);
    assert.equal(r.keys.get(name), undefined);
    assert.ok(sent(r.upstream).includes('-192.0.2.1'), `removed upstream: ${sent(r.upstream).join(' ')}`);
  });

  it('after the answer: the claim and its record are both there', async () => {
    const { after: r, name } = await scenario('after-answer');
    assert.deepEqual(r.abandoned, []);
    assert.ok(r.keys.get(name) !== undefined, 'the key survived');
    assert.ok(!sent(r.upstream).slice(0, -1).includes('-192.0.2.1'), 'nothing removed before the shutdown');
  });
});
