/**
 * The shared store's layout in etcd (README, "Several daemons as one
 * service"): the keys of one zone's namespace and the codecs of their
 * values. Keys here are relative to the zone namespace
 * `<prefix>/v1/zones/<zone>/` (see contract.ts for the whole layout).
 *
 * Everything read from etcd is hostile input: a decoder checks the shape,
 * the types, every range and the size, and answers with a reason instead of
 * a value when anything is off, so that the caller can skip the entry and
 * report it. Encoders refuse what the decoder would reject, so a value this
 * module writes always reads back.
 *
 * Names (zones and claimed names) are canonical FQDNs (lower case, trailing
 * dot, src/dns/names.ts) percent-encoded with encodeURIComponent, so that
 * no `/` can appear inside one path segment; a segment must be exactly the
 * encoding of a canonical name, so one name has one key. Addresses are
 * written as the A/AAAA codec writes them (src/dns/rdata.ts) and need no
 * encoding (digits, hex, `.` and `:`).
 *
 * Pure: no I/O, no clock. The CLI imports it too (store export/import).
 */
import { randomBytes } from 'node:crypto';
import type { Namespace } from 'etcd3';
import { NsregError } from '../../errors.js';
import { keyCostProblem, keyTag } from '../../dns/keys.js';
import { canonicalName } from '../../dns/names.js';
import { decodeRData, encodeRData } from '../../dns/rdata.js';
import type { KeyRData } from '../../dns/types.js';
import { isCanonicalIPv4 } from '../../net/address.js';
import type { AddrRecord, AddrType, UpstreamChange } from '../records.js';
import { LAYOUT_VERSION, type StoredChange, type StoredClaim, type StoredDeadlines, type StoredRecord, type StoredResult } from './contract.js';

/** A value larger than this is rejected (claims, records, results, leader). */
export const MAX_VALUE_BYTES = 64 * 1024;
/** A change (changes/<id>) larger than this is rejected; etcd's own request limit is 1.5 MiB. */
export const MAX_CHANGE_BYTES = 1024 * 1024;
/** A name's deadlines (until/<name>) larger than this are rejected: 4096 records of the longest form take about 270 KB. */
export const MAX_DEADLINES_BYTES = 512 * 1024;
/** At most this many records in one change (add + remove + every removeNames entry and its addresses). */
export const MAX_CHANGE_RECORDS = 4096;
/** TTLs are 31-bit (RFC 2181 section 8). */
export const MAX_TTL = 2 ** 31 - 1;
/** Public key octets in a claim: far above any supported key (RSA-4096 is about 520). */
const MAX_PUBLIC_KEY_BYTES = 2048;
/** Instance ids (leader, change authors) and result reasons. */
const MAX_TEXT_CHARS = 512;
/** The largest time a Date can hold (ECMA-262 section 21.4.1.22), in ms either side of the epoch. */
const MAX_TIME = 8.64e15;
/**
 * Change ids: letters, digits and `._~-` (RFC 3986 unreserved characters,
 * which encodeURIComponent leaves alone), 1 to 128 of them. A UUID is one.
 */
const CHANGE_ID = /^[A-Za-z0-9._~-]{1,128}$/;

export const KEYS_PREFIX = 'keys/';
export const RECS_PREFIX = 'recs/';
export const CHANGES_PREFIX = 'changes/';
export const RESULTS_PREFIX = 'results/';
export const SERIAL_KEY = 'serial';
export const LEADER_KEY = 'leader';
/**
 * Deadlines (until/<name>). It sorts after every other key of a zone
 * namespace, so the daemons' mirrors, which leave it out, read and watch
 * one range: from the namespace's start up to this prefix.
 */
export const DEADLINES_PREFIX = 'until/';

/** A key or value the layout cannot represent (an encoder's input that would not read back). */
export class LayoutError extends NsregError {
  readonly code = 'ERR_STORE_LAYOUT';
}

/** A decoded value, or why it is not one. */
export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const ok = <T>(value: T): Decoded<T> => ({ ok: true, value });
const bad = <T>(reason: string): Decoded<T> => ({ ok: false, reason });

