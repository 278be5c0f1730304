/**
 * TSIG, RFC 8945: sign requests to upstream servers and verify their
 * responses (the original program did not check responses at all).
 */
import * as crypto from 'node:crypto';
import { RRClass, Rcode, rcodeName } from './constants.js';
import { TsigError } from './errors.js';
import { appendAdditional, recordLength, type DecodedMessage, type ResourceRecord } from './message.js';
import { canonicalName, nameLength, writeName } from './names.js';
import { writeUInt48BE, type TsigRData } from './rdata.js';

/** RFC 8945 §6: algorithm names, the HMAC hash behind each and its digest size in octets. */
const HMACS = new Map<string, { hash: string; size: number }>([
  ['hmac-sha1.', { hash: 'sha1', size: 20 }],
  ['hmac-sha224.', { hash: 'sha224', size: 28 }],
  ['hmac-sha256.', { hash: 'sha256', size: 32 }],
  ['hmac-sha384.', { hash: 'sha384', size: 48 }],
  ['hmac-sha512.', { hash: 'sha512', size: 64 }],
]);

/** The default fudge (seconds of clock skew tolerated), the value BIND uses too. */
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

function hmacFor(algorithm: string): { hash: string; size: number } {
  const hmac = HMACS.get(canonicalName(algorithm));
  if (hmac === undefined) throw new TsigError('unknown-algorithm', `TSIG algorithm ${algorithm} is not supported`);
  return hmac;
}

type TsigFields = Pick<TsigRData, 'algorithm' | 'timeSigned' | 'fudge' | 'error' | 'otherData'>;

/** RFC 8945 §4.3.3: the TSIG variables, names in canonical (lower-case, uncompressed) form. */
function tsigVariables(keyName: string, t: TsigFields): Buffer {
  const key = canonicalName(keyName);
  const algorithm = canonicalName(t.algorithm);
  const out = Buffer.allocUnsafe(nameLength(key) + nameLength(algorithm) + 18 + t.otherData.length);
  let p = writeName(key, out, 0);
  p = out.writeUInt16BE(RRClass.ANY, p);
  p = out.writeUInt32BE(0, p); // TTL
  p += writeName(algorithm, out, p);
  p = writeUInt48BE(t.timeSigned, out, p);
  p = out.writeUInt16BE(t.fudge, p);
  p = out.writeUInt16BE(t.error, p);
  p = out.writeUInt16BE(t.otherData.length, p);
  t.otherData.copy(out, p);
  return out;
}

function fieldsFor(key: TsigKey, now: number, fudge: number, error: number): TsigFields {
  return { algorithm: canonicalName(key.algorithm), timeSigned: now, fudge, error, otherData: Buffer.alloc(0) };
}

/** The TSIG RR of a message signed with `key`; the original ID is the message's own (§4.2). */
function tsigRecord(key: TsigKey, fields: TsigFields, mac: Buffer, originalId: number): ResourceRecord {
  return { name: canonicalName(key.name), type: 'TSIG', class: RRClass.ANY, ttl: 0, data: { ...fields, mac, originalId } };
}

/** Octets the TSIG RR adds to a message signed with `key`: the same for every request (§4.2). */
export function tsigLength(key: TsigKey): number {
  const mac = Buffer.alloc(hmacFor(key.algorithm).size);
  return recordLength(tsigRecord(key, fieldsFor(key, 0, DEFAULT_TSIG_FUDGE, 0), mac, 0));
}

export interface TsigSigned {
  message: Buffer;
  /** The request MAC: a response's MAC is chained on it (§4.3.1). */
  mac: Buffer;
}

/** Appends a TSIG RR to an encoded request. `now` is Unix seconds. */
export function signTsig(message: Buffer, key: TsigKey, now: number, fudge = DEFAULT_TSIG_FUDGE): TsigSigned {
  const fields = fieldsFor(key, now, fudge, 0);
  const mac = crypto
    .createHmac(hmacFor(fields.algorithm).hash, key.secret)
    .update(message)
    .update(tsigVariables(key.name, fields))
    .digest();
  return { message: appendAdditional(message, tsigRecord(key, fields, mac, message.readUInt16BE(0))), mac };
}

