/**
 * DNSSEC public-key algorithms on top of node:crypto: key tags (RFC 4034
 * appendix B), the per-algorithm public key encodings inside KEY/DNSKEY
 * rdata (whose codec is in ./rdata.ts) and the wire signature formats.
 * Pure: no I/O, no clock.
 */
import * as crypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { Algorithm } from './constants.js';
import { InvalidKeyError, UnsupportedAlgorithmError } from './errors.js';
import { encodeRData } from './rdata.js';
import type { KeyRData } from './types.js';
import { errorMessage } from '../errors.js';

type Hash = 'sha256' | 'sha384' | 'sha512';

/** What node:crypto needs to know about one DNSSEC algorithm. */
type AlgorithmSpec =
  | { kind: 'rsa'; hash: Hash }
  /** `size`: bytes of one coordinate / of r and of s (RFC 6605 §4). */
  | { kind: 'ec'; hash: Hash; crv: 'P-256' | 'P-384'; nodeCurve: 'prime256v1' | 'secp384r1'; size: number }
  /** `size`: bytes of the public key (RFC 8080 §3). EdDSA hashes internally. */
  | { kind: 'okp'; crv: 'Ed25519' | 'Ed448'; keyType: 'ed25519' | 'ed448'; size: number };

const ALGORITHMS: ReadonlyMap<number, AlgorithmSpec> = new Map<number, AlgorithmSpec>([
  [Algorithm.RSASHA256, { kind: 'rsa', hash: 'sha256' }],
  [Algorithm.RSASHA512, { kind: 'rsa', hash: 'sha512' }],
  [Algorithm.ECDSAP256SHA256, { kind: 'ec', hash: 'sha256', crv: 'P-256', nodeCurve: 'prime256v1', size: 32 }],
  [Algorithm.ECDSAP384SHA384, { kind: 'ec', hash: 'sha384', crv: 'P-384', nodeCurve: 'secp384r1', size: 48 }],
  [Algorithm.ED25519, { kind: 'okp', crv: 'Ed25519', keyType: 'ed25519', size: 32 }],
  [Algorithm.ED448, { kind: 'okp', crv: 'Ed448', keyType: 'ed448', size: 57 }],
]);

function specFor(algorithm: number): AlgorithmSpec {
  const spec = ALGORITHMS.get(algorithm);
  if (spec === undefined) throw new UnsupportedAlgorithmError(algorithm);
  return spec;
}

/** The hash node:crypto is given for an algorithm; null for EdDSA (pure, RFC 8080 §4). */
export function digestForAlgorithm(algorithm: number): Hash | null {
  const spec = specFor(algorithm);
  return spec.kind === 'okp' ? null : spec.hash;
}

/** RFC 4034 appendix B: ones-complement-style sum over the rdata wire form. */
export function keyTag(rdata: KeyRData): number {
  const wire = encodeRData('KEY', rdata);
  // Appendix B.1: algorithm 1 (RSA/MD5) uses bits of the modulus instead.
  if (rdata.algorithm === 1) {
    return wire.length < 3 ? 0 : wire.readUInt16BE(wire.length - 3);
  }
  let acc = 0;
  for (let i = 0; i < wire.length; i++) {
    acc += (i & 1) === 0 ? wire[i] << 8 : wire[i];
  }
  acc += (acc >>> 16) & 0xffff;
  return acc & 0xffff;
}

const b64url = (b: Buffer): string => b.toString('base64url');

function fromB64url(s: string | undefined, what: string): Buffer {
  if (s === undefined) throw new InvalidKeyError(`key has no ${what}`);
  return Buffer.from(s, 'base64url');
}

/** Left-pads (JWK may drop leading zero bytes) to a fixed width. */
function fixedWidth(b: Buffer, size: number): Buffer {
  if (b.length > size) throw new InvalidKeyError(`value of ${b.length} bytes exceeds ${size}`);
  return b.length === size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}

function importPublicJwk(jwk: crypto.JsonWebKey): KeyObject {
  try {
    return crypto.createPublicKey({ key: jwk, format: 'jwk' });
  } catch (err) {
    // e.g. an EC point that is not on the curve.
    throw new InvalidKeyError(`public key rejected: ${errorMessage(err)}`);
  }
}

/**
 * DER of SubjectPublicKeyInfo (RFC 5480 §2) up to the EC point: SEQUENCE,
 * AlgorithmIdentifier {id-ecPublicKey, named curve}, BIT STRING header.
 * Importing DER costs a fraction of what JWK does, and a key imported from
 * JWK also makes its first verification stall the calling thread; the
 * daemon imports a key for every claim, so this is on its hot path.
 */