// ---------------------------------------------------------------- names, addresses, paths

/** The canonical form of `name`, or undefined when it is not a valid DNS name. */
function canonicalOrUndefined(name: string): string | undefined {
  try {
    return canonicalName(name);
  } catch {
    return undefined;
  }
}

/** True when `name` is a canonical FQDN other than the root. */
export function isCanonicalName(name: string): boolean {
  return name !== '.' && name !== '' && canonicalOrUndefined(name) === name;
}

/** True when `address` is an address of `type` written as the A/AAAA codec writes it. */
export function isCanonicalAddress(type: AddrType, address: string): boolean {
  // The common case without a round trip through the codec (every deadline of every refresh is checked).
  if (type === 'A') return isCanonicalIPv4(address);
  try {
    return decodeRData(type, encodeRData(type, address)) === address;
  } catch {
    return false;
  }
}

function isAddrType(t: unknown): t is AddrType {
  return t === 'A' || t === 'AAAA';
}

function nameSegment(name: string, what: string): string {
  if (!isCanonicalName(name)) throw new LayoutError(`${what} ${JSON.stringify(name)} is not a canonical domain name`);
  return encodeURIComponent(name);
}

/** The canonical name a path segment encodes, or undefined when it is not exactly that encoding. */
function parseNameSegment(segment: string): string | undefined {
  let name: string;
  try {
    name = decodeURIComponent(segment);
  } catch {
    return undefined;
  }
  return isCanonicalName(name) && encodeURIComponent(name) === segment ? name : undefined;
}

function checkChangeId(id: string): string {
  if (!CHANGE_ID.test(id)) throw new LayoutError(`change id ${JSON.stringify(id)} is not 1-128 of A-Z a-z 0-9 . _ ~ -`);
  return id;
}

/** `<prefix>/v1/zones/` : every zone's namespace lies below it. */
export function zonesPrefix(prefix: string): string {
  return `${prefix}/${LAYOUT_VERSION}/zones/`;
}

/** `<prefix>/v1/zones/<zone>/` : the zone's namespace (the zone in canonical form, encoded). */
export function zoneNamespacePrefix(prefix: string, zone: string): string {
  const canonical = canonicalOrUndefined(zone);
  if (canonical === undefined || canonical === '.') throw new LayoutError(`zone ${JSON.stringify(zone)} is not a valid domain name`);
  return `${zonesPrefix(prefix)}${encodeURIComponent(canonical)}/`;
}

/**
 * Splits a full key (as a range over zonesPrefix(prefix) returns it) into
 * its zone and the key relative to the zone namespace; undefined when it is
 * not below zonesPrefix or the zone segment is not a canonical name.
 */