/** §4.3.1: a MAC chained on the request MAC (length, then MAC) covers `body`, then the TSIG variables. */
function chainedMac(key: TsigKey, requestMac: Buffer, body: Buffer, fields: TsigFields): Buffer {
  const macLen = Buffer.allocUnsafe(2);
  macLen.writeUInt16BE(requestMac.length);
  return crypto
    .createHmac(hmacFor(fields.algorithm).hash, key.secret)
    .update(macLen)
    .update(requestMac)
    .update(body)
    .update(tsigVariables(key.name, fields))
    .digest();
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
  const fields = fieldsFor(key, now, opts.fudge ?? DEFAULT_TSIG_FUDGE, opts.error ?? 0);
  const mac = chainedMac(key, requestMac, response, fields);
  return appendAdditional(response, tsigRecord(key, fields, mac, response.readUInt16BE(0)));
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
  // The owner name was just checked to be the key's name (compared canonically, as §4.3.3 writes it).
  const expected = chainedMac(key, requestMac, body, t);
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

/** What checking a request's TSIG against the keys we know found. */
export type TsigRequestCheck =
  | { ok: true; key: TsigKey; tsig: TsigRData }
  | {
      ok: false;
      /** The TSIG error to report (RFC 8945 §5.2): BADKEY, BADSIG or BADTIME. */
      error: number;
      /** The key the request named: the error response names it too. */
      keyName: string;
      tsig: TsigRData;
      /** Set when the MAC verified (BADTIME): the error response is signed with it (§5.2.3). */
      key?: TsigKey;
    };

/**
 * Server side of RFC 8945 §5.2: checks the TSIG RR that ends `request`
 * against `keys`. Undefined when the request carries no TSIG. The key is
 * looked up by name and algorithm (§5.2.1: BADKEY otherwise), the MAC
 * computed over the request as it was before the TSIG was added (§4.3.2),
 * then the time (§5.2.3, after the MAC, so a forged time cannot mask a bad
 * MAC). `now` is Unix seconds.
 */
export function verifyTsigRequest(request: DecodedMessage, keys: readonly TsigKey[], now: number): TsigRequestCheck | undefined {
  const adds = request.additionals;
  const last = adds[adds.length - 1];
  const span = request.spans.additionals[adds.length - 1];
  if (last === undefined || last.type !== 'TSIG' || last.data === null || span === undefined) return undefined;
  const t = last.data;
  const keyName = canonicalName(last.name);
  const key = keys.find((k) => canonicalName(k.name) === keyName && canonicalName(k.algorithm) === canonicalName(t.algorithm));
  if (key === undefined) return { ok: false, error: Rcode.BADKEY, keyName, tsig: t };
  const body = Buffer.from(request.raw.subarray(0, span.start));
  body.writeUInt16BE(t.originalId, 0);
  body.writeUInt16BE(body.readUInt16BE(10) - 1, 10);
  const expected = crypto.createHmac(hmacFor(key.algorithm).hash, key.secret).update(body).update(tsigVariables(keyName, t)).digest();
  // §5.2.2.1: a MAC truncated below half the digest or 10 octets is refused as BADSIG here.
  const minLength = Math.max(10, Math.ceil(expected.length / 2));
  if (t.mac.length < minLength || t.mac.length > expected.length || !crypto.timingSafeEqual(t.mac, expected.subarray(0, t.mac.length))) {
    return { ok: false, error: Rcode.BADSIG, keyName, tsig: t };
  }
  if (Math.abs(now - t.timeSigned) > t.fudge) return { ok: false, error: Rcode.BADTIME, keyName, tsig: t, key };
  return { ok: true, key, tsig: t };
}

/**
 * The TSIG RR of an error response the server cannot sign (§5.2: BADKEY,
 * BADSIG): the request's key name, algorithm and time, an empty MAC and the
 * error. Appended to the encoded response.
 */
export function appendTsigError(response: Buffer, keyName: string, request: TsigRData, error: number): Buffer {
  const rr: ResourceRecord = {
    name: keyName,
    type: 'TSIG',
    class: RRClass.ANY,
    ttl: 0,
    data: {
      algorithm: canonicalName(request.algorithm),
      timeSigned: request.timeSigned,
      fudge: request.fudge,
      mac: Buffer.alloc(0),
      originalId: response.readUInt16BE(0),
      error,
      otherData: Buffer.alloc(0),
    },
  };
  return appendAdditional(response, rr);
}

/** §4.3.2.1 / §4.3.3: the TSIG timers (Time Signed, Fudge) that later messages of a multi-message response cover. */
function tsigTimers(timeSigned: number, fudge: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  writeUInt48BE(timeSigned, out, 0);
  out.writeUInt16BE(fudge, 6);
  return out;
}

/**
 * Signs the messages of one response to a verified request, in order
 * (RFC 8945 §5.3.1): the first message's MAC covers the request MAC, the
 * message and every TSIG variable; each later one covers the previous
 * message's MAC, the message and only the timers. We sign every message
 * (§5.3.1 allows up to 99 unsigned ones between signed ones; a receiver
 * must accept every one signed).
 */
export class TsigResponseSigner {
  #prior: Buffer;
  #first = true;

  constructor(
    private readonly key: TsigKey,
    requestMac: Buffer,
    private readonly now: () => number,
    private readonly fudge = DEFAULT_TSIG_FUDGE,
  ) {
    this.#prior = requestMac;
  }

  /**
   * Appends the TSIG RR to the next message. `error` and `otherData`
   * (BADTIME: the server's time, §5.2.3) only on a single-message error
   * response; `timeSigned` overrides the clock (BADTIME echoes the request's).
   */
  sign(message: Buffer, opts: { error?: number; otherData?: Buffer; timeSigned?: number } = {}): Buffer {
    const fields: TsigFields = {
      algorithm: canonicalName(this.key.algorithm),
      timeSigned: opts.timeSigned ?? this.now(),
      fudge: this.fudge,
      error: opts.error ?? 0,
      otherData: opts.otherData ?? Buffer.alloc(0),
    };
    let mac: Buffer;
    if (this.#first) {
      mac = chainedMac(this.key, this.#prior, message, fields);
      this.#first = false;
    } else {
      const priorLen = Buffer.allocUnsafe(2);
      priorLen.writeUInt16BE(this.#prior.length);
      mac = crypto
        .createHmac(hmacFor(fields.algorithm).hash, this.key.secret)
        .update(priorLen)
        .update(this.#prior)
        .update(message)
        .update(tsigTimers(fields.timeSigned, fields.fudge))
        .digest();
    }
    this.#prior = mac;
    return appendAdditional(message, tsigRecord(this.key, fields, mac, message.readUInt16BE(0)));
  }
}

/** §5.2.3: the Other Data of a BADTIME response, the server's time as 48 bits. */
export function tsigServerTime(now: number): Buffer {
  const out = Buffer.allocUnsafe(6);
  writeUInt48BE(now, out, 0);
  return out;
}
