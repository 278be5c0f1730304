/**
 * RequestGuard.reconfigure (a SIGHUP with new `limits:`): new rates and
 * check slots apply to the next request; the per-source buckets keep their
 * state unless their rate or burst changed; a wider check cap hands slots
 * to waiting checks at once.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { RequestGuard, type CheckSlot } from '../../../src/daemon/guard.js';

const SRC = '198.51.100.1';

describe('request guard: reconfigure', () => {
  it('applies a new rate and burst to the next request; 0 lifts the limit', () => {
    const g = new RequestGuard({ perSourceRate: 50, perSourceBurst: 100 });
    assert.equal(g.withinRate(SRC, 0), true);
    g.reconfigure({ perSourceRate: 1, perSourceBurst: 1 });
    assert.deepEqual([g.withinRate(SRC, 0), g.withinRate(SRC, 0)], [true, false]);
    g.reconfigure({ perSourceRate: 0 });
    assert.ok([1, 2, 3, 4, 5].every(() => g.withinRate(SRC, 0)));
    g.reconfigure({ perSourceRate: 2, perSourceBurst: 2 });
    assert.deepEqual([g.withinRate(SRC, 0), g.withinRate(SRC, 0), g.withinRate(SRC, 0)], [true, true, false]);
  });

  it('keeps the buckets when rate and burst stay', () => {
    const g = new RequestGuard({ perSourceRate: 1, perSourceBurst: 1 });
    assert.equal(g.withinRate(SRC, 0), true);
    g.reconfigure({ perSourceRate: 1, perSourceBurst: 1, maxInFlight: 8 });
    assert.equal(g.withinRate(SRC, 0), false, 'the emptied bucket is not refilled by a reload');
  });

  it('a wider check cap hands slots to waiting checks; a narrower one waits for releases', async () => {
    const g = new RequestGuard({ perSourceRate: 0, maxInFlight: 1 });
    const first = await g.acquire('192.0.2.1', 0);
    assert.ok(first);
    let second: CheckSlot | null | undefined;
    const pending = g.acquire('192.0.2.2', 0).then((s) => (second = s));
    assert.equal(g.checksWaiting, 1);
    g.reconfigure({ maxInFlight: 2 });
    await pending;
    assert.ok(second);
    assert.equal(g.checksInFlight, 2);

    g.reconfigure({ maxInFlight: 1 });
    let third: CheckSlot | null | undefined;
    const waiting = g.acquire('192.0.2.3', 0).then((s) => (third = s));
    first.release();
    await Promise.resolve();
    assert.equal(third, undefined, 'one check still runs: the cap of 1 is full');
    second.release();
    await waiting;
    assert.ok(third);
    assert.equal(g.checksInFlight, 1);
  });

  it('applies a new per-source cap to the next check', async () => {
    const g = new RequestGuard({ perSourceRate: 0, maxInFlight: 10, maxPerSource: 16 });
    const held = await g.acquire(SRC, 0);
    assert.ok(held);
    g.reconfigure({ maxPerSource: 1 });
    assert.equal(await g.acquire(SRC, 0), null);
    held.release();
    assert.ok(await g.acquire(SRC, 0));
  });
});