const EC_SPKI_PREFIX: Readonly<Record<'P-256' | 'P-384', Buffer>> = {
  'P-256': Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'),
  'P-384': Buffer.from('3076301006072a8648ce3d020106052b81040022036200', 'hex'),
};
/** SEC 1 §2.3.3: the uncompressed-point marker DNSSEC leaves out (RFC 6605 §4). */
const EC_UNCOMPRESSED = Buffer.from([0x04]);

function importPublicSpki(der: Buffer): KeyObject {
  try {
    return crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (err) {
    // e.g. an EC point that is not on the curve.
    throw new InvalidKeyError(`public key rejected: ${errorMessage(err)}`);
  }
}

/** RFC 3110 §2: exponent length (1 byte, or 0 then 2 bytes), exponent, modulus. */
function rsaPublicJwk(key: Buffer): crypto.JsonWebKey {
  if (key.length < 1) throw new InvalidKeyError('empty RSA public key');
  let expLen = key[0];
  let offset = 1;
  if (expLen === 0) {
    if (key.length < 3) throw new InvalidKeyError('truncated RSA exponent length');
    expLen = key.readUInt16BE(1);
    offset = 3;
  }
  if (expLen === 0) throw new InvalidKeyError('RSA exponent length is 0');
  if (key.length < offset + expLen + 1) throw new InvalidKeyError('RSA public key shorter than its exponent length');
  const e = key.subarray(offset, offset + expLen);
  const n = key.subarray(offset + expLen);
  return { kty: 'RSA', e: b64url(e), n: b64url(n) };
}

/** Turns KEY/DNSKEY rdata into a node public key. */
export function publicKeyFromRData(k: KeyRData): KeyObject {
  const spec = specFor(k.algorithm);
  const key = k.publicKey;
  switch (spec.kind) {
    case 'rsa':
      return importPublicJwk(rsaPublicJwk(key));
    case 'ec':
      // RFC 6605 §4: x || y, no point-format prefix.
      if (key.length !== 2 * spec.size) {
        throw new InvalidKeyError(`${spec.crv} public key must be ${2 * spec.size} bytes, got ${key.length}`);
      }
      return rememberCurve(importPublicSpki(Buffer.concat([EC_SPKI_PREFIX[spec.crv], EC_UNCOMPRESSED, key])), spec.nodeCurve);
    case 'okp':
      if (key.length !== spec.size) {
        throw new InvalidKeyError(`${spec.crv} public key must be ${spec.size} bytes, got ${key.length}`);
      }
      return importPublicJwk({ kty: 'OKP', crv: spec.crv, x: b64url(key) });
  }
}

/**
 * The curve of each EC key this module imported. Node's
 * `asymmetricKeyDetails` makes OpenSSL 3 build a second, legacy copy of the
 * key (EVP_PKEY_get0_EC_KEY), about 1.4 KB that stays with the key and
 * costs the calling thread a few tens of microseconds; a key imported here
 * has its curve known already, and keeps only its provider form.
 */
const importedCurves = new WeakMap<KeyObject, string>();

function rememberCurve(key: KeyObject, curve: string): KeyObject {
  importedCurves.set(key, curve);
  return key;
}

/** Throws InvalidKeyError unless `key` is of the kind `algorithm` uses. */
function checkKeyKind(spec: AlgorithmSpec, algorithm: number, key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const ok =
    spec.kind === 'rsa'
      ? type === 'rsa'
      : spec.kind === 'ec'
        ? type === 'ec' && (importedCurves.get(key) ?? key.asymmetricKeyDetails?.namedCurve) === spec.nodeCurve
        : type === spec.keyType;
  if (!ok) throw new InvalidKeyError(`a ${type ?? 'non-asymmetric'} key cannot be used with algorithm ${algorithm}`);
}

/** Inverse of publicKeyFromRData. Accepts a public or a private key (its public half is used). */
export function publicKeyToRData(key: KeyObject, algorithm: number, flags = 256, protocol = 3): KeyRData {
  const spec = specFor(algorithm);
  checkKeyKind(spec, algorithm, key);
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  let publicKey: Buffer;
  switch (spec.kind) {
    case 'rsa': {
      const e = fromB64url(jwk.e, 'exponent');
      const n = fromB64url(jwk.n, 'modulus');
      // RFC 3110 §2: the long form is needed only above 255 bytes.
      const len = e.length <= 255 ? Buffer.from([e.length]) : Buffer.from([0, e.length >> 8, e.length & 0xff]);
      publicKey = Buffer.concat([len, e, n]);
      break;
    }
    case 'ec':
      publicKey = Buffer.concat([
        fixedWidth(fromB64url(jwk.x, 'x coordinate'), spec.size),
        fixedWidth(fromB64url(jwk.y, 'y coordinate'), spec.size),
      ]);
      break;
    case 'okp':
      publicKey = fromB64url(jwk.x, 'public key');
      break;
  }
  return { flags, protocol, algorithm, publicKey };
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** A fresh key pair; RSA keys are 2048 bit with e = 65537. */
export function generateKeyPair(algorithm: number): KeyPair {
  const spec = specFor(algorithm);
  // The pair comes back DER-encoded and is imported afresh. Node 20 can
  // deadlock when a KeyObject made by generateKeyPairSync is exported (as
  // JWK, which publicKeyToRData and the private key file writer do) while a
  // garbage collection destroys the generation job that still shares the
  // key's lock — seen as a signing process hanging forever in a benchmark.
  const pub = { type: 'spki', format: 'der' } as const;
  const priv = { type: 'pkcs8', format: 'der' } as const;
  let der: { publicKey: Buffer; privateKey: Buffer };
  switch (spec.kind) {
    case 'rsa':
      der = crypto.generateKeyPairSync('rsa', {
        modulusLength: 2048,
        publicExponent: 65537,
        publicKeyEncoding: { ...pub },
        privateKeyEncoding: { ...priv },
      });
      break;
    case 'ec':
      der = crypto.generateKeyPairSync('ec', {
        namedCurve: spec.nodeCurve,
        publicKeyEncoding: { ...pub },
        privateKeyEncoding: { ...priv },
      });
      break;
    case 'okp':
      der =
        spec.keyType === 'ed25519'
          ? crypto.generateKeyPairSync('ed25519', { publicKeyEncoding: { ...pub }, privateKeyEncoding: { ...priv } })
          : crypto.generateKeyPairSync('ed448', { publicKeyEncoding: { ...pub }, privateKeyEncoding: { ...priv } });
      break;
  }
  return {
    privateKey: crypto.createPrivateKey({ key: der.privateKey, format: 'der', type: 'pkcs8' }),
    publicKey: crypto.createPublicKey({ key: der.publicKey, format: 'der', type: 'spki' }),
  };
}

/** Key input for crypto.sign/verify; ECDSA wants r||s (RFC 6605 §4), not DER. */
function keyInput(spec: AlgorithmSpec, key: KeyObject): KeyObject | crypto.VerifyKeyObjectInput {
  return spec.kind === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : key;
}

/** Signs `data` in the DNSSEC wire signature format of `algorithm`. */
export function signData(algorithm: number, privateKey: KeyObject, data: Buffer): Buffer {
  const spec = specFor(algorithm);
  checkKeyKind(spec, algorithm, privateKey);
  if (privateKey.type !== 'private') throw new InvalidKeyError('signing needs a private key');
  return crypto.sign(digestForAlgorithm(algorithm), data, keyInput(spec, privateKey));
}

/** One DER INTEGER (X.690 §8.3) of the unsigned big-endian `bytes`: minimal, non-negative. */
function derInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const pad = (bytes[start] & 0x80) !== 0 ? 1 : 0;
  const len = bytes.length - start + pad;
  const out = Buffer.alloc(2 + len);
  out[0] = 0x02;
  out[1] = len;
  bytes.copy(out, 2 + pad, start);
  return out;
}

/**
 * An ECDSA signature r || s (RFC 6605 §4, each `size` bytes) as the DER
 * Ecdsa-Sig-Value SEQUENCE { r INTEGER, s INTEGER } (RFC 5480 §2.2.3; RFC
 * 3279 §2.2.3). Node would do this itself for `dsaEncoding: 'ieee-p1363'`,
 * but to learn the size of r and s it asks OpenSSL 3 for the legacy form of
 * the key, which builds a second copy of every key on its first check (on
 * the calling thread, and kept as long as the key): see importedCurves.
 * `size` ≤ 66, so the contents stay below 128 octets (a one-octet length).
 */
export function ecdsaSignatureToDer(signature: Buffer, size: number): Buffer {
  const r = derInteger(signature.subarray(0, size));
  const s = derInteger(signature.subarray(size, 2 * size));
  return Buffer.concat([Buffer.from([0x30, r.length + s.length]), r, s]);
}

/**
 * Common checks of verifyData/verifyDataAsync. Returns undefined when the
 * signature cannot be valid for shape reasons alone.
 */
function prepareVerify(
  algorithm: number,
  publicKey: KeyObject,
  signature: Buffer,
): { hash: Hash | null; key: KeyObject; signature: Buffer } | undefined {
  const spec = specFor(algorithm);
  checkKeyKind(spec, algorithm, publicKey);
  // Fixed-width formats: anything else is malformed, hence invalid.
  if (spec.kind === 'ec' && signature.length !== 2 * spec.size) return undefined;
  if (spec.kind === 'okp' && signature.length !== 2 * spec.size) return undefined;
  if (signature.length === 0) return undefined;
  return { hash: digestForAlgorithm(algorithm), key: publicKey, signature: spec.kind === 'ec' ? ecdsaSignatureToDer(signature, spec.size) : signature };
}

/**
 * True when `signature` is valid. Malformed signatures give false; an
 * unsupported algorithm or a key of the wrong kind throws (caller error).
 */
export function verifyData(algorithm: number, publicKey: KeyObject, data: Buffer, signature: Buffer): boolean {
  const prepared = prepareVerify(algorithm, publicKey, signature);
  if (prepared === undefined) return false;
  try {
    return crypto.verify(prepared.hash, data, prepared.key, prepared.signature);
  } catch {
    return false;
  }
}

/** verifyData on libuv's thread pool, so a burst of checks does not block the event loop. */
export function verifyDataAsync(
  algorithm: number,
  publicKey: KeyObject,
  data: Buffer,
  signature: Buffer,
): Promise<boolean> {
  let prepared: ReturnType<typeof prepareVerify>;
  try {
    prepared = prepareVerify(algorithm, publicKey, signature);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
  if (prepared === undefined) return Promise.resolve(false);
  const { hash, key } = prepared;
  return new Promise<boolean>((resolve) => {
    try {
      crypto.verify(hash, data, key, prepared.signature, (err, ok) => resolve(err === null && ok));
    } catch {
      resolve(false);
    }
  });
}

/**
 * Bounds on what one signature check may cost, applied to keys offered in
 * a claim. The most expensive check allowed is a P-384 verify. Measured
 * with node:crypto on the development machine (Node 20, OpenSSL 3, one
 * core, 300-byte message): P-384 0.43 ms, Ed448 0.15 ms, RSA-4096 with
 * e = 2^32 − 1 0.12 ms, Ed25519 0.06 ms, RSA-4096 (e = 65537) 0.05 ms,
 * P-256 0.05 ms, RSA-2048 0.02 ms. An RSA check grows with the exponent's
 * length, so an unbounded exponent is unbounded cost (a 3,064-bit exponent
 * costs 6.8 ms); RSA below 2048 bits is too weak to be worth claiming with.
 */
export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 4096;
export const RSA_MAX_EXPONENT = 2n ** 32n;

/**
 * Why a key of a supported algorithm is not acceptable for a claim (RSA
 * outside RSA_MIN_BITS–RSA_MAX_BITS or with an exponent above
 * RSA_MAX_EXPONENT), or undefined when it is. Unsupported algorithms and
 * malformed keys are left to publicKeyFromRData.
 */
export function keyCostProblem(k: KeyRData): string | undefined {
  const spec = ALGORITHMS.get(k.algorithm);
  if (spec?.kind !== 'rsa') return undefined;
  let jwk: crypto.JsonWebKey;
  try {
    jwk = rsaPublicJwk(k.publicKey);
  } catch {
    return undefined;
  }
  const e = BigInt(`0x${fromB64url(jwk.e, 'exponent').toString('hex') || '0'}`);
  const n = fromB64url(jwk.n, 'modulus');
  const bits = n.length === 0 ? 0 : BigInt(`0x${n.toString('hex')}`).toString(2).length;
  if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) return `RSA modulus of ${bits} bits (allowed ${RSA_MIN_BITS}–${RSA_MAX_BITS})`;
  if (e > RSA_MAX_EXPONENT) return `RSA public exponent of ${e.toString(2).length} bits (allowed up to 2^32)`;
  return undefined;
}

/** Whether two KEY rdata are the same key (flags, protocol, algorithm and key bytes). */
export function sameKey(a: Readonly<KeyRData>, b: Readonly<KeyRData>): boolean {
  return a.flags === b.flags && a.protocol === b.protocol && a.algorithm === b.algorithm && a.publicKey.equals(b.publicKey);
}
