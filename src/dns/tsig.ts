/**
 * TSIG, RFC 8945: sign requests to upstream servers and verify their
 * responses (the original trusted whatever came back).
 */
import * as crypto from 'node:crypto';
import { RRClass, Rcode, rcodeName } from './constants.js';
import { TsigError } from './errors.js';
import { encodeRecord, type DecodedMessage, type TsigRData } from './message.js';
import { canonicalName, encodeName } from './names.js';

/** RFC 8945 §6: algorithm names and the HMAC hash behind each. */
const HMACS = new Map<string, string>([
  ['hmac-sha1.', 'sha1'],
  ['hmac-sha224.', 'sha224'],
  ['hmac-sha256.', 'sha256'],
  ['hmac-sha384.', 'sha384'],
  ['hmac-sha512.', 'sha512'],
]);

/** The default fudge (seconds of clock skew tolerated), as BIND and the original use. */
export const DEFAULT_TSIG_FUDGE = 300;

export interface TsigKey {
  /** Key name as configured (FQDN). */
  name: string;
  /** Algorithm name, e.g. "hmac-sha256." (trailing dot optional). */
  algorithm: string;
  secret: Buffer;
}

/** Normalises an algorithm name ("hmac-sha256" → "hmac-sha256."); undefined if not supported. */
export function tsigAlgorithm(name: string): string | undefined {
  const n = canonicalName(name);
  return HMACS.has(n) ? n : undefined;
}

export function supportedTsigAlgorithms(): string[] {
  return [...HMACS.keys()];
}

function hashFor(algorithm: string): string {
  const hash = HMACS.get(canonicalName(algorithm));
  if (hash === undefined) throw new TsigError('unknown-algorithm', `TSIG algorithm ${algorithm} is not supported`);
  return hash;
}

function u48(value: number): Buffer {
  const b = Buffer.allocUnsafe(6);
  b.writeUInt16BE(Math.floor(value / 0x100000000) & 0xffff, 0);
  b.writeUInt32BE(value >>> 0, 2);
  return b;
}

/** RFC 8945 §4.3.3: the TSIG variables, names in canonical (lower-case, uncompressed) form. */
function tsigVariables(keyName: string, t: Pick<TsigRData, 'algorithm' | 'timeSigned' | 'fudge' | 'error' | 'otherData'>): Buffer {
  const cls = Buffer.allocUnsafe(6);
  cls.writeUInt16BE(RRClass.ANY, 0);
  cls.writeUInt32BE(0, 2);
  const tail = Buffer.allocUnsafe(6);
  tail.writeUInt16BE(t.fudge, 0);
  tail.writeUInt16BE(t.error, 2);
  tail.writeUInt16BE(t.otherData.length, 4);
  return Buffer.concat([
    encodeName(canonicalName(keyName)),
    cls,
    encodeName(canonicalName(t.algorithm)),
    u48(t.timeSigned),
    tail,
    t.otherData,
  ]);
}

export interface TsigSigned {
  message: Buffer;
  /** The request MAC: a response's MAC is chained on it (§4.3.1). */
  mac: Buffer;
}

/** Appends a TSIG RR to an encoded request. `now` is Unix seconds. */
export function signTsig(message: Buffer, key: TsigKey, now: number, fudge = DEFAULT_TSIG_FUDGE): TsigSigned {
  const algorithm = canonicalName(key.algorithm);
  const hash = hashFor(algorithm);
  const fields = { algorithm, timeSigned: now, fudge, error: 0, otherData: Buffer.alloc(0) };
  const mac = crypto.createHmac(hash, key.secret).update(message).update(tsigVariables(key.name, fields)).digest();
  const rr = encodeRecord({
    name: canonicalName(key.name),
    type: 'TSIG',
    class: RRClass.ANY,
    ttl: 0,
    data: { ...fields, mac, originalId: message.readUInt16BE(0) },
  });
  const out = Buffer.concat([message, rr]);
  out.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { message: out, mac };
}

/**
 * Signs a response to a TSIG-signed request (§4.3.1: MAC chained on the
 * request MAC). What a server does; we use it to test verification.
 */
