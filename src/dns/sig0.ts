/**
 * SIG(0) transaction signatures, RFC 2931 §3.
 *
 * The signed data is the SIG rdata without its signature field, followed by
 * the message exactly as it was before the SIG RR was appended (ARCOUNT not
 * counting it). Verification works on the bytes received: the message prefix
 * is sliced out of the raw buffer, never re-encoded, because name compression
 * differs between implementations (BIND's nsupdate compresses, Go's client
 * does not).
 */
import type { KeyObject } from 'node:crypto';
import { RRClass } from './constants.js';
import { Sig0Error, UnsupportedAlgorithmError, InvalidKeyError } from './errors.js';
import { keyTag, publicKeyFromRData, signData, verifyData, verifyDataAsync } from './keys.js';
import { appendAdditional, type DecodedMessage } from './message.js';
import { namesEqual } from './names.js';
import { encodeSigRDataForSigning, type SigFields, type SigRData } from './rdata.js';
import type { KeyRData } from './types.js';

/** RFC 2931 leaves the window to the signer; ±5 minutes is what BIND and the original client use. */
export const DEFAULT_SIG0_WINDOW = 300;

export interface Sig0Signer {
  /** Signer name: the owner of the KEY, i.e. the name being claimed. */
  name: string;
  algorithm: number;
  keyTag: number;
  privateKey: KeyObject;
}

export interface Sig0SignOptions {
  /** Unix seconds. */
  now: number;
  /** Seconds before and after `now` the signature is valid. */
  window?: number;
}

/** Appends a SIG(0) RR to an encoded message and returns the signed message. */
export function signSig0(message: Buffer, signer: Sig0Signer, opts: Sig0SignOptions): Buffer {
  const window = opts.window ?? DEFAULT_SIG0_WINDOW;
  const fields: SigFields = {
    typeCovered: 0,
    algorithm: signer.algorithm,
    labels: 0,
    originalTtl: 0,
    expiration: opts.now + window,
    inception: opts.now - window,
    keyTag: signer.keyTag,
    signerName: signer.name,
  };
  const signature = signData(signer.algorithm, signer.privateKey, Buffer.concat([encodeSigRDataForSigning(fields), message]));
  return appendAdditional(message, { name: '.', type: 'SIG', class: RRClass.ANY, ttl: 0, data: { ...fields, signature } });
}

/** The SIG(0) RR of a message and the bytes it signs. */
export interface Sig0Extract {
  sig: SigRData;
  signedData: Buffer;
}

/**
 * Finds the SIG(0) (it must be the last RR of the additional section) and
 * rebuilds the signed data from the received bytes.
 */
export function extractSig0(msg: DecodedMessage): Sig0Extract {
  const adds = msg.additionals;
  const index = adds.findIndex((rr) => rr.type === 'SIG');
  if (index < 0) throw new Sig0Error('no-sig', 'no SIG RR in the additional section');
  if (index !== adds.length - 1) throw new Sig0Error('sig-not-last', 'the SIG RR is not the last RR of the message');
  const rr = adds[index];
  if (rr === undefined || rr.type !== 'SIG' || rr.data === null) throw new Sig0Error('not-sig0', 'the SIG RR has no rdata');
  if (rr.data.typeCovered !== 0 || rr.class !== RRClass.ANY) {
    throw new Sig0Error('not-sig0', 'the SIG RR is not a SIG(0) (type covered must be 0, class ANY)');
  }
  const span = msg.spans.additionals[index];
  if (span === undefined) throw new Sig0Error('no-sig', 'no span for the SIG RR');
  const { raw } = msg;
  // The signed SIG fields are the received rdata up to the signature when the
  // signer name arrived uncompressed (as RFC 2931 §3 requires); otherwise
  // they are rebuilt with the name written out in full.
  const signerEnd = uncompressedNameEnd(raw, span.rdataStart + 18, span.end);
  const sigFields =
    signerEnd !== undefined && signerEnd === span.end - rr.data.signature.length
      ? raw.subarray(span.rdataStart, signerEnd)
      : encodeSigRDataForSigning(rr.data);
  // One copy: SIG fields, then the message before the SIG with ARCOUNT - 1.
  const signedData = Buffer.allocUnsafe(sigFields.length + span.start);
  sigFields.copy(signedData, 0);
  raw.copy(signedData, sigFields.length, 0, span.start);
  signedData.writeUInt16BE(raw.readUInt16BE(10) - 1, sigFields.length + 10);
  return { sig: rr.data, signedData };
}

