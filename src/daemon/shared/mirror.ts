/**
 * A zone's data as kept in etcd, mirrored in memory (README, "Several
 * daemons as one service"): a consistent snapshot (a range read of the
 * zone's namespace at one revision R, paged at that revision), then a watch
 * of the namespace from R+1. Each entry keeps its create and mod revisions;
 * an event no newer than what an entry holds is ignored, and a delete
 * leaves a tombstone until the mirror's revision has passed it, so a late,
 * older put cannot bring a key back. This daemon's own writes are applied
 * at once (applyOwn) with the revision etcd gave them.
 *
 * When the watch fails (a member went away, etcd compacted past the
 * revision it needed) the mirror is not current: it loads a fresh snapshot,
 * reports what differs as events, and watches again from there. It never
 * goes silently stale, and never relies on the client library resuming a
 * watch by itself (which can skip events).
 *
 * Only decoded entries are kept. A key or value that does not decode is
 * skipped and logged once per key (layout.ts says what decodes).
 *
 * A mirror holds everything of the namespace but the deadlines (until/,
 * which every refresh writes): no daemon watches those (the publisher
 * reads them as it needs them, ./deadlines.ts).
 */
import { Range, type IKeyValue, type IWatchResponse, type Namespace, type Watcher } from 'etcd3';
import type { Logger } from 'pino';

import { canonicalName, isSubdomain } from '../../dns/names.js';
import type { AddrRecord } from '../records.js';
import type {
  MirrorEvent,
  OwnWrites,
  SharedStore,
  StoredChange,
  StoredClaim,
  StoredRecord,
  StoredResult,
  Versioned,
  ZoneMirror,
} from './contract.js';
import { StoreUnavailableError } from './errors.js';
import { Listeners } from './listeners.js';
import {
  claimKey,
  DEADLINES_PREFIX,
  decodeChange,
  decodeClaim,
  decodeRecord,
  decodeResult,
  parseZoneKey,
  recordPath,
  recordSlot,
  type Decoded,
  type ZoneKey,
} from './layout.js';
import { readAtOneRevision } from './reads.js';
import { fragmentingWatcher, WatchAssembler, type WholeRevisions } from './watch.js';

/** Keys per page of a snapshot read. */
const SNAPSHOT_PAGE = 1000;
/** Bad keys remembered (so each is logged once); beyond this they are counted, not logged. */
const MAX_BAD_KEYS = 10_000;

export interface ZoneMirrorOptions {
  readonly zone: string;
  /** The zone's namespace (`<prefix>/v1/zones/<zone>/`). */
  readonly namespace: Namespace;
  /** The store's bounded operation runner (snapshot reads go through it). */
  readonly run: SharedStore['run'];
  readonly logger: Logger;
  /** The store timeout: also the pause between attempts to resynchronise after a failure. */
  readonly timeoutMs: number;
  /** Called once when the mirror is closed. */
  readonly onClose?: () => void;
}

/** The key range (relative to the namespace) a mirror reads and watches: everything below until/ (the layout puts nothing after it). */
const MIRRORED = new Range(Buffer.alloc(0), DEADLINES_PREFIX);

/** A mirror the store can close. */
export interface EtcdZoneMirror extends ZoneMirror {
  /** Deletes remembered until the mirror's revision passes them (bounded memory; tests look). */
  readonly tombstones: number;
  close(): Promise<void>;
}

type RecordItem = { readonly record: AddrRecord; readonly entry: Versioned<StoredRecord> };

/** One decoded entry and its mod revision as a number to compare. */
type Entry =
  | { readonly kind: 'claim'; readonly name: string; readonly v: Versioned<StoredClaim>; readonly mod: bigint }
  | { readonly kind: 'record'; readonly item: RecordItem; readonly mod: bigint }
  | { readonly kind: 'change'; readonly id: string; readonly v: Versioned<StoredChange>; readonly mod: bigint }
  | { readonly kind: 'result'; readonly id: string; readonly value: StoredResult; readonly mod: bigint }
  | { readonly kind: 'serial'; readonly base: string; readonly mod: bigint };

/** What one batch changed, collected for its MirrorEvent. */
class Batch {
  readonly added: AddrRecord[] = [];
  readonly removed: AddrRecord[] = [];
  readonly claimsPut: string[] = [];
  readonly claimsDeleted: string[] = [];
  readonly changesPut: string[] = [];
  readonly changesDeleted: string[] = [];
  readonly results: Array<{ id: string; ok: boolean }> = [];
  touched = false;

