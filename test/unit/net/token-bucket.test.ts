import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBuckets } from '../../../src/net/token-bucket.js';

describe('TokenBuckets', () => {
  it('admits the burst, then refills at the rate; keys are independent', () => {
    const b = new TokenBuckets({ perSecond: 10, burst: 3, maxKeys: 10 });
    assert.deepEqual([1, 2, 3, 4].map(() => b.take('a', 0).ok), [true, true, true, false]);
    assert.equal(b.take('b', 0).ok, true);
    assert.equal(b.take('a', 100).ok, true, '100 ms at 10/s is one token');
    assert.equal(b.take('a', 100).ok, false);
    assert.equal(b.take('a', 10_000).ok, true);
  });

  it('counts refusals per key', () => {
    const b = new TokenBuckets({ perSecond: 1, burst: 1, maxKeys: 10 });
    assert.deepEqual(b.take('a', 0), { ok: true });
    assert.deepEqual(b.take('a', 0), { ok: false, refused: 1 });
    assert.deepEqual(b.take('a', 0), { ok: false, refused: 2 });
  });

  it('a clock stepping back adds no tokens', () => {
    const b = new TokenBuckets({ perSecond: 10, burst: 1, maxKeys: 10 });
    assert.equal(b.take('a', 5000).ok, true);
    assert.equal(b.take('a', 0).ok, false);
    assert.equal(b.take('a', 100).ok, true, 'refilled from the later reading');
  });

  it('tracks a bounded number of keys, forgetting the least recently used', () => {
    const b = new TokenBuckets({ perSecond: 1, burst: 1, maxKeys: 2 });
    b.take('a', 0);
    b.take('b', 0);
    b.take('a', 0); // a is now the most recently used
    b.take('c', 0); // evicts b
    assert.equal(b.size, 2);
    assert.equal(b.take('b', 0).ok, true, 'b was forgotten and starts full');
    assert.equal(b.take('c', 0).ok, false, 'c was kept');
  });
});