/** End of a name at `offset` written without compression pointers, or undefined. */
function uncompressedNameEnd(buf: Buffer, offset: number, limit: number): number | undefined {
  let p = offset;
  while (p < limit) {
    const len = buf[p];
    if (len === 0) return p + 1;
    if (len > 63) return undefined;
    p += len + 1;
  }
  return undefined;
}

/** The public key a message must be signed with. */
export interface Sig0Key {
  /** KEY owner name; must equal the SIG signer name. */
  name: string;
  rdata: KeyRData;
  /** Cached KeyObject; made from `rdata` when absent. */
  publicKey?: KeyObject;
  /**
   * Where to get the KeyObject when `publicKey` is absent (a cache, say),
   * called only after the cheap checks passed; default publicKeyFromRData.
   * Throws what publicKeyFromRData throws.
   */
  importKey?: (rdata: KeyRData) => KeyObject;
  /** Cached key tag; computed from `rdata` when absent. */
  keyTag?: number;
}

/** A verification whose cheap checks passed; only the signature check remains. */
export interface PreparedSig0 {
  algorithm: number;
  publicKey: KeyObject;
  data: Buffer;
  signature: Buffer;
}

/**
 * Every check except the signature itself: window, signer, algorithm, key
 * tag, key usability. `now` is Unix seconds. Throws Sig0Error.
 */
export function prepareSig0(extract: Sig0Extract, key: Sig0Key, now: number): PreparedSig0 {
  const { sig } = extract;
  if (now < sig.inception) throw new Sig0Error('not-yet-valid', `signature valid from ${sig.inception}, now is ${now}`);
  if (now > sig.expiration) throw new Sig0Error('expired', `signature expired at ${sig.expiration}, now is ${now}`);
  if (!namesEqual(sig.signerName, key.name)) {
    throw new Sig0Error('signer-mismatch', `signer ${sig.signerName} is not the key owner ${key.name}`);
  }
  if (sig.algorithm !== key.rdata.algorithm) {
    throw new Sig0Error('algorithm-mismatch', `signature algorithm ${sig.algorithm}, key algorithm ${key.rdata.algorithm}`);
  }
  const tag = key.keyTag ?? keyTag(key.rdata);
  if (sig.keyTag !== tag) throw new Sig0Error('keytag-mismatch', `signature key tag ${sig.keyTag}, key tag ${tag}`);
  let publicKey = key.publicKey;
  if (publicKey === undefined) {
    try {
      publicKey = (key.importKey ?? publicKeyFromRData)(key.rdata);
    } catch (err) {
      if (err instanceof UnsupportedAlgorithmError) {
        throw new Sig0Error('unsupported-algorithm', `algorithm ${key.rdata.algorithm} is not supported`);
      }
      if (err instanceof InvalidKeyError) throw new Sig0Error('bad-key', err.message);
      throw err;
    }
  }
  return { algorithm: sig.algorithm, publicKey, data: extract.signedData, signature: sig.signature };
}

function badSignature(): Sig0Error {
  return new Sig0Error('bad-signature', 'signature does not verify');
}

/** Full SIG(0) verification on the calling thread. Throws Sig0Error. */
export function verifySig0(msg: DecodedMessage, key: Sig0Key, now: number): Sig0Extract {
  const extract = extractSig0(msg);
  const p = prepareSig0(extract, key, now);
  if (!verifyData(p.algorithm, p.publicKey, p.data, p.signature)) throw badSignature();
  return extract;
}

/** The signature check of a prepared verification, on libuv's thread pool. Rejects with Sig0Error. */
export async function verifyPreparedSig0(p: PreparedSig0): Promise<void> {
  if (!(await verifyDataAsync(p.algorithm, p.publicKey, p.data, p.signature))) throw badSignature();
}

/** Full SIG(0) verification with the signature check off the event loop. */
export async function verifySig0Async(msg: DecodedMessage, key: Sig0Key, now: number): Promise<Sig0Extract> {
  const extract = extractSig0(msg);
  await verifyPreparedSig0(prepareSig0(extract, key, now));
  return extract;
}

/** The KEY RRs of the additional section (what a claimant sends along). */
export function keyRecords(msg: DecodedMessage): Array<{ name: string; ttl: number; class: number; rdata: KeyRData }> {
  const out: Array<{ name: string; ttl: number; class: number; rdata: KeyRData }> = [];
  for (const rr of msg.additionals) {
    if (rr.type === 'KEY' && rr.data !== null) out.push({ name: rr.name, ttl: rr.ttl, class: rr.class, rdata: rr.data });
  }
  return out;
}