  event(revision: bigint): MirrorEvent {
    return {
      revision: revision.toString(),
      records: { added: this.added, removed: this.removed },
      claims: { put: this.claimsPut, deleted: this.claimsDeleted },
      changes: { put: this.changesPut, deleted: this.changesDeleted },
      results: this.results,
    };
  }
}

interface Waiter {
  readonly target: bigint;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

class Mirror implements EtcdZoneMirror {
  readonly zone: string;
  readonly #ns: Namespace;
  readonly #run: SharedStore['run'];
  readonly #log: Logger;
  readonly #retryMs: number;
  readonly #onClose: (() => void) | undefined;

  readonly #entries = new Map<string, Entry>();
  readonly #claims = new Map<string, Versioned<StoredClaim>>();
  readonly #records = new Map<string, Map<string, RecordItem>>();
  readonly #changes = new Map<string, Versioned<StoredChange>>();
  readonly #results = new Map<string, StoredResult>();
  /** Deleted keys and the revision of their delete, until the mirror's revision passes it. */
  readonly #tombstones = new Map<string, bigint>();
  readonly #badKeys = new Set<string>();
  #badNotLogged = 0;
  #recordCount = 0;
  #serial = 0n;
  #serialBase = '0';
  #revision = 0n;

  readonly #listeners: Listeners<MirrorEvent>;
  readonly #waiters = new Set<Waiter>();
  #watcher: Watcher | undefined;
  #current = false;
  #resyncing = false;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: ZoneMirrorOptions) {
    this.zone = canonicalName(opts.zone);
    this.#ns = opts.namespace;
    this.#run = opts.run;
    this.#log = opts.logger;
    this.#listeners = new Listeners(opts.logger, 'zone mirror event');
    this.#retryMs = Math.max(100, Math.min(1000, opts.timeoutMs));
    this.#onClose = opts.onClose;
  }

  // ---------------------------------------------------------------- ZoneMirror

  get revision(): string {
    return this.#revision.toString();
  }

  get current(): boolean {
    return this.#current;
  }

  get claimCount(): number {
    return this.#claims.size;
  }

  get recordCount(): number {
    return this.#recordCount;
  }

  get tombstones(): number {
    return this.#tombstones.size;
  }

  get dataVersion(): string {
    return this.#serial.toString();
  }

  get serialBase(): string {
    return this.#serialBase;
  }

  claim(name: string): Versioned<StoredClaim> | undefined {
    return this.#claims.get(name);
  }

  claims(): IterableIterator<[string, Versioned<StoredClaim>]> {
    return this.#claims.entries();
  }

  records(name: string): readonly RecordItem[] {
    const of = this.#records.get(name);
    return of === undefined ? [] : [...of.values()];
  }

  allRecords(): readonly RecordItem[] {
    const out: RecordItem[] = [];
    for (const of of this.#records.values()) for (const item of of.values()) out.push(item);
    return out;
  }

  changes(): ReadonlyArray<{ readonly id: string; readonly entry: Versioned<StoredChange> }> {
    return [...this.#changes]
      .map(([id, entry]) => ({ id, entry, created: BigInt(entry.createRevision) }))
      .sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0))
      .map(({ id, entry }) => ({ id, entry }));
  }

  result(id: string): boolean | undefined {
    return this.#results.get(id)?.ok;
  }

  onEvent(listener: (e: MirrorEvent) => void): () => void {
    return this.#listeners.add(listener);
  }

