/**
 * The TOFU key database of one zone (SPEC §3 "Key database (one per zone)").
 *
 * On disk:
 *  - `<data-dir>/<zone-fqdn>keydb` — the snapshot, in the original daemon's
 *    format (a JSON object name → {Name, Flags, Protocol, Algorithm, KeyTag,
 *    PublicKey, Expiry}), so either implementation can read what the other
 *    wrote;
 *  - `<snapshot>.journal` — an append-only log of changes since the
 *    snapshot, one JSON object a line;
 *  - `<snapshot>.journal.old` — only while a compaction is under way (or
 *    after one failed): the journal being folded into a new snapshot.
 *
 * The original rewrote the whole file on every request, O(names) each
 * (FIX). Here a claim appends one line and fsyncs (concurrent claims share
 * one fsync), a refresh appends one line without waiting for it, and the
 * snapshot is rewritten in the background once the journal holds more
 * operations than max(1000, names) — so the cost per request is O(1)
 * amortised, independent of how many names are stored.
 *
 * Journal operations carry absolute values (the whole key, the new expiry)
 * and are applied last-writer-wins per name. Replaying a journal over a
 * snapshot that already contains some of its operations therefore gives the
 * same state, which is what makes the snapshot/journal hand-over crash-safe
 * without any marker in the snapshot (the original's format has no room for
 * one).
 *
 * Durability: a claim resolves only after its line is on disk (fdatasync),
 * so an answered claim survives a crash. Refreshes and removals are written
 * lazily: a crash can lose a refresh, which only makes that key expire
 * earlier than it would have, or a removal, which brings back a key that
 * the start-up expiry pass drops again if it had expired.
 */
