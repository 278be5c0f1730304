/**
 * The TOFU key database of one zone (README, "What nsregd keeps on disk").
 *
 * On disk:
 *  - `<data-dir>/<zone-fqdn>keydb` — the snapshot, in the original daemon's
 *    format (snapshot.ts), so either implementation can read what the other
 *    wrote. It holds confirmed keys only;
 *  - `<snapshot>.journal` — the changes since the snapshot (ops.ts), in the
 *    checksummed journal of journal.ts;
 *  - `<snapshot>.journal.old` — only while a compaction is under way (or
 *    after one failed): the journal being folded into a new snapshot.
 *
 * The original rewrote the whole file on every request, O(names) each.
 * Here a claim appends one line and fsyncs (concurrent claims share one
 * fsync), a refresh appends one line without waiting for it, and the
 * snapshot is rewritten in the background once the journal holds more
 * operations than max(1000, names) — so the cost per request is O(1)
 * amortised, independent of how many names are stored.
 *
 * A claim is made in two steps, so that a crash in the middle of a request
 * cannot leave records upstream for a name without a key, nor a key for a
 * name whose records never arrived: claim() reserves the name (a durable
 * tentative line), the caller does its work, then confirm() makes the key
 * real (a durable confirmation line) or abandon() drops it. A tentative
 * claim found without its confirmation at open was interrupted; open()
 * drops it and names it in `abandoned`, so the zone can clean up.
 *
 * Damage: a journal line that is damaged never stops the open; what it
 * may have held decides (locks.ts): a name whose key may be lost is locked
 * — refused to every key but one still held for it — in
 * `<snapshot>.locked`, never freed.
 *
 * Durability: claim and confirm resolve only after their line is on disk
 * (fdatasync), so an answered request survives a crash. Refreshes,
 * removals and abandons are written lazily: a crash can lose a refresh,
 * which only makes that key expire earlier than it would have, a removal,
 * which brings back a key that the start-up expiry pass drops again if it
 * had expired, or an abandon, which open() then reports again.
 */
import { errnoCode, errorMessage } from '../../errors.js';
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { canonicalName } from '../../dns/names.js';
import type { KeyRData } from '../../dns/types.js';
import type { Clock } from '../../clock.js';
import { atomicWrite } from '../../fs/atomic.js';
import { ExpiryQueue } from '../expiry-queue.js';
import { Journal, JournalError, type DamagedLine } from '../journal.js';
import { KeyStoreError } from './errors.js';
import { judgeDamage, readLocks, writeLocks, ZONE_LOCK } from './locks.js';
import { applyKeyOp, claimOp, parseKeyOp, type KeyOp, type ReplayState } from './ops.js';
import { parseSnapshot, serializeSnapshot, type KeyEntry } from './snapshot.js';
import { SET_EXPIRY, StoredKey } from './stored-key.js';

export interface KeyStoreOptions {
  /**
   * Compact once the journal holds more than max(this, names) operations.
   * Default 1000.
   */
  readonly compactMinOps?: number;
  /** Failures of background work (lazy writes, compaction). Default: ignored. */
  readonly onBackgroundError?: (err: KeyStoreError) => void;
}

export interface OpenedKeyStore {
  readonly store: KeyStore;
  /** Things open() noticed and tolerated (also in `store.warnings`), for the caller to log. */
  readonly warnings: string[];
  /**
   * For the caller to log as errors: each damaged journal line (file, byte
   * offset, what it was) and every locked name with how to release it —
   * at every start, as long as the lock stands.
   */
  readonly errors: string[];
  /**
   * Names whose claim was made but neither confirmed nor abandoned before
   * the process stopped: the claims are dropped, and any records of these
   * names have no key behind them.
   */
  readonly abandoned: string[];
}

/** The key file of `zone` in `dataDir`: `<dataDir>/<zone-fqdn>keydb`. */
export function keyDbPath(dataDir: string, zone: string): string {
  return path.join(dataDir, `${canonicalName(zone)}keydb`);
}

/** A claim made but not confirmed yet. */
interface Tentative {
  readonly key: StoredKey;
  /** Its line is on disk (set synchronously when it lands, so a compaction sees it). */
  written: boolean;
  confirming: Promise<void> | undefined;
  /** Resolves when the claim is confirmed, abandoned or failed: other claims of the name wait for it. */
  readonly settled: Promise<void>;
  readonly settle: () => void;
}

const ignore = (): void => undefined;

function entryOf(key: StoredKey): KeyEntry {
  return { name: key.name, rdata: key.rdata, expiry: key.expiry };
}

export class KeyStore {
  /** The snapshot file. */
  readonly file: string;
  readonly journalFile: string;
  readonly oldJournalFile: string;
  /** Things open() noticed and tolerated, for the caller to log. */
  readonly warnings: readonly string[];

