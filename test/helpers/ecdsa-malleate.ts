/**
 * ECDSA signature malleability: (r, s) and (r, n − s) are both valid
 * signatures of one message, and turning one into the other needs no key.
 * For tests that a replay cannot be disguised this way.
 */
import { strict as assert } from 'node:assert';
import { Algorithm } from '../../src/dns/constants.js';

/** Curve orders (SEC 2 §2.4.2, §2.5.1) and the size of r and of s (RFC 6605 §4). */
const ORDER = {
  [Algorithm.ECDSAP256SHA256]: { size: 32, n: BigInt('0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551') },
  [Algorithm.ECDSAP384SHA384]: {
    size: 48,
    n: BigInt('0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973'),
  },
} as const;

export type EcdsaAlgorithm = keyof typeof ORDER;

/** The same SIG(0)-signed message with its ECDSA signature (r, s) turned into (r, n − s). */
export function malleate(msg: Buffer, algorithm: EcdsaAlgorithm): Buffer {
  const { size, n } = ORDER[algorithm];
  const out = Buffer.from(msg);
  // The SIG is the last RR and the signature the end of its rdata: r || s.
  const sAt = out.length - size;
  const s = BigInt(`0x${out.subarray(sAt).toString('hex')}`);
  Buffer.from((n - s).toString(16).padStart(2 * size, '0'), 'hex').copy(out, sAt);
  assert.notDeepEqual(out, msg);
  return out;
}
