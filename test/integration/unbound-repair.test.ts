/**
 * The unbound upstream repairs a real Unbound that lost its runtime local
 * data: after a restart (noticed through `status`) every live record is
 * back within 30 s, and a `local_zone` that failed at start-up because
 * Unbound was not running is retried until it works.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import type { UnboundUpstreamConfig } from '../../src/config/upstreams/index.js';
import { systemClock } from '../../src/clock.js';
import type { AddrRecord } from '../../src/daemon/records.js';
import { createUnboundUpstream } from '../../src/daemon/upstreams/unbound.js';
import { UpstreamError, type Upstream } from '../../src/daemon/upstreams/upstream.js';
import { eventually, letTimePass } from '../helpers/eventually.js';
import { logSink } from '../helpers/log-sink.js';
import { startUnbound, unboundUpstreamConfig, type UnboundLab } from '../helpers/unbound.js';
import { addr, change } from '../helpers/records.js';

const ZONE = 'dyn.example.';
const REV4 = '2.0.192.in-addr.arpa.';
/** The target: an Unbound restart is repaired within 30 s. */
const REPAIR_MS = 30_000;

describe('unbound upstream repairs lost data', () => {
  let lab: UnboundLab;
  const opened: Upstream[] = [];

  const make = (live: () => AddrRecord[], over: Partial<UnboundUpstreamConfig> = {}, logger = logSink().logger): Upstream => {
    const up = createUnboundUpstream(
      unboundUpstreamConfig(lab, { reverseZones: [REV4], timeout: 2000, statusInterval: 500, ...over }),
      {
        zone: ZONE,
        logger,
        clock: systemClock,
        liveRecords: (n) => live().filter((r) => r.name === n),
        allLiveRecords: live,
        dataDir: '/nonexistent',
        registration: () => ({ host: '127.0.0.1', port: 8053 }),
      },
    );
    opened.push(up);
    return up;
  };

  before(async () => {
    lab = await startUnbound();
  });

  after(async () => {
    await Promise.all(opened.map((u) => u.close()));
    await lab?.stop();
  });

  it('publishes the zone and every live record again after Unbound restarts', async () => {
    const records = [addr(`r1.${ZONE}`, '192.0.2.11'), addr(`r1.${ZONE}`, '2001:db8::11'), addr(`r2.${ZONE}`, '192.0.2.12')];
    let live: AddrRecord[] = [];
    const up = make(() => live);
    await up.start();
    await up.apply(change({ add: records }));
    live = records;
    assert.deepEqual(await lab.query(`r1.${ZONE}`, 'A'), ['192.0.2.11']);

    const before = lab.pid();
    await lab.start();
    assert.notEqual(lab.pid(), before);
    // Unbound forgot everything: what comes back is the upstream's doing.
    await eventually('the zone to come back', () => lab.localZones(), (z) => z.includes(`${ZONE} static`), REPAIR_MS);
    await eventually('r1 A', () => lab.query(`r1.${ZONE}`, 'A'), (v) => v.join() === '192.0.2.11', REPAIR_MS);
    assert.deepEqual(await lab.query(`r1.${ZONE}`, 'AAAA'), ['2001:db8::11']);
    assert.deepEqual(await lab.query(`r2.${ZONE}`, 'A'), ['192.0.2.12']);
    assert.deepEqual(await lab.query('12.2.0.192.in-addr.arpa.', 'PTR'), [`r2.${ZONE}`]);
    // Names nsregd never registered stay unknown in the static zone.
    assert.deepEqual(await lab.query(`r3.${ZONE}`, 'A'), []);
    await up.close();
  });

  it('leaves a running Unbound alone: polling status republishes nothing', async () => {
    const sink = logSink();
    const up = make(() => [addr(`q1.${ZONE}`, '192.0.2.41')], { statusInterval: 100 }, sink.logger);
    await up.start();
    // The point is that nothing happens meanwhile: ten polls of an Unbound that keeps running.
    await letTimePass(1000);
    const republished = (): number => sink.lines.filter((l) => l.msg === 'unbound: every live record published again').length;
    assert.equal(republished(), 0);
    assert.deepEqual(await lab.query(`q1.${ZONE}`, 'A'), []);
    // Whereas a restart is noticed by the same polling.
    await lab.start();
    await eventually('a republish', republished, (n) => n >= 1, REPAIR_MS);
    assert.ok(sink.lines.some((l) => l.msg.includes('unbound restarted') || l.msg.includes('unbound unreachable')));
    await up.close();
  });

  it('never brings back a record whose removal was applied', async () => {
    const kept = addr(`k1.${ZONE}`, '192.0.2.21');
    const gone = addr(`k2.${ZONE}`, '192.0.2.22');
    // The zone drops a removed record only after every upstream took the removal: it is still listed here.
    const live = [kept, gone];
    const up = make(() => live);
    await up.start();
    await up.apply(change({ add: live }));
    await up.apply(change({ remove: [gone] }));
    await lab.start();
    await eventually('k1 A', () => lab.query(`k1.${ZONE}`, 'A'), (v) => v.join() === '192.0.2.21', REPAIR_MS);
    assert.deepEqual(await lab.query(`k2.${ZONE}`, 'A'), []);
    await up.close();
  });

  it('retries the local zone until Unbound runs when it was down at start-up', async () => {
    const records = [addr(`d1.${ZONE}`, '192.0.2.31')];
    await lab.halt();
    const up = make(() => records, { statusInterval: 0 });
    await assert.rejects(up.start(), UpstreamError);
    await lab.start();
    await eventually('the zone', () => lab.localZones(), (z) => z.includes(`${ZONE} static`), REPAIR_MS);
    await eventually('d1 A', () => lab.query(`d1.${ZONE}`, 'A'), (v) => v.join() === '192.0.2.31', REPAIR_MS);
    await up.close();
  });
});