  readonly #clock: Clock;
  readonly #minOps: number;
  readonly #onBackgroundError: ((err: KeyStoreError) => void) | undefined;
  /** Confirmed keys by name, ordered by expiry. */
  readonly #keys = new ExpiryQueue<StoredKey>();
  /** Claims not confirmed yet, by name. */
  readonly #tentative = new Map<string, Tentative>();
  /** Locked names (ZONE_LOCK: every name without a key), see locks.ts. */
  readonly #locked: ReadonlySet<string>;
  readonly #journal: Journal<KeyOp>;
  #compaction: Promise<void> | undefined;
  /** After a failed compaction, wait for this many journal operations before retrying. */
  #compactBackoffOps = 0;
  #needCompaction = false;
  #closing = false;
  #closed = false;

  private constructor(
    file: string,
    clock: Clock,
    journal: Journal<KeyOp>,
    keys: Iterable<KeyEntry>,
    warnings: string[],
    locked: Iterable<string>,
    options: KeyStoreOptions,
  ) {
    this.#locked = new Set(locked);
    this.file = file;
    this.#journal = journal;
    this.journalFile = journal.file;
    this.oldJournalFile = journal.oldFile;
    this.#clock = clock;
    this.#minOps = options.compactMinOps ?? 1000;
    this.#onBackgroundError = options.onBackgroundError;
    this.warnings = Object.freeze(warnings);
    for (const e of keys) this.#keys.set(e.name, e.expiry, new StoredKey(e.name, e.rdata, e.expiry));
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
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') {
        throw new KeyStoreError('read-failed', file, errorMessage(err), { cause: err });
      }
    }
    const lockFile = `${file}.locked`;
    const locks = await readLocks(lockFile);
    let caseLocks = false;
    const lockName = (name: string, why: string): void => {
      if (locks.has(name)) return;
      locks.set(name, why);
      caseLocks = true;
    };
    const state: ReplayState = {
      keys: text === undefined ? new Map<string, KeyEntry>() : parseSnapshot(text, file, warnings, lockName),
      tentative: new Map<string, KeyEntry>(),
    };
    // On disk before a compaction rewrites the snapshot without the colliding entries.
    if (caseLocks) await writeLocks(lockFile, locks);
    const errors: string[] = [];
    let damagedBeforeGood = false;
    // Runs before a torn tail is cut off: the locks are on disk first.
    const inspect = async (damaged: readonly DamagedLine[]): Promise<void> => {
      let added = false;
      for (const d of damaged) {
        const verdict = judgeDamage(d, zone);
        if (!d.torn) damagedBeforeGood = true;
        if (verdict.lock === undefined && d.torn) warnings.push(verdict.message);
        else errors.push(verdict.message);
        if (verdict.lock !== undefined && !locks.has(verdict.lock)) {
          locks.set(verdict.lock, `damaged journal line at ${d.file} byte offset ${d.offset}`);
          added = true;
        }
      }
      if (added) await writeLocks(lockFile, locks);
    };
    // The journal reports background failures to the store made from it.
    const ref: { store?: KeyStore } = {};
    let opened;
    try {
      opened = await Journal.open(`${file}.journal`, parseKeyOp, {
        inspect,
        onError: (err) => {
          if (ref.store !== undefined) ref.store.#background(new KeyStoreError('write-failed', `${file}.journal`, errorMessage(err), { cause: err }));
        },
        onLost: () => {
          if (ref.store !== undefined) ref.store.#lost();
        },
      });
    } catch (err) {
      if (err instanceof JournalError) throw new KeyStoreError(err.reason, err.file, err.message, { cause: err.cause ?? err });
      throw err;
    }
    for (const [name, why] of locks) {
      const what = name === ZONE_LOCK ? 'every name without a key is locked (no new claims)' : `${name} is locked`;
      errors.push(`${what}: ${why}; to release it, delete its line from ${lockFile} and restart`);
    }
    for (const op of opened.entries) applyKeyOp(state, op);
    const abandoned = [...state.tentative.keys()];
    for (const name of abandoned) {
      warnings.push(`${file}.journal: the claim of ${name} was never confirmed (the request was interrupted); dropped`);
    }
    const store = new KeyStore(file, clock, opened.journal, state.keys.values(), warnings, locks.keys(), options);
    ref.store = store;
    // Said once: the next open does not report these names again.
    for (const name of abandoned) store.#journal.write({ op: 'remove', name });
    // A compaction interrupted by a crash is finished now.
    // So is one that leaves damaged lines in the journal (their locks are on disk).
    if (opened.journal.hasOld || damagedBeforeGood) store.#needCompaction = true;
    store.#maybeCompact();
    return { store, warnings: [...warnings], errors, abandoned };
  }

  /** Confirmed keys. */
  get size(): number {
    return this.#keys.size;
  }

  /**
   * The confirmed key of `name` (any case), or undefined. A tentative claim
   * is not visible. A key past its expiry stays visible until expireDue()
   * drops it (at most a second later), so that its name is removed upstream
   * before anyone can claim it anew. A locked name without a key (locks.ts)
   * gets a stand-in that no signature matches.
   */
  get(name: string): StoredKey | undefined {
    const canonical = canonicalName(name);
    return this.#keys.get(canonical) ?? (this.#isLocked(canonical) ? StoredKey.locked(canonical) : undefined);
  }

  has(name: string): boolean {
    return this.#keys.has(canonicalName(name));
  }

  /** Every confirmed key, in no particular order. */
  *keys(): IterableIterator<StoredKey> {
    for (const e of this.#keys.entries()) yield e.value;
  }

  /** The same, as the zone's KeyStorePort names it. */
  claimedKeys(): IterableIterator<StoredKey> {
    return this.keys();
  }

  /** The earliest expiry of a confirmed key, or undefined when there is none. */
  nextExpiry(): number | undefined {
    return this.#keys.nextDeadline();
  }

  /**
   * Trust on first use, step one: reserves `name` for `rdata` unless the
   * name already has a key. Resolves 'claimed' once the tentative claim is
   * on disk; the key stays invisible (and never expires) until confirm().
   * Of concurrent claims of one name exactly one gets 'claimed'; the others
   * wait until it is confirmed (then resolve 'exists') or abandoned or
   * failed (then try again themselves). Rejects with KeyStoreError
   * 'write-failed' when the journal cannot be written — nothing is
   * reserved then — or 'closed'.
   */
  async claim(name: string, rdata: KeyRData, expiry: number): Promise<'claimed' | 'exists'> {
    if (!Number.isFinite(expiry)) throw new RangeError(`expiry must be finite, got ${expiry}`);
    const canonical = canonicalName(name);
    for (;;) {
      this.#assertOpen();
      if (this.#keys.has(canonical) || this.#isLocked(canonical)) return 'exists';
      const held = this.#tentative.get(canonical);
      if (held === undefined) break;
      await held.settled;
    }
    let settle = ignore;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const t: Tentative = { key: new StoredKey(canonical, rdata, expiry), written: false, confirming: undefined, settled, settle };
    this.#tentative.set(canonical, t);
    const written = this.#journal.writeDurable(claimOp(entryOf(t.key), true), () => (t.written = true));
    this.#maybeCompact();
    try {
      await written;
    } catch (err) {
      if (this.#tentative.get(canonical) === t) this.#tentative.delete(canonical);
      settle();
      throw this.#writeFailed(err);
    }
    return 'claimed';
  }

  /**
   * Step two: makes the tentative claim of `name` its key. Resolves once
   * the confirmation is on disk; the key is visible from then on. Rejects
   * with KeyStoreError 'write-failed' — the claim then stays tentative, and
   * the caller abandons it — or 'closed'; and with a plain Error when
   * `name` has no tentative claim (a caller's mistake).
   */
  async confirm(name: string): Promise<void> {
    const canonical = canonicalName(name);
    this.#assertOpen();
    const t = this.#tentative.get(canonical);
    if (t === undefined || !t.written) throw new Error(`${canonical}: no tentative claim to confirm`);
    t.confirming ??= this.#journal
      .writeDurable(claimOp(entryOf(t.key), false), () => {
        // Abandoned meanwhile: the remove line follows this one, so the name stays free.
        if (this.#tentative.get(canonical) !== t) return;
        this.#tentative.delete(canonical);
        this.#keys.set(canonical, t.key.expiry, t.key);
        t.settle();
      })
      .catch((err: unknown) => {
        t.confirming = undefined;
        throw this.#writeFailed(err);
      });
    this.#maybeCompact();
    await t.confirming;
  }

  /** Drops the tentative claim of `name`, if it has one (written lazily). */
  abandon(name: string): void {
    const canonical = canonicalName(name);
    const t = this.#tentative.get(canonical);
    if (t === undefined) return;
    this.#tentative.delete(canonical);
    t.settle();
    if (this.#closed) return;
    this.#journal.write({ op: 'remove', name: canonical });
    this.#maybeCompact();
  }

  /**
   * Moves the expiry of `name`'s key to `expiry` (ms). Returns false when
   * the name has no confirmed key. Written lazily (see the module comment).
   */
  refresh(name: string, expiry: number): boolean {
    if (!Number.isFinite(expiry)) throw new RangeError(`expiry must be finite, got ${expiry}`);
    this.#assertOpen();
    const canonical = canonicalName(name);
    const key = this.#keys.get(canonical);
    if (key === undefined) return false;
    key[SET_EXPIRY](expiry);
    this.#keys.set(canonical, expiry, key);
    this.#journal.write({ op: 'refresh', name: canonical, expiry });
    this.#maybeCompact();
    return true;
  }

  /** Forgets `name`'s confirmed key. Returns false when it had none. Written lazily. */
  remove(name: string): boolean {
    this.#assertOpen();
    const canonical = canonicalName(name);
    if (!this.#keys.delete(canonical)) return false;
    this.#journal.write({ op: 'remove', name: canonical });
    this.#maybeCompact();
    return true;
  }

  /** Drops and returns, earliest first, every confirmed key whose expiry is <= now. */
  expireDue(now: number = this.#clock.now()): StoredKey[] {
    // A timer may still fire while the store closes; there is nothing to do then.
    if (this.#closing || this.#closed) return [];
    const out: StoredKey[] = [];
    for (const e of this.#keys.popDue(now)) {
      this.#journal.write({ op: 'remove', name: e.key });
      out.push(e.value);
    }
    if (out.length > 0) this.#maybeCompact();
    return out;
  }

  /**
   * Writes every confirmed key to the snapshot atomically (leaving a file
   * the original daemon can read on its own) and retires the journal up to
   * that point; tentative claims move on to the fresh journal. Rejects with
   * KeyStoreError 'write-failed'; the previous files stay usable then.
   */
  async flush(): Promise<void> {
    if (this.#closed) throw new KeyStoreError('closed', this.file, 'key store is closed');
    while (this.#compaction !== undefined) await this.#compaction.catch(ignore);
    await this.#startCompaction();
  }

  /**
   * Resolves once nothing is being written: no queued lines, no compaction.
   * Lazily written lines are on disk (not necessarily fsynced) by then.
   */
  async idle(): Promise<void> {
    for (;;) {
      if (this.#compaction !== undefined) {
        await this.#compaction.catch(ignore);
        continue;
      }
      await this.#journal.idle();
      if (this.#compaction === undefined) return;
    }
  }

  /**
   * Refuses further changes, flushes, and releases the journal (deleting it
   * when nothing is left in it). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      await this.#journal.close({ removeIfEmpty: true });
    }
  }

  #isLocked(canonical: string): boolean {
    return this.#locked.size > 0 && (this.#locked.has(canonical) || this.#locked.has(ZONE_LOCK));
  }

  #assertOpen(): void {
    if (this.#closing || this.#closed) throw new KeyStoreError('closed', this.file, 'key store is closed');
  }

  #writeFailed(err: unknown): KeyStoreError {
    return err instanceof KeyStoreError ? err : new KeyStoreError('write-failed', this.journalFile, errorMessage(err), { cause: err });
  }

  #background(err: KeyStoreError): void {
    this.#onBackgroundError?.(err);
  }

  /** The journal was cut or replaced behind our back: what it held is in memory, so snapshot it soon. */
  #lost(): void {
    this.#needCompaction = true;
    this.#maybeCompact();
  }

  // -- compaction -----------------------------------------------------------------

  #maybeCompact(): void {
    if (this.#compaction !== undefined || this.#closed || this.#closing) return;
    const threshold = Math.max(this.#minOps, this.#keys.size, this.#compactBackoffOps);
    if (!this.#needCompaction && this.#journal.length <= threshold) return;
    this.#startCompaction().catch((err: unknown) => this.#background(this.#writeFailed(err)));
  }

  #startCompaction(): Promise<void> {
    this.#needCompaction = false;
    const run = this.#compact().then(
      () => {
        this.#compactBackoffOps = 0;
      },
      (err: unknown) => {
        this.#compactBackoffOps = this.#journal.length + Math.max(this.#minOps, this.#keys.size);
        throw err instanceof KeyStoreError ? err : new KeyStoreError('write-failed', this.file, errorMessage(err), { cause: err });
      },
    );
    const tracked = run.finally(() => {
      if (this.#compaction === tracked) this.#compaction = undefined;
    });
    this.#compaction = tracked;
    return tracked;
  }

  /**
   * The journal's hand-over (journal.ts): with no line in flight, capture
   * the confirmed keys for the snapshot, and carry the written tentative
   * claims over to the fresh journal (the snapshot cannot hold them);
   * then write the snapshot in the background.
   */
  async #compact(): Promise<void> {
    let entries: KeyEntry[] = [];
    await this.#journal.compact(
      () => {
        entries = [];
        for (const e of this.#keys.entries()) entries.push({ name: e.value.name, rdata: e.value.rdata, expiry: e.deadline });
        const carry: KeyOp[] = [];
        for (const t of this.#tentative.values()) if (t.written) carry.push(claimOp(entryOf(t.key), true));
        return carry;
      },
      () => atomicWrite(this.file, serializeSnapshot(entries)),
    );
  }
}
