import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ExpiryQueue } from '../../../src/daemon/expiry-queue.js';

/** Small deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The naive model: a map, and a linear scan for the minimum (ties: earliest set wins). */
class Model {
  readonly m = new Map<string, { deadline: number; seq: number; value: number }>();
  seq = 0;
  set(k: string, d: number, v: number): 'inserted' | 'updated' {
    const had = this.m.has(k);
    this.m.set(k, { deadline: d, seq: this.seq++, value: v });
    return had ? 'updated' : 'inserted';
  }
  min(): string | undefined {
    let best: string | undefined;
    for (const [k, e] of this.m) {
      const b = best === undefined ? undefined : this.m.get(best)!;
      if (b === undefined || e.deadline < b.deadline || (e.deadline === b.deadline && e.seq < b.seq)) best = k;
    }
    return best;
  }
}

describe('ExpiryQueue', () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    it(`matches a naive model under random operations (seed ${seed})`, () => {
      const rand = rng(seed);
      const q = new ExpiryQueue<number>();
      const model = new Model();
      const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
      for (let step = 0; step < 5000; step++) {
        const r = rand();
        const k = keys[Math.floor(rand() * keys.length)];
        // Few distinct deadlines, so ties are common and their order is checked.
        const d = Math.floor(rand() * 50);
        if (r < 0.45) {
          assert.equal(q.set(k, d, step), model.set(k, d, step));
        } else if (r < 0.6) {
          assert.equal(q.delete(k), model.m.delete(k));
        } else if (r < 0.75) {
          const want = model.min();
          const got = q.pop();
          assert.equal(got?.key, want);
          if (want !== undefined) {
            assert.equal(got?.deadline, model.m.get(want)!.deadline);
            assert.equal(got?.value, model.m.get(want)!.value);
            model.m.delete(want);
          }
        } else if (r < 0.85) {
          const now = Math.floor(rand() * 20);
          const got = q.popDue(now).map((e) => e.key);
          const want: string[] = [];
          for (;;) {
            const m = model.min();
            if (m === undefined || model.m.get(m)!.deadline > now) break;
            want.push(m);
            model.m.delete(m);
          }
          assert.deepEqual(got, want);
        } else {
          assert.equal(q.get(k), model.m.get(k)?.value);
          assert.equal(q.deadlineOf(k), model.m.get(k)?.deadline);
          assert.equal(q.has(k), model.m.has(k));
        }
        assert.equal(q.size, model.m.size);
        const min = model.min();
        assert.equal(q.peek()?.key, min);
        assert.equal(q.nextDeadline(), min === undefined ? undefined : model.m.get(min)!.deadline);
      }
      // Draining yields non-decreasing deadlines and empties both.
      let last = -Infinity;
      for (let e = q.pop(); e !== undefined; e = q.pop()) {
        assert.ok(e.deadline >= last);
        last = e.deadline;
      }
      assert.equal(q.size, 0);
    });
  }

  it('moves an entry both ways and keeps entries() complete', () => {
    const q = new ExpiryQueue<string>();
    for (let i = 0; i < 100; i++) q.set(`k${i}`, 1000 - i, `v${i}`);
    assert.equal(q.peek()?.key, 'k99');
    q.set('k99', 5000, 'late');
    assert.equal(q.peek()?.key, 'k98');
    q.set('k0', 1, 'early');
    assert.deepEqual(q.peek(), { key: 'k0', deadline: 1, value: 'early' });
    assert.equal([...q.entries()].length, 100);
    assert.deepEqual(new Set([...q.entries()].map((e) => e.key)), new Set(Array.from({ length: 100 }, (_, i) => `k${i}`)));
  });

  it('rejects a non-finite deadline', () => {
    const q = new ExpiryQueue<number>();
    assert.throws(() => q.set('a', Number.NaN, 1), RangeError);
    assert.throws(() => q.set('a', Infinity, 1), RangeError);
    assert.equal(q.size, 0);
  });

  // Its cost per operation is measured through the record cache and key store by bench/store-scaling.ts, not here (no timed unit tests).
  it('200k entries, half of them moved, drain in deadline order', () => {
    const q = new ExpiryQueue<number>();
    const rand = rng(7);
    for (let i = 0; i < 200_000; i++) q.set(`n${i}`, Math.floor(rand() * 1e9), i);
    for (let i = 0; i < 200_000; i += 2) q.set(`n${i}`, Math.floor(rand() * 1e9), i);
    const drained = q.popDue(Infinity);
    assert.equal(drained.length, 200_000);
    assert.ok(drained.every((e, i) => i === 0 || drained[i - 1].deadline <= e.deadline), 'in deadline order');
  });
});