  caughtUp(revision: string, timeoutMs: number): Promise<void> {
    const target = BigInt(revision);
    if (target <= this.#revision) return Promise.resolve();
    if (this.#closed) return Promise.reject(new StoreUnavailableError(`mirror of ${this.zone} is closed`));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        target,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          reject(
            new StoreUnavailableError(
              `mirror of ${this.zone} did not reach revision ${revision} within ${timeoutMs} ms (it is at ${this.#revision}${this.#current ? '' : ', watch down'})`,
            ),
          );
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  applyOwn(revision: string, writes: OwnWrites): void {
    const rev = BigInt(revision);
    // The mirror has seen every write up to its revision, this one included (by the watch or a
    // snapshot, which may also have seen later writes to the same keys that this must not undo).
    if (rev <= this.#revision) return;
    const batch = new Batch();
    for (const put of writes.puts ?? []) {
      const existing = this.#entries.get(put.key);
      const created = put.createRevision !== undefined ? BigInt(put.createRevision) : existing !== undefined ? createdOf(existing) : rev;
      this.#applyPut(put.key, typeof put.value === 'string' ? Buffer.from(put.value) : put.value, created, rev, batch);
    }
    for (const key of writes.deletes ?? []) this.#applyDelete(key, rev, batch);
    if (batch.touched) this.#listeners.emit(batch.event(rev));
  }

  reloadName(name: string, revision: string, kvs: ReadonlyArray<IKeyValue>): void {
    const rev = BigInt(revision);
    const batch = new Batch();
    const seen = new Set<string>();
    // A transaction's read answers carry the whole key, namespace prefix included.
    const prefix = this.#ns.prefix.toString();
    for (const kv of kvs) {
      const full = kv.key.toString();
      const key = full.startsWith(prefix) ? full.slice(prefix.length) : full;
      seen.add(key);
      this.#applyPut(key, kv.value, BigInt(kv.create_revision), BigInt(kv.mod_revision), batch);
    }
    // What the read did not find was gone at `revision`.
    const held = [claimKey(name), ...this.records(name).map(({ record }) => recordPath(record))];
    for (const key of held) if (!seen.has(key)) this.#applyDelete(key, rev, batch);
    if (batch.touched) this.#listeners.emit(batch.event(rev));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose?.();
    this.#current = false;
    clearTimeout(this.#retry);
    for (const w of this.#waiters) {
      clearTimeout(w.timer);
      w.reject(new StoreUnavailableError(`mirror of ${this.zone} is closed`));
    }
    this.#waiters.clear();
    await this.#dropWatcher();
  }

  // ---------------------------------------------------------------- loading and watching

  /** The first snapshot, then the watch. Rejects (StoreUnavailableError) when the snapshot cannot be read. */
  async open(): Promise<void> {
    await this.#load(new Batch(), false);
    this.#log.info({ revision: this.revision, claims: this.claimCount, records: this.recordCount }, 'zone mirror loaded');
  }

  /**
   * Reads a snapshot of the namespace and merges it: every key in it is
   * applied as a put at its own revisions (so what the mirror holds already
   * stays, and an own write newer than the snapshot is kept), and every key
   * held at or below the snapshot's revision that the snapshot lacks is
   * removed. Then the watch starts at the snapshot's revision + 1.
   */
  async #load(batch: Batch, resync: boolean): Promise<void> {
    const seen = new Set<string>();
    const at = await readAtOneRevision(
      this.#ns,
      this.#run,
      `snapshot of ${this.zone}`,
      MIRRORED,
      SNAPSHOT_PAGE,
      (kv) => {
        const key = kv.key.toString();
        seen.add(key);
        this.#applyPut(key, kv.value, BigInt(kv.create_revision), BigInt(kv.mod_revision), batch);
      },
      () => this.#closed,
    );
    if (this.#closed) return;
    for (const [key, entry] of [...this.#entries]) {
      if (!seen.has(key) && entry.mod <= at) this.#remove(key, entry, batch);
    }
    for (const key of this.#badKeys) if (!seen.has(key)) this.#badKeys.delete(key);
    if (this.#closed) return;
    if (at > this.#revision) this.#revision = at;
    this.#sweep();
    if (resync) this.#log.info({ revision: this.revision }, 'zone mirror current again');
    this.#current = true;
    this.#watch(at + 1n);
    if (batch.touched) this.#listeners.emit(batch.event(this.#revision));
    this.#settleWaiters();
  }

  #watch(from: bigint): void {
    const watcher = fragmentingWatcher(this.#ns.watch().inRange(MIRRORED), from);
    const parts = new WatchAssembler();
    this.#watcher = watcher;
    watcher.on('data', (res: IWatchResponse) => {
      if (this.#watcher === watcher) this.#onData(parts.take(res));
    });
    watcher.on('disconnected', (err: Error) => {
      if (this.#watcher === watcher) this.#lost(err, true);
    });
    // A watch etcd cancelled (compacted past its revision, or refused): it is gone already.
    watcher.on('error', (err: Error) => {
      if (this.#watcher === watcher) this.#lost(err, false);
    });
  }

  #onData(res: WholeRevisions): void {
    const batch = new Batch();
    for (const ev of res.events) {
      const key = ev.kv.key.toString();
      const mod = BigInt(ev.kv.mod_revision);
      if (ev.type === 'Delete') this.#applyDelete(key, mod, batch);
      else this.#applyPut(key, ev.kv.value, BigInt(ev.kv.create_revision), mod, batch);
    }
    if (res.revision !== undefined && res.revision > this.#revision) this.#revision = res.revision;
    this.#sweep();
    if (batch.touched) this.#listeners.emit(batch.event(this.#revision));
    this.#settleWaiters();
  }

  /** The watch failed: stop it, and load a fresh snapshot until one loads. */
  #lost(err: Error, cancel: boolean): void {
    if (this.#closed) return;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (cancel) watcher?.cancel().catch(() => undefined);
    if (this.#current) this.#log.warn({ err, revision: this.revision }, 'zone mirror watch failed: loading a fresh snapshot');
    this.#current = false;
    this.#resync();
  }

  #resync(): void {
    if (this.#resyncing || this.#closed) return;
    this.#resyncing = true;
    this.#load(new Batch(), true)
      .then(() => {
        this.#resyncing = false;
      })
      .catch((err: unknown) => {
        this.#resyncing = false;
        if (this.#closed) return;
        this.#log.debug({ err }, 'zone mirror snapshot failed; trying again');
        this.#retry = setTimeout(() => this.#resync(), this.#retryMs);
      });
  }

  async #dropWatcher(): Promise<void> {
    const watcher = this.#watcher;
    this.#watcher = undefined;
    // Bounded: a watcher whose stream is gone may never confirm its cancellation.
    if (watcher !== undefined) await Promise.race([watcher.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, this.#retryMs))]);
  }

  // ---------------------------------------------------------------- applying

  #applyPut(key: string, value: Buffer, created: bigint, mod: bigint, batch: Batch): void {
    const existing = this.#entries.get(key);
    if (existing !== undefined && existing.mod >= mod) return;
    const tomb = this.#tombstones.get(key);
    if (tomb !== undefined && tomb >= mod) return;
    this.#tombstones.delete(key);
    const parsed = parseZoneKey(key);
    if (parsed === undefined) {
      this.#bad(key, 'not a key of the layout');
      return;
    }
    // The leader key is the election's; until/ is not mirrored (a read-back may carry it).
    if (parsed.kind === 'leader' || parsed.kind === 'deadlines') return;
    const entry = this.#decode(parsed, value, created, mod);
    if (!entry.ok) {
      this.#bad(key, entry.reason);
      // The key no longer holds what the mirror had: it goes, and an older put must not bring it back.
      if (existing !== undefined) this.#remove(key, existing, batch);
      this.#tombstone(key, mod);
      return;
    }
    this.#badKeys.delete(key);
    if (existing !== undefined) this.#unindex(existing, undefined);
    this.#entries.set(key, entry.value);
    this.#index(entry.value, existing, batch);
  }

  #applyDelete(key: string, mod: bigint, batch: Batch): void {
    const existing = this.#entries.get(key);
    if (existing !== undefined && existing.mod >= mod) return;
    const tomb = this.#tombstones.get(key);
    if (tomb !== undefined && tomb >= mod) return;
    this.#badKeys.delete(key);
    if (existing !== undefined) this.#remove(key, existing, batch);
    this.#tombstone(key, mod);
  }

  #tombstone(key: string, mod: bigint): void {
    if (mod > this.#revision) this.#tombstones.set(key, mod);
  }

  /** Tombstones at or below the mirror's revision can go: every event up to it has been seen. */
  #sweep(): void {
    for (const [key, rev] of this.#tombstones) if (rev <= this.#revision) this.#tombstones.delete(key);
  }

  #decode(key: Exclude<ZoneKey, { kind: 'leader' | 'deadlines' }>, value: Buffer, created: bigint, mod: bigint): Decoded<Entry> {
    const versioned = <T>(v: T): Versioned<T> => ({ value: v, createRevision: created.toString(), modRevision: mod.toString() });
    const inZone = (name: string): boolean => isSubdomain(name, this.zone);
    switch (key.kind) {
      case 'serial': {
        // The SOA serial base: a decimal 32-bit number (./serial.ts).
        const text = value.toString();
        if (!/^[0-9]{1,10}$/.test(text) || Number(text) > 0xffffffff) return { ok: false, reason: 'serial base is not a 32-bit decimal number' };
        return { ok: true, value: { kind: 'serial', base: text, mod } };
      }
      case 'claim': {
        if (!inZone(key.name)) return { ok: false, reason: `${key.name} is not in zone ${this.zone}` };
        const d = decodeClaim(value);
        return d.ok ? { ok: true, value: { kind: 'claim', name: key.name, v: versioned(d.value), mod } } : d;
      }
      case 'record': {
        if (!inZone(key.name)) return { ok: false, reason: `${key.name} is not in zone ${this.zone}` };
        const d = decodeRecord(value);
        if (!d.ok) return d;
        const record: AddrRecord = { name: key.name, type: key.type, address: key.address, ttl: d.value.ttl };
        return { ok: true, value: { kind: 'record', item: { record, entry: versioned(d.value) }, mod } };
      }
      case 'change': {
        const d = decodeChange(value);
        return d.ok ? { ok: true, value: { kind: 'change', id: key.id, v: versioned(d.value), mod } } : d;
      }
      case 'result': {
        const d = decodeResult(value);
        return d.ok ? { ok: true, value: { kind: 'result', id: key.id, value: d.value, mod } } : d;
      }
    }
  }

  /** Adds `e` to the indexes and notes it in `batch` (`before`: the entry it replaces, already unindexed). */
  #index(e: Entry, before: Entry | undefined, batch: Batch): void {
    batch.touched = true;
    switch (e.kind) {
      case 'serial':
        this.#serial = e.mod;
        this.#serialBase = e.base;
        return;
      case 'claim':
        this.#claims.set(e.name, e.v);
        batch.claimsPut.push(e.name);
        return;
      case 'record': {
        const { record } = e.item;
        let of = this.#records.get(record.name);
        if (of === undefined) {
          of = new Map();
          this.#records.set(record.name, of);
        }
        of.set(recordSlot(record), e.item);
        if (before?.kind !== 'record') this.#recordCount++;
        // A record rewritten with its TTL unchanged changes nothing anyone serves.
        if (before?.kind !== 'record' || before.item.record.ttl !== record.ttl) batch.added.push(record);
        return;
      }
      case 'change':
        this.#changes.set(e.id, e.v);
        batch.changesPut.push(e.id);
        return;
      case 'result':
        this.#results.set(e.id, e.value);
        batch.results.push({ id: e.id, ok: e.value.ok });
        return;
    }
  }

  /** Takes `e` out of the indexes; with a batch, notes its removal. */
  #unindex(e: Entry, batch: Batch | undefined): void {
    switch (e.kind) {
      case 'serial':
        this.#serial = 0n;
        this.#serialBase = '0';
        break;
      case 'claim':
        this.#claims.delete(e.name);
        batch?.claimsDeleted.push(e.name);
        break;
      case 'record': {
        const { record } = e.item;
        const of = this.#records.get(record.name);
        of?.delete(recordSlot(record));
        if (of?.size === 0) this.#records.delete(record.name);
        if (batch !== undefined) {
          this.#recordCount--;
          batch.removed.push(record);
        }
        break;
      }
      case 'change':
        this.#changes.delete(e.id);
        batch?.changesDeleted.push(e.id);
        break;
      case 'result':
        this.#results.delete(e.id);
        break;
    }
    if (batch !== undefined) batch.touched = true;
  }

  #remove(key: string, e: Entry, batch: Batch): void {
    this.#entries.delete(key);
    this.#unindex(e, batch);
  }

  #bad(key: string, reason: string): void {
    if (this.#badKeys.has(key)) return;
    if (this.#badKeys.size >= MAX_BAD_KEYS) {
      if (this.#badNotLogged++ === 0) this.#log.warn({ limit: MAX_BAD_KEYS }, 'zone mirror: more bad entries in etcd than are logged one by one');
      return;
    }
    this.#badKeys.add(key);
    this.#log.warn({ key: key.slice(0, 300), reason }, 'zone mirror: skipped an entry in etcd that does not decode');
  }

  #settleWaiters(): void {
    for (const w of this.#waiters) {
      if (w.target <= this.#revision) {
        clearTimeout(w.timer);
        this.#waiters.delete(w);
        w.resolve();
      }
    }
  }
}

function createdOf(e: Entry): bigint {
  switch (e.kind) {
    case 'claim':
    case 'change':
      return BigInt(e.v.createRevision);
    case 'record':
      return BigInt(e.item.entry.createRevision);
    case 'result':
    case 'serial':
      return e.mod;
  }
}

/** Loads the zone's mirror; resolves when its first snapshot is in and the watch started. */
export async function openZoneMirror(opts: ZoneMirrorOptions): Promise<EtcdZoneMirror> {
  const mirror = new Mirror(opts);
  await mirror.open();
  return mirror;
}


