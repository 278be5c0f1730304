import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Algorithm } from '../../../src/dns/constants.js';
import { InvalidKeyError } from '../../../src/dns/errors.js';
import { KeyObjectCache } from '../../../src/dns/key-cache.js';
import { generateKeyPair, publicKeyFromRData, publicKeyToRData, signData, verifyData } from '../../../src/dns/keys.js';
import type { KeyRData } from '../../../src/dns/types.js';

const rdataOf = (alg: number): { rdata: KeyRData; sign: (d: Buffer) => Buffer } => {
  const { privateKey, publicKey } = generateKeyPair(alg);
  return { rdata: publicKeyToRData(publicKey, alg), sign: (d) => signData(alg, privateKey, d) };
};

describe('KeyObjectCache', () => {
  it('imports a key once and hands out the same KeyObject while it is cached', () => {
    const cache = new KeyObjectCache(4);
    const { rdata, sign } = rdataOf(Algorithm.ECDSAP256SHA256);
    const first = cache.get(rdata);
    // A copy of the rdata (as StoredKey.rdata makes) finds it too.
    assert.equal(cache.get({ ...rdata, publicKey: Buffer.from(rdata.publicKey) }), first);
    assert.equal(cache.lookup(rdata.algorithm, rdata.publicKey.toString('latin1'), () => assert.fail('imported again')), first);
    assert.deepEqual(cache.stats, { hits: 2, misses: 1 });
    const data = Buffer.from('signed data');
    assert.ok(verifyData(rdata.algorithm, first, data, sign(data)));
  });

  it('never hands a changed key the old KeyObject: the bytes and the algorithm are the cache key', () => {
    const cache = new KeyObjectCache(8);
    const a = rdataOf(Algorithm.ECDSAP256SHA256);
    const b = rdataOf(Algorithm.ECDSAP256SHA256);
    const ka = cache.get(a.rdata);
    const kb = cache.get(b.rdata);
    assert.notEqual(ka, kb);
    const data = Buffer.from('x');
    assert.ok(verifyData(b.rdata.algorithm, kb, data, b.sign(data)));
    assert.ok(!verifyData(b.rdata.algorithm, ka, data, b.sign(data)), 'the first key does not check the second key’s signature');
    // Same flags/protocol/name do not matter; a different algorithm number with the same bytes is another entry.
    const other = { ...a.rdata, algorithm: Algorithm.ED25519 };
    assert.throws(() => cache.get(other), InvalidKeyError, 'a P-256 point is not an Ed25519 key');
    assert.equal(cache.size, 2, 'a failed import is not kept');
  });

  it('is bounded: when full, a new key takes the place of one picked at random', () => {
    const picks = [0.9, 0.1];
    const cache = new KeyObjectCache(2, () => picks.shift() ?? 0);
    const [a, b, c] = [1, 2, 3].map(() => rdataOf(Algorithm.ED25519));
    const ka = cache.get(a.rdata);
    cache.get(b.rdata);
    cache.get(c.rdata); // 0.9 → the second place: b goes
    assert.equal(cache.size, 2);
    assert.equal(cache.get(a.rdata), ka, 'a stayed');
    let misses = cache.stats.misses;
    cache.get(b.rdata); // 0.1 → the first place: a goes
    assert.equal(cache.stats.misses, misses + 1, 'b was dropped and is imported again');
    misses = cache.stats.misses;
    cache.get(a.rdata);
    assert.equal(cache.stats.misses, misses + 1, 'a was dropped for b');
    assert.equal(cache.size, 2);
  });

  it('a cycle over more keys than places still hits (least-recently-used would never)', () => {
    // A fixed pseudo-random sequence (a linear congruential generator): the same picks every run.
    let seed = 12345;
    const cache = new KeyObjectCache(8, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const keys = Array.from({ length: 10 }, () => rdataOf(Algorithm.ED25519).rdata);
    for (const k of keys) cache.get(k);
    const before = cache.stats;
    for (let round = 0; round < 20; round++) for (const k of keys) cache.get(k);
    const hits = cache.stats.hits - before.hits;
    assert.ok(hits > 100, `${hits} hits of 200 lookups`);
    assert.equal(cache.size, 8);
  });

  it('remember keeps a key imported elsewhere, once; a cached key is not replaced', () => {
    const cache = new KeyObjectCache(4);
    const { rdata } = rdataOf(Algorithm.ED25519);
    const outside = publicKeyFromRData(rdata);
    cache.remember(rdata, outside);
    assert.equal(cache.size, 1);
    assert.equal(cache.get(rdata), outside, 'found without importing');
    assert.equal(cache.stats.misses, 0);
    cache.remember(rdata, publicKeyFromRData(rdata));
    assert.equal(cache.get(rdata), outside);
    assert.equal(cache.size, 1);
  });

  it('with capacity 0 imports every time and keeps nothing', () => {
    const cache = new KeyObjectCache(0);
    const { rdata } = rdataOf(Algorithm.ED25519);
    assert.notEqual(cache.get(rdata), cache.get(rdata));
    assert.equal(cache.size, 0);
    assert.throws(() => new KeyObjectCache(-1), RangeError);
  });
});
