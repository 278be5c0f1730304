import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, type BackoffOptions } from '../../src/backoff.js';

/** The first `n` delays next() hands out. */
function sequence(b: Backoff, n: number): number[] {
  return Array.from({ length: n }, () => b.next());
}

describe('Backoff', () => {
  const table: Array<{ what: string; opts: BackoffOptions; expected: number[] }> = [
    {
      what: 'registrar retries: 1 s doubling up to 5 min',
      opts: { initialMs: 1_000, capMs: 300_000 },
      expected: [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000],
    },
    {
      what: 'registrar probes while down: capped at the probe interval',
      opts: { initialMs: 1_000, capMs: 15_000 },
      expected: [1_000, 2_000, 4_000, 8_000, 15_000, 15_000],
    },
    {
      what: 'outbox defaults without jitter',
      opts: { initialMs: 1_000, capMs: 8_000 },
      expected: [1_000, 2_000, 4_000, 8_000, 8_000],
    },
    {
      what: 'netlink watcher restarts: 100 ms doubling up to 5 s',
      opts: { initialMs: 100, capMs: 5_000 },
      expected: [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000],
    },
    {
      what: 'factor 3',
      opts: { initialMs: 10, capMs: 1_000, factor: 3 },
      expected: [10, 30, 90, 270, 810, 1_000],
    },
    {
      what: 'factor 1: constant',
      opts: { initialMs: 500, capMs: 500, factor: 1 },
      expected: [500, 500, 500],
    },
    {
      what: 'initial 0: no delay at all',
      opts: { initialMs: 0, capMs: 1_000 },
      expected: [0, 0, 0],
    },
  ];
  for (const { what, opts, expected } of table) {
    it(`sequence: ${what}`, () => {
      const b = new Backoff(opts);
      assert.deepEqual(sequence(b, expected.length), expected);
      assert.equal(b.attempts, expected.length);
      assert.deepEqual(
        expected.map((_, i) => b.delayFor(i)),
        expected,
        'delayFor(n) is the n-th delay of the sequence',
      );
    });
  }

  it('stays at the cap however many attempts (no overflow)', () => {
    const b = new Backoff({ initialMs: 1_000, capMs: 300_000 });
    assert.equal(b.baseDelay(30), 300_000);
    assert.equal(b.baseDelay(2_000), 300_000);
    assert.equal(b.delayFor(Number.MAX_SAFE_INTEGER), 300_000);
  });

  it('peek shows the next delay without moving; reset starts again', () => {
    const b = new Backoff({ initialMs: 1_000, capMs: 300_000 });
    assert.equal(b.peek(), 1_000);
    assert.equal(b.peek(), 1_000);
    sequence(b, 3);
    assert.equal(b.peek(), 8_000);
    assert.equal(b.attempts, 3);
    b.reset();
    assert.equal(b.attempts, 0);
    assert.equal(b.peek(), 1_000);
    assert.deepEqual(sequence(b, 2), [1_000, 2_000]);
  });

  it('jitter spreads each delay within ±jitter of its base, drawn from the injected random source', () => {
    const draws = [0, 0.5, 0.999_999, 0.25];
    let i = 0;
    const b = new Backoff({ initialMs: 1_000, capMs: 8_000, jitter: 0.2, random: () => draws[i++ % draws.length] });
    // random 0 → −20 %, 0.5 → exact, ~1 → +20 %, 0.25 → −10 %.
    assert.deepEqual(sequence(b, 4), [800, 2_000, 4_800, 7_200]);
    assert.equal(b.peek(), 8_000, 'peek is the base, without jitter');
  });

  it('jitter never leaves the bounds, at any attempt', () => {
    for (const r of [0, 0.1, 0.5, 0.9, 0.999_999_9]) {
      const b = new Backoff({ initialMs: 1_000, capMs: 300_000, jitter: 0.2, random: () => r });
      for (let n = 0; n < 20; n++) {
        const base = b.baseDelay(n);
        const d = b.delayFor(n);
        assert.ok(d >= Math.floor(base * 0.8) && d <= Math.ceil(base * 1.2), `attempt ${n}, random ${r}: ${d} vs ${base}`);
        assert.ok(Number.isInteger(d));
      }
    }
  });

  it('rejects nonsense options, naming the option', () => {
    const bad: Array<[BackoffOptions, RegExp]> = [
      [{ initialMs: -1, capMs: 10 }, /initialMs/],
      [{ initialMs: Number.NaN, capMs: 10 }, /initialMs/],
      [{ initialMs: 10, capMs: 5 }, /capMs/],
      [{ initialMs: 10, capMs: Number.NaN }, /capMs/],
      [{ initialMs: 10, capMs: 20, factor: 0.5 }, /factor/],
      [{ initialMs: 10, capMs: 20, jitter: 1.5 }, /jitter/],
      [{ initialMs: 10, capMs: 20, jitter: -0.1 }, /jitter/],
    ];
    for (const [opts, message] of bad) assert.throws(() => new Backoff(opts), { name: 'RangeError', message });
  });
});
