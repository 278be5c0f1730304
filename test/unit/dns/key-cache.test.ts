import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Algorithm } from '../../../src/dns/constants.js';
import { InvalidKeyError } from '../../../src/dns/errors.js';
import { KeyObjectCache } from '../../../src/dns/key-cache.js';
import { generateKeyPair, publicKeyToRData, signData, verifyData } from '../../../src/dns/keys.js';
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

  it('is bounded: the least recently used key goes first', () => {
    const cache = new KeyObjectCache(2);
    const [a, b, c] = [rdataOf(Algorithm.ED25519), rdataOf(Algorithm.ED25519), rdataOf(Algorithm.ED25519)];
    const ka = cache.get(a.rdata);
    cache.get(b.rdata);
    assert.equal(cache.get(a.rdata), ka, 'a used again: b is now the least recently used');
    cache.get(c.rdata);
    assert.equal(cache.size, 2);
    assert.equal(cache.get(a.rdata), ka, 'a stayed');
    const misses = cache.stats.misses;
    cache.get(b.rdata);
    assert.equal(cache.stats.misses, misses + 1, 'b was dropped and is imported again');
  });

  it('with capacity 0 imports every time and keeps nothing', () => {
    const cache = new KeyObjectCache(0);
    const { rdata } = rdataOf(Algorithm.ED25519);
    assert.notEqual(cache.get(rdata), cache.get(rdata));
    assert.equal(cache.size, 0);
    assert.throws(() => new KeyObjectCache(-1), RangeError);
  });
});
