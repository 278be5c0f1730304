import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { VerifyPool, VerifyWorkerError } from '../../../src/daemon/verify-pool.js';
import { Algorithm } from '../../../src/dns/constants.js';
import { Sig0Error } from '../../../src/dns/errors.js';
import { generateKeyPair, signData, verifyData } from '../../../src/dns/keys.js';
import { verifyPreparedSig0, type PreparedSig0 } from '../../../src/dns/sig0.js';
import { malleate } from '../../helpers/ecdsa-malleate.js';
import { CRASH_ALGORITHM, HANG_ALGORITHM, THROW_ALGORITHM } from '../../helpers/fragile-verify-worker.js';

const FRAGILE = new URL('../../helpers/fragile-verify-worker.js', import.meta.url);

/** How a check came out: 'valid', 'bad-signature' (Sig0Error) or the class of what else it rejected with. */
async function outcome(check: Promise<void>): Promise<string> {
  try {
    await check;
    return 'valid';
  } catch (err) {
    if (err instanceof Sig0Error) return err.reason;
    return err instanceof Error ? err.constructor.name : typeof err;
  }
}

function flipped(b: Buffer, at: number): Buffer {
  const out = Buffer.from(b);
  out[at] ^= 1;
  return out;
}

describe('verification pool', () => {
  let pool: VerifyPool;
  before(() => {
    pool = new VerifyPool({ threads: 2 });
  });
  after(() => pool.close());

  const algorithms = [
    ['RSA/SHA-256', Algorithm.RSASHA256],
    ['RSA/SHA-512', Algorithm.RSASHA512],
    ['ECDSA P-256', Algorithm.ECDSAP256SHA256],
    ['ECDSA P-384', Algorithm.ECDSAP384SHA384],
    ['Ed25519', Algorithm.ED25519],
    ['Ed448', Algorithm.ED448],
  ] as const;

  for (const [label, algorithm] of algorithms) {
    it(`${label}: the same verdict as the check on this thread, valid, tampered or malformed`, async () => {
      const { publicKey, privateKey } = generateKeyPair(algorithm);
      const data = Buffer.from(`signed data of ${label}`.repeat(10));
      const signature = signData(algorithm, privateKey, data);
      const cases: Array<[string, Buffer, Buffer]> = [
        ['valid', data, signature],
        ['data changed', flipped(data, 7), signature],
        ['signature changed', data, flipped(signature, signature.length - 1)],
        ['signature cut short', data, signature.subarray(0, signature.length - 1)],
        ['signature empty', data, Buffer.alloc(0)],
      ];
      if (algorithm === Algorithm.ECDSAP256SHA256 || algorithm === Algorithm.ECDSAP384SHA384) {
        // (r, n − s) is valid too (ECDSA is malleable): the pool must say what the thread says.
        cases.push(['malleated', data, malleate(signature, algorithm)]);
      }
      for (const [what, d, s] of cases) {
        const p: PreparedSig0 = { algorithm, publicKey, data: d, signature: s };
        const here = verifyData(algorithm, publicKey, d, s) ? 'valid' : 'bad-signature';
        assert.equal(await outcome(pool.verify(p)), here, what);
        assert.equal(await outcome(verifyPreparedSig0(p)), here, `${what} (libuv's pool)`);
      }
    });
  }

  it('rejects, never passes, a check it cannot make (a key of the wrong kind)', async () => {
    const p256 = generateKeyPair(Algorithm.ECDSAP256SHA256);
    const data = Buffer.from('data');
    const p: PreparedSig0 = { algorithm: Algorithm.ECDSAP384SHA384, publicKey: p256.publicKey, data, signature: Buffer.alloc(96) };
    assert.equal(await outcome(pool.verify(p)), 'Error');
    await assert.rejects(verifyPreparedSig0(p), (err) => !(err instanceof Sig0Error));
  });

  it('spreads checks over its threads and answers each with its own verdict', async () => {
    const { publicKey, privateKey } = generateKeyPair(Algorithm.ECDSAP256SHA256);
    const jobs = Array.from({ length: 40 }, (_, i) => {
      const data = Buffer.from(`message ${i}`);
      const signature = signData(Algorithm.ECDSAP256SHA256, privateKey, data);
      return { algorithm: Algorithm.ECDSAP256SHA256, publicKey, data, signature: i % 3 === 0 ? flipped(signature, 5) : signature };
    });
    const checks = jobs.map((p) => outcome(pool.verify(p)));
    assert.ok(pool.outstanding > 0);
    const got = await Promise.all(checks);
    assert.deepEqual(got, jobs.map((_, i) => (i % 3 === 0 ? 'bad-signature' : 'valid')));
    assert.equal(pool.outstanding, 0);
  });
});

describe('verification pool: workers that die', () => {
  const key = generateKeyPair(Algorithm.ECDSAP256SHA256);
  const data = Buffer.from('data');
  const valid: PreparedSig0 = { algorithm: Algorithm.ECDSAP256SHA256, publicKey: key.publicKey, data, signature: signData(Algorithm.ECDSAP256SHA256, key.privateKey, data) };
  const special = (algorithm: number): PreparedSig0 => ({ ...valid, algorithm });

  for (const [how, algorithm] of [
    ['exits', CRASH_ALGORITHM],
    ['throws', THROW_ALGORITHM],
  ] as const) {
    it(`a worker that ${how} fails its checks as VerifyWorkerError and is replaced at the next check`, async () => {
      const exits: Error[] = [];
      const pool = new VerifyPool({ threads: 1, script: FRAGILE, onWorkerExit: (err) => exits.push(err) });
      try {
        assert.equal(await outcome(pool.verify(valid)), 'valid');
        const waiting = outcome(pool.verify(special(HANG_ALGORITHM)));
        const killing = outcome(pool.verify(special(algorithm)));
        assert.deepEqual(await Promise.all([waiting, killing]), ['VerifyWorkerError', 'VerifyWorkerError']);
        assert.equal(exits.length, 1);
        assert.ok(exits[0] instanceof VerifyWorkerError);
        assert.equal(exits[0].code, 'ERR_VERIFY_WORKER');
        assert.equal(pool.outstanding, 0);
        assert.equal(await outcome(pool.verify(valid)), 'valid', 'a new worker took its place');
        assert.equal(await outcome(pool.verify({ ...valid, signature: flipped(valid.signature, 0) })), 'bad-signature');
        assert.equal(pool.size, 1);
      } finally {
        await pool.close();
      }
    });
  }

  it('close() fails the checks outstanding and every later one; it is idempotent', async () => {
    const exits: Error[] = [];
    const pool = new VerifyPool({ threads: 2, script: FRAGILE, onWorkerExit: (err) => exits.push(err) });
    const waiting = outcome(pool.verify(special(HANG_ALGORITHM)));
    await pool.close();
    assert.equal(await waiting, 'VerifyWorkerError');
    assert.equal(await outcome(pool.verify(valid)), 'VerifyWorkerError');
    await pool.close();
    assert.deepEqual(exits, [], 'a worker ended by close() is not reported as died');
  });

  it('refuses a size that is not a positive integer', () => {
    assert.throws(() => new VerifyPool({ threads: 0 }), RangeError);
    assert.throws(() => new VerifyPool({ threads: 1.5 }), RangeError);
  });
});