export function signTsigResponse(
  response: Buffer,
  key: TsigKey,
  requestMac: Buffer,
  now: number,
  opts: { fudge?: number; error?: number } = {},
): Buffer {
  const algorithm = canonicalName(key.algorithm);
  const fields = {
    algorithm,
    timeSigned: now,
    fudge: opts.fudge ?? DEFAULT_TSIG_FUDGE,
    error: opts.error ?? 0,
    otherData: Buffer.alloc(0),
  };
  const macLen = Buffer.allocUnsafe(2);
  macLen.writeUInt16BE(requestMac.length);
  const mac = crypto
    .createHmac(hashFor(algorithm), key.secret)
    .update(macLen)
    .update(requestMac)
    .update(response)
    .update(tsigVariables(key.name, fields))
    .digest();
  const rr = encodeRecord({
    name: canonicalName(key.name),
    type: 'TSIG',
    class: RRClass.ANY,
    ttl: 0,
    data: { ...fields, mac, originalId: response.readUInt16BE(0) },
  });
  const out = Buffer.concat([response, rr]);
  out.writeUInt16BE(response.readUInt16BE(10) + 1, 10);
  return out;
}

const ERROR_REASONS = new Map<number, 'BADSIG' | 'BADKEY' | 'BADTIME'>([
  [Rcode.BADSIG, 'BADSIG'],
  [Rcode.BADKEY, 'BADKEY'],
  [Rcode.BADTIME, 'BADTIME'],
]);

/**
 * Verifies the TSIG of a response to a request we signed with `key` and whose
 * MAC was `requestMac`. Throws TsigError: `remote` set when the server
 * reported BADSIG/BADKEY/BADTIME about our request, unset when the response
 * itself fails our checks.
 */
export function verifyTsigResponse(response: DecodedMessage, key: TsigKey, requestMac: Buffer, now: number): TsigRData {
  const adds = response.additionals;
  const last = adds[adds.length - 1];
  const span = response.spans.additionals[adds.length - 1];
  if (last === undefined || last.type !== 'TSIG' || last.data === null || span === undefined) {
    const why = response.rcode === Rcode.NOERROR ? '' : ` (server answered ${rcodeName(response.rcode)})`;
    throw new TsigError('unsigned-response', `response carries no TSIG${why}`);
  }
  const t = last.data;
  const serverError = ERROR_REASONS.get(t.error);
  if (serverError !== undefined) {
    throw new TsigError(serverError, `server rejected our TSIG: ${serverError}`, true);
  }
  if (t.error !== 0) throw new TsigError('BADSIG', `server reported TSIG error ${rcodeName(t.error)}`, true);
  if (canonicalName(last.name) !== canonicalName(key.name)) {
    throw new TsigError('key-mismatch', `response signed with key ${last.name}, expected ${key.name}`);
  }
  if (canonicalName(t.algorithm) !== canonicalName(key.algorithm)) {
    throw new TsigError('key-mismatch', `response signed with ${t.algorithm}, expected ${key.algorithm}`);
  }
  // §4.3.1: request MAC, then the response as it was before TSIG was added (original ID, ARCOUNT - 1).
  const body = Buffer.from(response.raw.subarray(0, span.start));
  body.writeUInt16BE(t.originalId, 0);
  body.writeUInt16BE(body.readUInt16BE(10) - 1, 10);
  const macLen = Buffer.allocUnsafe(2);
  macLen.writeUInt16BE(requestMac.length);
  const expected = crypto
    .createHmac(hashFor(t.algorithm), key.secret)
    .update(macLen)
    .update(requestMac)
    .update(body)
    .update(tsigVariables(last.name, t))
    .digest();
  // §5.2.2.1: a truncated MAC must keep at least half the digest and 10 octets.
  if (t.mac.length < expected.length && (t.mac.length < 10 || t.mac.length * 2 < expected.length)) {
    throw new TsigError('BADTRUNC', `response MAC truncated to ${t.mac.length} octets`);
  }
  if (t.mac.length > expected.length || !crypto.timingSafeEqual(t.mac, expected.subarray(0, t.mac.length))) {
    throw new TsigError('BADSIG', 'response MAC does not verify');
  }
  // §5.2.3: check time after the MAC, so a forged time cannot mask a bad MAC.
  if (Math.abs(now - t.timeSigned) > t.fudge) {
    throw new TsigError('BADTIME', `response signed at ${t.timeSigned}, now is ${now}, fudge ${t.fudge}`);
  }
  return t;
}