export function splitZoneKey(prefix: string, fullKey: string): { readonly zone: string; readonly key: string } | undefined {
  const base = zonesPrefix(prefix);
  if (!fullKey.startsWith(base)) return undefined;
  const rest = fullKey.slice(base.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  const zone = parseNameSegment(rest.slice(0, slash));
  return zone === undefined ? undefined : { zone, key: rest.slice(slash + 1) };
}

/** `keys/<name>`: the claim of `name`. */
export function claimKey(name: string): string {
  return KEYS_PREFIX + nameSegment(name, 'claimed name');
}

/**
 * `key` (relative to `ns`) as etcd holds it, the namespace's prefix first:
 * for raw requests (`ns.kv.…`), which the namespace does not prefix, and to
 * compare with the keys etcd returns.
 */
export function fullKey(ns: Namespace, key: string): Buffer {
  return Buffer.concat([ns.prefix, Buffer.from(key)]);
}

/** `until/<name>`: the deadlines of `name`. */
export function deadlinesKey(name: string): string {
  return DEADLINES_PREFIX + nameSegment(name, 'claimed name');
}

/** A record's identity within its name: `<type>/<address>` (the tail of its recs/ path, the key of its deadline). */
export function recordSlot(r: Pick<AddrRecord, 'type' | 'address'>): string {
  return `${r.type}/${r.address}`;
}

/** The record of `name` a `<type>/<address>` slot stands for (with `ttl`), or undefined when it is none in canonical form. */
export function slotRecord(name: string, slot: string, ttl: number): AddrRecord | undefined {
  const slash = slot.indexOf('/');
  const type = slot.slice(0, slash);
  const address = slot.slice(slash + 1);
  return slash > 0 && isAddrType(type) && isCanonicalAddress(type, address) ? { name, type, address, ttl } : undefined;
}

/** `recs/<name>/`: the prefix of every record of `name`. */
export function recordsOfNamePrefix(name: string): string {
  return `${RECS_PREFIX}${nameSegment(name, 'record owner')}/`;
}

/** `recs/<name>/<type>/<address>`: one live record. */
export function recordPath(r: Pick<AddrRecord, 'name' | 'type' | 'address'>): string {
  if (!isAddrType(r.type)) throw new LayoutError(`record type ${JSON.stringify(r.type)} is not A or AAAA`);
  if (!isCanonicalAddress(r.type, r.address)) throw new LayoutError(`${JSON.stringify(r.address)} is not a canonical ${r.type} address`);
  return recordsOfNamePrefix(r.name) + recordSlot(r);
}

/** `changes/<id>`: a change waiting for the publisher. */
export function changeKey(id: string): string {
  return CHANGES_PREFIX + checkChangeId(id);
}

/** `results/<id>`: the publisher's first attempt at change `id`. */
export function resultKey(id: string): string {
  return RESULTS_PREFIX + checkChangeId(id);
}

/** What a key of a zone namespace stands for. */
export type ZoneKey =
  | { readonly kind: 'claim'; readonly name: string }
  | { readonly kind: 'deadlines'; readonly name: string }
  | { readonly kind: 'record'; readonly name: string; readonly type: AddrType; readonly address: string }
  | { readonly kind: 'change'; readonly id: string }
  | { readonly kind: 'result'; readonly id: string }
  | { readonly kind: 'serial' }
  | { readonly kind: 'leader' };

/**
 * What a key relative to a zone namespace stands for, or undefined when it
 * is none of the layout's keys (or not in canonical form).
 */
export function parseZoneKey(key: string): ZoneKey | undefined {
  if (key === SERIAL_KEY) return { kind: 'serial' };
  if (key === LEADER_KEY) return { kind: 'leader' };
  const parts = key.split('/');
  switch (parts[0]) {
    case 'keys':
    case 'until': {
      if (parts.length !== 2) return undefined;
      const name = parseNameSegment(parts[1]);
      return name === undefined ? undefined : { kind: parts[0] === 'keys' ? 'claim' : 'deadlines', name };
    }
    case 'recs': {
      if (parts.length !== 4) return undefined;
      const [, segment, type, address] = parts;
      const name = parseNameSegment(segment);
      if (name === undefined || !isAddrType(type) || !isCanonicalAddress(type, address)) return undefined;
      return { kind: 'record', name, type, address };
    }
    case 'changes':
    case 'results': {
      if (parts.length !== 2 || !CHANGE_ID.test(parts[1])) return undefined;
      return { kind: parts[0] === 'changes' ? 'change' : 'result', id: parts[1] };
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------- value helpers

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True when `v` has exactly the fields `required` plus any of `optional`. */
function hasFields(v: Record<string, unknown>, required: readonly string[], optional: readonly string[] = []): boolean {
  const keys = Object.keys(v);
  return required.every((k) => k in v) && keys.every((k) => required.includes(k) || optional.includes(k));
}

function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/** ms since the epoch, within what a Date can hold. */
function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= MAX_TIME;
}

function isText(v: unknown, allowEmpty: boolean): v is string {
  return typeof v === 'string' && (allowEmpty || v.length > 0) && v.length <= MAX_TEXT_CHARS;
}

/** Parses JSON of at most `maxBytes`; a reason when it is larger or not JSON. */
function parseJson(bytes: Buffer | string, maxBytes: number): Decoded<unknown> {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes, 'utf8') : bytes.length;
  if (size > maxBytes) return bad(`value of ${size} bytes (at most ${maxBytes})`);
  try {
    return ok(JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8')) as unknown);
  } catch {
    return bad('not JSON');
  }
}

/** Serialises `value`, refusing what the decoder would refuse for its size. */
function toJson(value: unknown, maxBytes: number, what: string): string {
  const text = JSON.stringify(value);
  const size = Buffer.byteLength(text, 'utf8');
  if (size > maxBytes) throw new LayoutError(`${what} of ${size} bytes is larger than ${maxBytes}`);
  return text;
}

/** Runs `decode` on what the encoder made and throws when it would not read back. */
function checked<T>(text: string, decode: (t: string) => Decoded<T>, what: string): string {
  const back = decode(text);
  if (!back.ok) throw new LayoutError(`${what} cannot be stored: ${back.reason}`);
  return text;
}

// ---------------------------------------------------------------- claims

/**
 * keys/<name>: `{"flags":256,"protocol":3,"algorithm":13,"key":"<base64>","tag":12345}`
 * (its deadline is in until/<name>). Throws LayoutError when the claim would not decode.
 */
export function encodeClaim(c: StoredClaim): string {
  const text = JSON.stringify({
    flags: c.rdata.flags,
    protocol: c.rdata.protocol,
    algorithm: c.rdata.algorithm,
    key: c.rdata.publicKey.toString('base64'),
    tag: c.keyTag,
  });
  return checked(text, decodeClaim, 'claim');
}

/**
 * A claim read from etcd. The key tag must be the one the KEY rdata has
 * (RFC 4034 appendix B), and the key must pass the same cost bounds a
 * claim's key passes (src/dns/keys.ts keyCostProblem), so a planted key
 * cannot make signature checks expensive.
 */
export function decodeClaim(bytes: Buffer | string): Decoded<StoredClaim> {
  const json = parseJson(bytes, MAX_VALUE_BYTES);
  if (!json.ok) return json;
  const v = json.value;
  if (!isObject(v) || !hasFields(v, ['flags', 'protocol', 'algorithm', 'key', 'tag'])) return bad('not a claim object');
  if (!isUint(v.flags, 0xffff) || !isUint(v.protocol, 0xff) || !isUint(v.algorithm, 0xff)) return bad('KEY flags, protocol or algorithm out of range');
  if (typeof v.key !== 'string' || v.key.length === 0) return bad('no public key');
  const publicKey = Buffer.from(v.key, 'base64');
  if (publicKey.toString('base64') !== v.key) return bad('public key is not canonical base64');
  if (publicKey.length > MAX_PUBLIC_KEY_BYTES) return bad(`public key of ${publicKey.length} bytes (at most ${MAX_PUBLIC_KEY_BYTES})`);
  if (!isUint(v.tag, 0xffff)) return bad('key tag out of range');
  const rdata: KeyRData = { flags: v.flags, protocol: v.protocol, algorithm: v.algorithm, publicKey };
  if (keyTag(rdata) !== v.tag) return bad(`key tag ${v.tag} is not the key's (${keyTag(rdata)})`);
  const cost = keyCostProblem(rdata);
  if (cost !== undefined) return bad(cost);
  return ok({ rdata, keyTag: v.tag });
}

// ---------------------------------------------------------------- records

/** recs/<name>/<type>/<address>: `{"ttl":300}` (its deadline is in until/<name>). Throws LayoutError when out of range. */
export function encodeRecord(r: StoredRecord): string {
  return checked(JSON.stringify({ ttl: r.ttl }), decodeRecord, 'record');
}

export function decodeRecord(bytes: Buffer | string): Decoded<StoredRecord> {
  const json = parseJson(bytes, MAX_VALUE_BYTES);
  if (!json.ok) return json;
  const v = json.value;
  if (!isObject(v) || !hasFields(v, ['ttl'])) return bad('not a record object');
  if (!isUint(v.ttl, MAX_TTL)) return bad('TTL out of range');
  return ok({ ttl: v.ttl });
}

// ---------------------------------------------------------------- deadlines

/**
 * until/<name>: `{"expiry":<ms>,"signed":<ms>,"recs":{"A/192.0.2.1":<ms>,…}}` (`signed`
 * only once a signed request was accepted). At most MAX_CHANGE_RECORDS
 * records. Throws LayoutError when the value would not decode.
 */
export function encodeDeadlines(d: StoredDeadlines): string {
  // What decodeDeadlines checks, checked on the input (every refresh writes one: no parse of what was just made).
  const problem = deadlinesProblem(d.expiry, d.signedAt, d.records);
  if (problem !== undefined) throw new LayoutError(`deadlines cannot be stored: ${problem}`);
  return toJson(
    {
      expiry: d.expiry,
      ...(d.signedAt === undefined ? {} : { signed: d.signedAt }),
      recs: Object.fromEntries(d.records),
    },
    MAX_DEADLINES_BYTES,
    'deadlines',
  );
}

/** Why deadlines would not decode (apart from their size), or undefined. */
function deadlinesProblem(expiry: unknown, signed: unknown, records: Iterable<[string, unknown]> & { readonly size: number }): string | undefined {
  if (!isTime(expiry)) return 'expiry is not a time';
  if (signed !== undefined && !isTime(signed)) return 'signed is not a time';
  if (records.size > MAX_CHANGE_RECORDS) return `more than ${MAX_CHANGE_RECORDS} record deadlines`;
  for (const [slot, at] of records) {
    if (slotRecord('.', slot, 0) === undefined) return `${JSON.stringify(slot.slice(0, 100))} is not <type>/<address> in canonical form`;
    if (!isTime(at)) return `the deadline of ${slot} is not a time`;
  }
  return undefined;
}

export function decodeDeadlines(bytes: Buffer | string): Decoded<StoredDeadlines> {
  const json = parseJson(bytes, MAX_DEADLINES_BYTES);
  if (!json.ok) return json;
  const v = json.value;
  if (!isObject(v) || !hasFields(v, ['expiry', 'recs'], ['signed'])) return bad('not a deadlines object');
  if (!isObject(v.recs)) return bad('recs is not an object');
  const records = new Map(Object.entries(v.recs));
  const problem = deadlinesProblem(v.expiry, v.signed, records);
  if (problem !== undefined) return bad(problem);
  return ok({ expiry: v.expiry as number, ...(v.signed === undefined ? {} : { signedAt: v.signed as number }), records: records as Map<string, number> });
}

// ---------------------------------------------------------------- changes

/** One record in a change: [name, type, address, ttl]. */
type RecordTuple = [string, AddrType, string, number];

const tuple = (r: AddrRecord): RecordTuple => [r.name, r.type, r.address, r.ttl];

function decodeTuple(v: unknown): AddrRecord | undefined {
  if (!Array.isArray(v) || v.length !== 4) return undefined;
  const [name, type, address, ttl] = v as unknown[];
  if (typeof name !== 'string' || !isCanonicalName(name) || !isAddrType(type)) return undefined;
  if (typeof address !== 'string' || !isCanonicalAddress(type, address) || !isUint(ttl, MAX_TTL)) return undefined;
  return { name, type, address, ttl };
}

function decodeTuples(v: unknown, budget: { left: number }): AddrRecord[] | undefined {
  if (!Array.isArray(v) || v.length > budget.left) return undefined;
  budget.left -= v.length;
  const out: AddrRecord[] = [];
  for (const t of v as unknown[]) {
    const r = decodeTuple(t);
    if (r === undefined) return undefined;
    out.push(r);
  }
  return out;
}

/**
 * changes/<id>, compact: `{"by":"<instance>","at":<ms>,"add":[[name,type,address,ttl],…],
 * "remove":[…],"removeNames":[[name,[[name,type,address,ttl],…]],…]}`.
 * Throws LayoutError when the change is larger than MAX_CHANGE_RECORDS
 * records or MAX_CHANGE_BYTES, or holds a value that would not decode (the
 * caller splits a larger change).
 */
export function encodeChange(c: StoredChange): string {
  const text = toJson(
    {
      by: c.by,
      at: c.at,
      add: c.change.add.map(tuple),
      remove: c.change.remove.map(tuple),
      removeNames: c.change.removeNames.map((n) => [n.name, n.addresses.map(tuple)]),
      ...(c.skipKeepRecords === true ? { skipKeep: true } : {}),
    },
    MAX_CHANGE_BYTES,
    'change',
  );
  return checked(text, decodeChange, 'change');
}

export function decodeChange(bytes: Buffer | string): Decoded<StoredChange> {
  const json = parseJson(bytes, MAX_CHANGE_BYTES);
  if (!json.ok) return json;
  const v = json.value;
  if (!isObject(v) || !hasFields(v, ['by', 'at', 'add', 'remove', 'removeNames'], ['skipKeep'])) return bad('not a change object');
  if (v.skipKeep !== undefined && v.skipKeep !== true) return bad('skipKeep is not true');
  if (!isText(v.by, false)) return bad('author is not an instance id');
  if (!isTime(v.at)) return bad('at is not a time');
  const budget = { left: MAX_CHANGE_RECORDS };
  const add = decodeTuples(v.add, budget);
  const remove = decodeTuples(v.remove, budget);
  if (add === undefined || remove === undefined) return bad(`add or remove is not a list of at most ${MAX_CHANGE_RECORDS} valid records`);
  if (!Array.isArray(v.removeNames) || v.removeNames.length > budget.left) return bad('removeNames is not a list of names');
  budget.left -= v.removeNames.length;
  const removeNames: Array<{ name: string; addresses: AddrRecord[] }> = [];
  for (const entry of v.removeNames as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2) return bad('removeNames entry is not [name, records]');
    const [name, records] = entry as unknown[];
    if (typeof name !== 'string' || !isCanonicalName(name)) return bad('removeNames entry has no canonical name');
    const addresses = decodeTuples(records, budget);
    if (addresses === undefined) return bad(`removeNames addresses are not a list of valid records (at most ${MAX_CHANGE_RECORDS} in all)`);
    removeNames.push({ name, addresses });
  }
  const change: UpstreamChange = { add, remove, removeNames };
  return ok({ change, by: v.by, at: v.at, ...(v.skipKeep === true ? { skipKeepRecords: true } : {}) });
}

// ---------------------------------------------------------------- results and leader

/** A fresh change id: time-ordered for people reading the store, random so that daemons never collide. */
export function newChangeId(): string {
  return `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

/** results/<id>: `{"ok":true}` or `{"ok":false,"reason":"…"}` (reason at most 512 characters). */
export function encodeResult(r: StoredResult): string {
  const text = JSON.stringify(r.reason === undefined ? { ok: r.ok } : { ok: r.ok, reason: r.reason });
  return checked(text, decodeResult, 'result');
}

export function decodeResult(bytes: Buffer | string): Decoded<StoredResult> {
  const json = parseJson(bytes, MAX_VALUE_BYTES);
  if (!json.ok) return json;
  const v = json.value;
  if (!isObject(v) || !hasFields(v, ['ok'], ['reason']) || typeof v.ok !== 'boolean') return bad('not a result object');
  if (v.reason === undefined) return ok({ ok: v.ok });
  if (!isText(v.reason, true)) return bad(`reason is not text of at most ${MAX_TEXT_CHARS} characters`);
  return ok({ ok: v.ok, reason: v.reason });
}

/** leader: the publisher's instance id, as UTF-8 text (1 to 512 characters, no control characters). */
export function encodeLeader(instanceId: string): string {
  return checked(instanceId, decodeLeader, 'instance id');
}

export function decodeLeader(bytes: Buffer | string): Decoded<string> {
  const size = typeof bytes === 'string' ? Buffer.byteLength(bytes, 'utf8') : bytes.length;
  if (size > MAX_VALUE_BYTES) return bad(`value of ${size} bytes (at most ${MAX_VALUE_BYTES})`);
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  // eslint-disable-next-line no-control-regex
  if (!isText(text, false) || /[\u0000-\u001f\u007f\ufffd]/.test(text)) return bad('not an instance id');
  return ok(text);
}