import { NsregError, errnoCode, errorMessage } from '../errors.js';
import type { KeyObject } from 'node:crypto';
import { atomicWrite, syncDir } from '../fs/atomic.js';
import { mkdir, open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { keyTag, publicKeyFromRData } from '../dns/keys.js';
import { canonicalName } from '../dns/names.js';
import type { KeyRData } from '../dns/types.js';
import type { Clock } from '../clock.js';
import { DeadlineTimer, ExpiryQueue, type DeadlineTimerOptions } from './expiry-queue.js';
import { JournalError, readJournal } from './journal.js';

export type KeyStoreFailure = 'corrupt' | 'read-failed' | 'write-failed' | 'closed';

/** A key database that cannot be read or written. `file` names the file concerned. */
export class KeyStoreError extends NsregError {
  readonly code = 'ERR_KEYSTORE';
  constructor(
    readonly reason: KeyStoreFailure,
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${message}`, options);
    this.name = 'KeyStoreError';
  }
}

const SET_EXPIRY = Symbol('setExpiry');

/**
 * One claimed name and its key. Kept compact — flags, protocol and algorithm
 * packed in one number, the key bytes in a string, no per-key rdata object —
 * because one of these lives in memory for every claimed name.
 */
export class StoredKey {
  /** Canonical (lower-case) FQDN. */
  readonly name: string;
  /** RFC 4034 appendix B key tag. */
  readonly keyTag: number;
  /** flags << 16 | protocol << 8 | algorithm. */
  readonly #header: number;
  /** The key bytes as a latin1 string: a third of a small Buffer's memory. */
  readonly #publicKey: string;
  #expiry: number;
  #keyObject: KeyObject | undefined;

  constructor(name: string, rdata: KeyRData, expiry: number) {
    this.name = canonicalName(name);
    this.#header = ((rdata.flags & 0xffff) << 16) | ((rdata.protocol & 0xff) << 8) | (rdata.algorithm & 0xff);
    this.#publicKey = rdata.publicKey.toString('latin1');
    this.keyTag = keyTag(rdata);
    this.#expiry = expiry;
  }

  /** The KEY rdata (a fresh copy each call). */
  get rdata(): Readonly<KeyRData> {
    return {
      flags: this.#header >>> 16,
      protocol: (this.#header >>> 8) & 0xff,
      algorithm: this.#header & 0xff,
      publicKey: Buffer.from(this.#publicKey, 'latin1'),
    };
  }

  /** Milliseconds since the epoch. */
  get expiry(): number {
    return this.#expiry;
  }

  /**
   * The key imported into node:crypto, imported once and then kept, so that
   * verifying a request does not parse the key again. Throws
   * UnsupportedAlgorithmError / InvalidKeyError for a key that cannot be used.
   */
  publicKey(): KeyObject {
    this.#keyObject ??= publicKeyFromRData(this.rdata);
    return this.#keyObject;
  }

  /** Same flags, protocol, algorithm and public key bytes. */
  matches(rdata: KeyRData): boolean {
    return (
      ((rdata.flags & 0xffff) << 16 | (rdata.protocol & 0xff) << 8 | (rdata.algorithm & 0xff)) === this.#header &&
      rdata.publicKey.length === this.#publicKey.length &&
      rdata.publicKey.toString('latin1') === this.#publicKey
    );
  }

  [SET_EXPIRY](ms: number): void {
    this.#expiry = ms;
  }
}

// ---------------------------------------------------------------------------
// RFC 3339 times, as Go's encoding/json writes time.Time (RFC3339Nano).

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch (fraction truncated to ms), or undefined if `s` is not RFC 3339. */
export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339.exec(s);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return undefined;
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  // Date.UTC maps years 0-99 to 19xx; setUTCFullYear does not (Go's zero time is year 1).
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, sec, ms);
  if (date.getUTCDate() !== d) return undefined; // e.g. February 30th
  let offset = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offset = (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return date.getTime() - offset;
}

const MIN_TIME = -62135596800000; // 0001-01-01T00:00:00Z, Go's zero time
const MAX_TIME = 253402300799999; // 9999-12-31T23:59:59.999Z, the last time RFC 3339 can write

/** RFC 3339 in UTC with millisecond precision, which Go's time.Time unmarshals. */
export function formatRfc3339(ms: number): string {
  const clamped = Math.min(Math.max(ms, MIN_TIME), MAX_TIME);
  return new Date(clamped).toISOString();
}

// ---------------------------------------------------------------------------
// The snapshot file (the original's format).

interface Entry {
  readonly name: string;
  readonly rdata: KeyRData;
  readonly expiry: number;
}

function entryJson(e: Entry): string {
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

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isInt(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/** Go's encoding/json matches field names case-insensitively; so do we. */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k];
  return undefined;
}

function parseSnapshot(text: string, file: string, warnings: string[]): Map<string, Entry> {
  const out = new Map<string, Entry>();
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
    if (!isInt(flags, 0xffff)) throw bad('Flags must be an integer 0-65535');
    if (!isInt(protocol, 0xff)) throw bad('Protocol must be an integer 0-255');
    if (!isInt(algorithm, 0xff)) throw bad('Algorithm must be an integer 0-255');
    if (typeof publicKey !== 'string' || !BASE64.test(publicKey)) throw bad('PublicKey must be base64');
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
    const prior = out.get(name);
    if (prior !== undefined) {
      // The original stored names as sent, so VICTIM.zone and victim.zone
      // could both be present; keep the one that was refreshed last.
      warnings.push(`${file}: names differing only in case collapse to ${name}; kept the later-expiring key`);
      if (prior.expiry >= expiry) continue;
    }
    out.set(name, { name, rdata, expiry });
  }
  return out;
}

// ---------------------------------------------------------------------------
// The journal.

type JournalOp =
  | { readonly op: 'claim'; readonly name: string; readonly flags: number; readonly protocol: number; readonly algorithm: number; readonly key: string; readonly expiry: number }
  | { readonly op: 'refresh'; readonly name: string; readonly expiry: number }
  | { readonly op: 'remove'; readonly name: string };

function opLine(op: JournalOp): string {
  return JSON.stringify(op) + '\n';
}

function parseOp(line: string): JournalOp | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isRecord(v) || typeof v.name !== 'string' || !v.name.endsWith('.')) return undefined;
  const name = v.name;
  const okTime = (t: unknown): t is number => typeof t === 'number' && Number.isFinite(t);
  switch (v.op) {
    case 'claim':
      if (!isInt(v.flags, 0xffff) || !isInt(v.protocol, 0xff) || !isInt(v.algorithm, 0xff)) return undefined;
      if (typeof v.key !== 'string' || !BASE64.test(v.key) || !okTime(v.expiry)) return undefined;
      return { op: 'claim', name, flags: v.flags, protocol: v.protocol, algorithm: v.algorithm, key: v.key, expiry: v.expiry };
    case 'refresh':
      return okTime(v.expiry) ? { op: 'refresh', name, expiry: v.expiry } : undefined;
    case 'remove':
      return { op: 'remove', name };
    default:
      return undefined;
  }
}

function applyOp(state: Map<string, Entry>, op: JournalOp): void {
  const name = canonicalName(op.name);
  switch (op.op) {
    case 'claim':
      state.set(name, {
        name,
        rdata: { flags: op.flags, protocol: op.protocol, algorithm: op.algorithm, publicKey: Buffer.from(op.key, 'base64') },
        expiry: op.expiry,
      });
      return;
    case 'refresh': {
      const e = state.get(name);
      if (e !== undefined) state.set(name, { ...e, expiry: op.expiry });
      return;
    }
    case 'remove':
      state.delete(name);
      return;
  }
}

interface KeyJournalRead {
  readonly ops: JournalOp[];
  /** Bytes up to and including the last good line. */
  readonly validBytes: number;
  readonly size: number;
}

/** Reads a journal (see readJournal in journal.ts for the torn-tail rule), with the key store's errors. */
async function readKeyJournal(file: string, warnings: string[]): Promise<KeyJournalRead | undefined> {
  let read;
  try {
    read = await readJournal(file, parseOp);
  } catch (err) {
    if (err instanceof JournalError) {
      throw new KeyStoreError(err.reason === 'damaged' ? 'corrupt' : 'read-failed', file, err.message, { cause: err.cause ?? err });
    }
    throw err;
  }
  if (!read.exists) return undefined;
  if (read.tornBytes > 0) {
    warnings.push(`${file}: ignored ${read.tornBytes} bytes of an incomplete last entry (interrupted write)`);
  }
  return { ops: read.entries, validBytes: read.validBytes, size: read.validBytes + read.tornBytes };
}

// ---------------------------------------------------------------------------
// File helpers.

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let off = 0;
  while (off < data.length) {
    const { bytesWritten } = await fh.write(data, off, data.length - off);
    off += bytesWritten;
  }
}

const ignore = (): void => undefined;

/** The snapshot text in chunks of about 64 KiB, names sorted as Go's encoding/json writes map keys. */
function* snapshotChunks(entries: Entry[]): Generator<string> {
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

/** Writes the snapshot atomically; entries go out in chunks, so a large database does not stall request handling. */
async function writeSnapshot(file: string, entries: Entry[]): Promise<void> {
  await atomicWrite(file, snapshotChunks(entries));
}

// ---------------------------------------------------------------------------
// The store.

export interface KeyStoreOptions {
  /**
   * Compact once the journal holds more than max(this, names) operations.
   * Default 1000.
   */
  readonly compactMinOps?: number;
  /** Failures of background work (lazy refresh writes, compaction). Default: ignored. */
  readonly onBackgroundError?: (err: KeyStoreError) => void;
}

interface Queued {
  readonly line: string;
  /** A claim: fsync before settling. */
  readonly durable: boolean;
  /** Runs synchronously once the line is on disk, before anyone else can look. */
  readonly commit?: () => void;
  readonly settle?: (err: KeyStoreError | undefined) => void;
}

interface RotateRequest {
  resolve(entries: Entry[]): void;
  reject(err: unknown): void;
}

export interface OpenedKeyStore {
  readonly store: KeyStore;
  /** Things open() noticed and tolerated (also in `store.warnings`), for the caller to log. */
  readonly warnings: string[];
}

/** The key file of `zone` in `dataDir`: `<dataDir>/<zone-fqdn>keydb`. */
export function keyDbPath(dataDir: string, zone: string): string {
  return path.join(dataDir, `${canonicalName(zone)}keydb`);
}

export class KeyStore {
  /** The snapshot file. */
  readonly file: string;
  readonly journalFile: string;
  readonly oldJournalFile: string;
  /** Things open() noticed and tolerated, for the caller to log. */
  readonly warnings: readonly string[];

  readonly #clock: Clock;
  readonly #dir: string;
  readonly #minOps: number;
  readonly #onBackgroundError: ((err: KeyStoreError) => void) | undefined;
  /** Committed keys by name, ordered by expiry. */
  readonly #keys = new ExpiryQueue<StoredKey>();
  /** Claims written but not yet on disk, by name. */
  readonly #pending = new Map<string, Promise<void>>();
  readonly #listeners = new Set<() => void>();

  #fh: FileHandle | undefined;
  /** Length of the journal up to its last complete, known-good line. */
  #journalBytes: number;
  #journalOps: number;
  #hasOld: boolean;
  #oldOps: number;
  #buffer: Queued[] = [];
  #writing = false;
  #idleWaiters: Array<() => void> = [];
  #rotateRequest: RotateRequest | undefined;
  #compaction: Promise<void> | undefined;
  /** After a failed compaction, wait for this many journal operations before retrying. */
  #compactBackoffOps = 0;
  #needCompaction = false;
  #closing = false;
  #closed = false;

  private constructor(
    file: string,
    clock: Clock,
    state: Map<string, Entry>,
    journal: { bytes: number; ops: number; hasOld: boolean; oldOps: number },
    warnings: string[],
    options: KeyStoreOptions,
  ) {
    this.file = file;
    this.journalFile = `${file}.journal`;
    this.oldJournalFile = `${file}.journal.old`;
    this.#dir = path.dirname(file);
    this.#clock = clock;
    this.#minOps = options.compactMinOps ?? 1000;
    this.#onBackgroundError = options.onBackgroundError;
    this.warnings = Object.freeze(warnings);
    for (const e of state.values()) {
      this.#keys.set(e.name, e.expiry, new StoredKey(e.name, e.rdata, e.expiry));
    }
    this.#journalBytes = journal.bytes;
    this.#journalOps = journal.ops;
    this.#hasOld = journal.hasOld;
    this.#oldOps = journal.oldOps;
  }

  /**
   * Loads the zone's key database: the snapshot (a missing file is an empty
   * database), then the journal(s) on top. A file that cannot be parsed is
   * an error naming it; nothing is discarded silently.
   */
  static async open(dataDir: string, zone: string, clock: Clock, options: KeyStoreOptions = {}): Promise<OpenedKeyStore> {
    const file = keyDbPath(dataDir, zone);
    const warnings: string[] = [];
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new KeyStoreError('read-failed', dataDir, `cannot create data directory: ${errorMessage(err)}`, { cause: err });
    }
    let state = new Map<string, Entry>();
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') {
        throw new KeyStoreError('read-failed', file, errorMessage(err), { cause: err });
      }
    }
    if (text !== undefined) state = parseSnapshot(text, file, warnings);

    const oldJournal = await readKeyJournal(`${file}.journal.old`, warnings);
    const journal = await readKeyJournal(`${file}.journal`, warnings);
    for (const op of oldJournal?.ops ?? []) applyOp(state, op);
    for (const op of journal?.ops ?? []) applyOp(state, op);

    // Cut a torn tail off now, so that new lines do not follow it.
    if (journal !== undefined && journal.validBytes < journal.size) {
      try {
        const fh = await open(`${file}.journal`, 'r+');
        try {
          await fh.truncate(journal.validBytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
      } catch (err) {
        throw new KeyStoreError('write-failed', `${file}.journal`, `cannot cut incomplete entry: ${errorMessage(err)}`, { cause: err });
      }
    }
    const store = new KeyStore(
      file,
      clock,
      state,
      {
        bytes: journal?.validBytes ?? 0,
        ops: journal?.ops.length ?? 0,
        hasOld: oldJournal !== undefined,
        oldOps: oldJournal?.ops.length ?? 0,
      },
      warnings,
      options,
    );
    // A compaction interrupted by a crash is finished now.
    if (oldJournal !== undefined) store.#needCompaction = true;
    store.#maybeCompact();
    return { store, warnings: [...warnings] };
  }

  get size(): number {
    return this.#keys.size;
  }

  /**
   * The key of `name` (any case), or undefined. A claim still being written
   * is not visible yet. A key past its expiry stays visible until
   * expireDue() drops it (at most a second later), so that its name is
   * removed upstream before anyone can claim it anew.
   */
  get(name: string): StoredKey | undefined {
    return this.#keys.get(canonicalName(name));
  }

  has(name: string): boolean {
    return this.#keys.has(canonicalName(name));
  }

  /** Every stored key, in no particular order. */
  *keys(): IterableIterator<StoredKey> {
    for (const e of this.#keys.entries()) yield e.value;
  }

  /** The earliest key expiry, or undefined when empty. */
  nextExpiry(): number | undefined {
    return this.#keys.nextDeadline();
  }

  /**
   * Trust on first use: stores `rdata` as the key of `name` unless the name
   * already has one. Resolves once the claim is on disk. Of concurrent claims
   * of one name exactly one resolves 'claimed'; the others wait for it and
   * resolve 'exists' (or, if its write failed, try again themselves).
   * Rejects with KeyStoreError 'write-failed' when the journal cannot be
   * written — nothing is stored then — or 'closed'.
   */
  async claim(name: string, rdata: KeyRData, expiry: number): Promise<'claimed' | 'exists'> {
    if (!Number.isFinite(expiry)) throw new RangeError(`expiry must be finite, got ${expiry}`);
    const canonical = canonicalName(name);
    for (;;) {
      this.#assertOpen();
      if (this.#keys.has(canonical)) return 'exists';
      const pending = this.#pending.get(canonical);
      if (pending === undefined) break;
      await pending.then(ignore, ignore);
    }
    const key = new StoredKey(canonical, rdata, expiry);
    const line = opLine({
      op: 'claim',
      name: canonical,
      flags: key.rdata.flags,
      protocol: key.rdata.protocol,
      algorithm: key.rdata.algorithm,
      key: key.rdata.publicKey.toString('base64'),
      expiry,
    });
    const written = new Promise<void>((resolve, reject) => {
      this.#enqueue({
        line,
        durable: true,
        commit: () => {
          this.#keys.set(canonical, expiry, key);
          this.#changed();
        },
        settle: (err) => (err === undefined ? resolve() : reject(err)),
      });
    });
    this.#pending.set(canonical, written);
    try {
      await written;
    } finally {
      this.#pending.delete(canonical);
    }
    return 'claimed';
  }

  /**
   * Moves the expiry of `name`'s key to `expiry` (ms). Returns false when
   * the name has no key. Written lazily (see the module comment).
   */
  refresh(name: string, expiry: number): boolean {
    if (!Number.isFinite(expiry)) throw new RangeError(`expiry must be finite, got ${expiry}`);
    this.#assertOpen();
    const canonical = canonicalName(name);
    const key = this.#keys.get(canonical);
    if (key === undefined) return false;
    key[SET_EXPIRY](expiry);
    this.#keys.set(canonical, expiry, key);
    this.#enqueue({ line: opLine({ op: 'refresh', name: canonical, expiry }), durable: false });
    this.#changed();
    return true;
  }

  /** Forgets `name`'s key. Returns false when it had none. Written lazily. */
  remove(name: string): boolean {
    this.#assertOpen();
    const canonical = canonicalName(name);
    if (!this.#keys.delete(canonical)) return false;
    this.#enqueue({ line: opLine({ op: 'remove', name: canonical }), durable: false });
    return true;
  }

  /** Drops and returns, earliest first, every key whose expiry is <= now. */
  expireDue(now: number = this.#clock.now()): StoredKey[] {
    // A timer may still fire while the store closes; there is nothing to do then.
    if (this.#closing || this.#closed) return [];
    const out: StoredKey[] = [];
    for (const e of this.#keys.popDue(now)) {
      this.#enqueue({ line: opLine({ op: 'remove', name: e.key }), durable: false });
      out.push(e.value);
    }
    return out;
  }

  /** `fn` runs whenever a key's expiry is set (it may now be the earliest). Returns an unsubscribe function. */
  onDeadlineChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Writes every key to the snapshot atomically (leaving a file the
   * original daemon can read on its own) and retires the journal up to that
   * point. Rejects with KeyStoreError 'write-failed'; the previous snapshot
   * and journal stay as they were then.
   */
  async flush(): Promise<void> {
    if (this.#closed) throw new KeyStoreError('closed', this.file, 'key store is closed');
    while (this.#compaction !== undefined) await this.#compaction.catch(ignore);
    await this.#startCompaction();
  }

  /**
   * Resolves once nothing is being written: no queued lines, no compaction.
   * Lazily written refreshes and removals are on disk (not necessarily
   * fsynced) by then.
   */
  async idle(): Promise<void> {
    for (;;) {
      if (this.#compaction !== undefined) {
        await this.#compaction.catch(ignore);
      } else if (this.#writing || this.#buffer.length > 0) {
        await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      } else {
        return;
      }
    }
  }

  /** Refuses further changes, flushes, and releases the journal. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      await this.#dropHandle();
      if (this.#journalBytes === 0 && !this.#hasOld) await unlink(this.journalFile).catch(ignore);
    }
  }

  #assertOpen(): void {
    if (this.#closing || this.#closed) throw new KeyStoreError('closed', this.file, 'key store is closed');
  }

  #changed(): void {
    for (const fn of this.#listeners) fn();
  }

  #background(err: unknown): void {
    const e =
      err instanceof KeyStoreError ? err : new KeyStoreError('write-failed', this.file, errorMessage(err), { cause: err });
    this.#onBackgroundError?.(e);
  }

  // -- writer: one at a time, batching whatever queued up meanwhile ------------

  #enqueue(q: Queued): void {
    this.#buffer.push(q);
    this.#kick();
  }

  #kick(): void {
    if (this.#writing) return;
    this.#writing = true;
    void this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#buffer.length > 0 || this.#rotateRequest !== undefined) {
        if (this.#buffer.length > 0) {
          const batch = this.#buffer;
          this.#buffer = [];
          let failure: KeyStoreError | undefined;
          try {
            await this.#writeBatch(batch);
          } catch (err) {
            failure = new KeyStoreError('write-failed', this.journalFile, errorMessage(err), { cause: err });
          }
          if (failure === undefined) for (const q of batch) q.commit?.();
          for (const q of batch) q.settle?.(failure);
          if (failure !== undefined && batch.some((q) => q.settle === undefined)) this.#background(failure);
          this.#maybeCompact();
        }
        const rotate = this.#rotateRequest;
        if (rotate !== undefined) {
          this.#rotateRequest = undefined;
          try {
            rotate.resolve(await this.#rotate());
          } catch (err) {
            rotate.reject(err);
          }
        }
      }
    } finally {
      this.#writing = false;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  async #writeBatch(batch: Queued[]): Promise<void> {
    const data = Buffer.from(batch.map((q) => q.line).join(''), 'utf8');
    const fh = await this.#journalHandle();
    try {
      await writeAll(fh, data);
      if (batch.some((q) => q.durable)) await fh.datasync();
    } catch (err) {
      // Part of the batch may have reached the file; the next open cuts the
      // file back to #journalBytes so no later line follows a torn one.
      await this.#dropHandle();
      throw err;
    }
    this.#journalBytes += data.length;
    this.#journalOps += batch.length;
  }

  async #journalHandle(): Promise<FileHandle> {
    if (this.#fh !== undefined) return this.#fh;
    const fh = await open(this.journalFile, 'a', 0o600);
    try {
      const { size } = await fh.stat();
      if (size > this.#journalBytes) {
        await fh.truncate(this.#journalBytes);
      } else if (size < this.#journalBytes) {
        // Someone else shortened or replaced it: what it held is in memory,
        // so put it into a snapshot soon.
        this.#journalBytes = size;
        this.#needCompaction = true;
      }
      // The file may have just been created: make its name durable too.
      await syncDir(this.#dir);
    } catch (err) {
      await fh.close().catch(ignore);
      throw err;
    }
    this.#fh = fh;
    return fh;
  }

  async #dropHandle(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(ignore);
  }

  // -- compaction -----------------------------------------------------------------

  #maybeCompact(): void {
    if (this.#compaction !== undefined || this.#closed || this.#closing) return;
    const ops = this.#journalOps + this.#oldOps;
    const threshold = Math.max(this.#minOps, this.#keys.size, this.#compactBackoffOps);
    if (!this.#needCompaction && ops <= threshold) return;
    this.#startCompaction().catch((err: unknown) => this.#background(err));
  }

  #startCompaction(): Promise<void> {
    this.#needCompaction = false;
    const run = this.#compact().then(
      () => {
        this.#compactBackoffOps = 0;
      },
      (err: unknown) => {
        this.#compactBackoffOps = this.#journalOps + this.#oldOps + Math.max(this.#minOps, this.#keys.size);
        throw err instanceof KeyStoreError
          ? err
          : new KeyStoreError('write-failed', this.file, errorMessage(err), { cause: err });
      },
    );
    const tracked = run.finally(() => {
      if (this.#compaction === tracked) this.#compaction = undefined;
    });
    this.#compaction = tracked;
    return tracked;
  }

  /**
   * 1. In the writer (no append in flight): set the journal aside as
   *    `.journal.old` — new lines go to a fresh journal — and capture the
   *    keys. Short, so claims barely wait.
   * 2. In the background: write the captured keys as the new snapshot.
   * 3. Delete `.journal.old`. A crash before this only means it is replayed
   *    once more over a snapshot that already holds it, which is harmless.
   */
  async #compact(): Promise<void> {
    const entries = await new Promise<Entry[]>((resolve, reject) => {
      this.#rotateRequest = { resolve, reject };
      this.#kick();
    });
    await writeSnapshot(this.file, entries);
    if (this.#hasOld) {
      try {
        await unlink(this.oldJournalFile);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
      await syncDir(this.#dir);
      this.#hasOld = false;
      this.#oldOps = 0;
    }
  }

  async #rotate(): Promise<Entry[]> {
    // After a failed compaction `.journal.old` is still there and must not
    // be overwritten; the current journal then simply stays in place (its
    // lines are replayed over a snapshot that already holds them).
    if (!this.#hasOld) {
      await this.#dropHandle();
      let moved = true;
      try {
        await rename(this.journalFile, this.oldJournalFile);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        moved = false;
      }
      if (moved) {
        await syncDir(this.#dir);
        this.#hasOld = true;
        this.#oldOps = this.#journalOps;
        this.#journalOps = 0;
        this.#journalBytes = 0;
      }
    }
    const entries: Entry[] = [];
    for (const e of this.#keys.entries()) entries.push({ name: e.value.name, rdata: e.value.rdata, expiry: e.deadline });
    return entries;
  }
}

export interface KeyExpiryWatch {
  stop(): void;
}

/**
 * Expires `store` on `clock`: one timer for the earliest key expiry;
 * `onExpired` gets the keys that fell due (already removed from the store)
 * so the caller can remove their names upstream. Run `store.expireDue()`
 * once at start-up as well; this watch does that on its first timer.
 */
export function watchKeyExpiry(
  store: KeyStore,
  clock: Clock,
  onExpired: (keys: StoredKey[]) => void,
  options: DeadlineTimerOptions = {},
): KeyExpiryWatch {
  const timer = new DeadlineTimer(
    clock,
    () => store.nextExpiry(),
    (now) => {
      const due = store.expireDue(now);
      if (due.length > 0) onExpired(due);
    },
    options,
  );
  const unsubscribe = store.onDeadlineChange(() => timer.rearm());
  timer.rearm();
  return {
    stop(): void {
      unsubscribe();
      timer.stop();
    },
  };
}
