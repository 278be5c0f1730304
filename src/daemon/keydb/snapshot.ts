/**
 * The key database snapshot in the original daemon's format, so that either
 * implementation can read what the other wrote: one JSON object, name →
 * {Name, Flags, Protocol, Algorithm, KeyTag, PublicKey, Expiry}, with the
 * public key in base64 and the expiry an RFC 3339 time, as Go's
 * encoding/json writes them.
 */
import { errorMessage } from '../../errors.js';
import { keyTag } from '../../dns/keys.js';
import { canonicalName } from '../../dns/names.js';
import type { KeyRData } from '../../dns/types.js';
import { KeyStoreError } from './errors.js';
import { formatRfc3339, parseRfc3339 } from './rfc3339.js';

/** One name's key, as the snapshot and the journal describe it. */
export interface KeyEntry {
  /** Canonical (lower-case) FQDN. */
  readonly name: string;
  readonly rdata: KeyRData;
  /** Milliseconds since the epoch. */
  readonly expiry: number;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function isBase64(v: unknown): v is string {
  return typeof v === 'string' && BASE64.test(v);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An integer 0..max. */
export function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/** Go's encoding/json matches field names case-insensitively; so do we. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k];
  return undefined;
}

/**
 * Parses a snapshot's text. Names are lower-cased. Oddities that lose
 * nothing (an empty file, a stale Name or KeyTag field) go to `warnings`;
 * anything else throws KeyStoreError 'corrupt' naming `file`.
 *
 * Names differing only in case. The original daemon compared names
 * case-sensitively, so `victim.zone.` and `VICTIM.zone.` could be two
 * entries with two keys. Here they are one name, and which key keeps it
 * must never depend on what a later claimant chose (keeping the
 * later-expiring key would hand `victim` to whoever claimed `VICTIM`):
 *  - the entry spelled all in lower case keeps the name — it is the name
 *    every resolver asks for, and the one the original gave to its owner;
 *  - with no such entry (`Victim` and `VICTIM`), neither key keeps it: any
 *    rule picking one of them (by spelling, sort order or expiry) could be
 *    met by an attacker's choice of spelling, so the name is handed to
 *    `lock` (locks.ts: refused to every key until an operator releases it).
 * Every collision is reported in `warnings` with the key tags of both sides.
 */
export function parseSnapshot(
  text: string,
  file: string,
  warnings: string[],
  lock: (name: string, why: string) => void,
): Map<string, KeyEntry> {
  const out = new Map<string, KeyEntry>();
  /** Every spelling seen of each name, in file order. */
  const spellings = new Map<string, { spelling: string; entry: KeyEntry }[]>();
  if (text.trim() === '') {
    warnings.push(`${file}: empty file, starting with no keys`);
    return out;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new KeyStoreError('corrupt', file, `not valid JSON: ${errorMessage(err)}`, { cause: err });
  }
  // Go writes `null` for a nil map.
  if (doc === null) return out;
  if (!isRecord(doc)) throw new KeyStoreError('corrupt', file, 'expected a JSON object of name → key');
  for (const [mapName, value] of Object.entries(doc)) {
    const bad = (why: string): KeyStoreError => new KeyStoreError('corrupt', file, `entry ${JSON.stringify(mapName)}: ${why}`);
    if (!isRecord(value)) throw bad('not an object');
    const flags = field(value, 'Flags');
    const protocol = field(value, 'Protocol');
    const algorithm = field(value, 'Algorithm');
    const publicKey = field(value, 'PublicKey');
    const expiryText = field(value, 'Expiry');
    const storedName = field(value, 'Name');
    const storedTag = field(value, 'KeyTag');
    if (!isUint(flags, 0xffff)) throw bad('Flags must be an integer 0-65535');
    if (!isUint(protocol, 0xff)) throw bad('Protocol must be an integer 0-255');
    if (!isUint(algorithm, 0xff)) throw bad('Algorithm must be an integer 0-255');
    if (!isBase64(publicKey)) throw bad('PublicKey must be base64');
    if (typeof expiryText !== 'string') throw bad('Expiry must be an RFC 3339 time');
    const expiry = parseRfc3339(expiryText);
    if (expiry === undefined) throw bad(`Expiry ${JSON.stringify(expiryText)} is not an RFC 3339 time`);
    if (mapName === '') throw bad('empty name');
    const name = canonicalName(mapName);
    if (storedName !== undefined && (typeof storedName !== 'string' || canonicalName(storedName) !== name)) {
      warnings.push(`${file}: entry ${JSON.stringify(mapName)} has Name ${JSON.stringify(storedName)}; using the entry's key`);
    }
    const rdata: KeyRData = { flags, protocol, algorithm, publicKey: Buffer.from(publicKey, 'base64') };
    if (storedTag !== undefined && storedTag !== keyTag(rdata)) {
      warnings.push(`${file}: entry ${JSON.stringify(mapName)} has KeyTag ${JSON.stringify(storedTag)}, computed ${keyTag(rdata)}; using the computed one`);
    }
    const seen = spellings.get(name);
    if (seen === undefined) spellings.set(name, [{ spelling: mapName, entry: { name, rdata, expiry } }]);
    else seen.push({ spelling: mapName, entry: { name, rdata, expiry } });
  }
  for (const [name, seen] of spellings) {
    if (seen.length === 1) {
      out.set(name, seen[0].entry);
      continue;
    }
    const lower = seen.filter((s) => s.spelling === s.spelling.toLowerCase());
    const keeper = lower.length === 1 ? lower[0] : undefined;
    const tags = seen.map((s) => `${JSON.stringify(s.spelling)} (key tag ${keyTag(s.entry.rdata)})`).join(', ');
    if (keeper !== undefined) {
      out.set(name, keeper.entry);
      for (const s of seen) {
        if (s === keeper) continue;
        warnings.push(
          `${file}: ${JSON.stringify(s.spelling)} (key tag ${keyTag(s.entry.rdata)}) differs from ${JSON.stringify(keeper.spelling)} ` +
            `(key tag ${keyTag(keeper.entry.rdata)}) only in case; the lower-case entry keeps ${name}, the other key is dropped`,
        );
      }
    } else {
      warnings.push(`${file}: ${tags} differ only in case and none is the lower-case form; ${name} is locked, no key kept`);
      lock(name, `entries differing only in case in ${file}: ${tags}`);
    }
  }
  return out;
}

function entryJson(e: KeyEntry): string {
  return JSON.stringify({
    Name: e.name,
    Flags: e.rdata.flags,
    Protocol: e.rdata.protocol,
    Algorithm: e.rdata.algorithm,
    KeyTag: keyTag(e.rdata),
    PublicKey: e.rdata.publicKey.toString('base64'),
    Expiry: formatRfc3339(e.expiry),
  });
}

/**
 * The snapshot text of `entries` in chunks of about 64 KiB, names sorted as
 * Go's encoding/json sorts map keys (stable diffs). Sorts `entries` in place.
 */
export function* serializeSnapshot(entries: KeyEntry[]): Generator<string> {
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let chunk = '{';
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    chunk += (i === 0 ? '' : ',') + JSON.stringify(e.name) + ':' + entryJson(e);
    if (chunk.length >= 65536) {
      yield chunk;
      chunk = '';
    }
  }
  yield chunk + '}';
}
