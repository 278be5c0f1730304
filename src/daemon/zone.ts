/**
 * One served zone at run time: its settings, key store, record cache and
 * upstreams, and the rules that tie them together (what expiry sends, what
 * shutdown removes). The request handler decides; the zone carries out.
 */
import type { Logger } from 'pino';
import type { ZoneConfig } from '../config/daemon.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { AddrRecord, UpstreamChange } from './records.js';
import { isEmptyChange } from './records.js';
import type { KeyRData } from '../dns/types.js';
import type { KeyObject } from 'node:crypto';
import type { Upstream } from './upstreams/upstream.js';
import { Outbox, type Op } from './outbox.js';
import type { ZoneState } from './zonestate.js';

/** What the zone needs of a stored claim. */
export interface ClaimedKey {
  readonly name: string;
  readonly rdata: KeyRData;
  readonly keyTag: number;
  /** ms since the epoch. */
  readonly expiry: number;
  /** Imported once and reused: importing costs more than a hash. */
  publicKey(): KeyObject;
}

/** The key database as the zone uses it (implemented by KeyStore). */
export interface KeyStorePort {
  get(name: string): ClaimedKey | undefined;
  /** A tentative claim, durable before it resolves; 'exists' when the name was claimed meanwhile. */
  claim(name: string, rdata: KeyRData, expiry: number): Promise<'claimed' | 'exists'>;
  /** Makes a tentative claim the name's key; durable before it resolves. */
  confirm(name: string): Promise<void>;
  /** Drops a tentative claim. */
  abandon(name: string): void;
  refresh(name: string, expiry: number): unknown;
  remove(name: string): unknown;
  expireDue(now: number): ClaimedKey[];
  nextExpiry(): number | undefined;
  readonly size: number;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The record cache as the zone uses it (implemented by RecordCache). */
export interface RecordCachePort {
  has(rec: AddrRecord): boolean;
  upsert(rec: AddrRecord, expiresAt: number): 'new' | 'refreshed';
  remove(rec: AddrRecord): boolean;
  removeName(name: string): AddrRecord[];
  recordsOf(name: string): AddrRecord[];
  expireDue(now: number): AddrRecord[];
  nextExpiry(): number | undefined;
  all(): ReadonlyArray<{ readonly record: AddrRecord; readonly expiresAt: number }>;
  readonly size: number;
}

export interface ForwardOutcome {
  readonly ok: boolean;
  readonly failures: readonly Error[];
}

/** How long shutdown waits for upstreams to take the removals before leaving them to the next start. */
export const SHUTDOWN_DRAIN_MS = 10_000;

export class Zone {
  private readonly locks = new Map<string, Promise<unknown>>();
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private closed = false;
  private outboxes: Outbox[] = [];
  private upstreamList: readonly Upstream[] = [];

  constructor(
    public config: ZoneConfig,
    readonly keys: KeyStorePort,
    readonly cache: RecordCachePort,
    upstreams: readonly Upstream[],
    public logger: Logger,
    readonly clock: Clock,
    /** Durable records and pending upstream operations; none in unit tests. */
    readonly state?: ZoneState,
  ) {
    this.upstreams = upstreams;
    state?.setRecordSource(
      () => this.cache.all(),
      () => this.cache.size,
    );
  }

  get upstreams(): readonly Upstream[] {
    return this.upstreamList;
  }

  /**
   * Replaces the upstreams (reload). Each gets an outbox; operations still
   * pending for an upstream that stays (same description) carry over.
   */
  set upstreams(list: readonly Upstream[]) {
    const old = new Map(this.outboxes.map((o) => [o.id, o]));
    this.upstreamList = list;
    this.outboxes = list.map((u) => {
      const box = new Outbox(u, this.clock, this.logger, this.state, () => this.state?.nextSeq() ?? nextLocalSeq());
      const previous = old.get(u.description);
      if (previous !== undefined) {
        box.restore(previous.pendingOps());
        previous.close();
        old.delete(u.description);
      }
      return box;
    });
    for (const gone of old.values()) {
      const n = gone.pendingCount;
      gone.close();
      if (n > 0) {
        this.state?.dropUpstream(gone.id);
        this.logger.warn({ upstream: gone.id, operations: n }, 'upstream no longer configured: its pending operations are dropped');
      }
    }
  }

  /** Puts back records and operations loaded from the state file (start-up). */
  restore(records: ReadonlyArray<{ record: AddrRecord; expiresAt: number }>, ops: ReadonlyMap<string, readonly Op[]>): void {
    for (const { record, expiresAt } of records) this.cache.upsert(record, expiresAt);
    for (const box of this.outboxes) box.restore(ops.get(box.id) ?? []);
    for (const [id, list] of ops) {
      if (!this.outboxes.some((b) => b.id === id) && list.length > 0) {
        this.state?.dropUpstream(id);
        this.logger.warn({ upstream: id, operations: list.length }, 'upstream no longer configured: its pending operations are dropped');
      }
    }
    if (records.length > 0) this.logger.info({ records: records.length }, 'records restored from the state file');
  }

  /** A record the upstreams accepted: cached (and journaled) until `expiresAt`. */
  install(r: AddrRecord, expiresAt: number): void {
    this.cache.upsert(r, expiresAt);
    this.state?.recordInstalled(r, expiresAt);
  }

  uninstall(r: AddrRecord): void {
    if (this.cache.remove(r)) this.state?.recordRemoved(r);
  }

  get name(): string {
    return this.config.name;
  }

  /**
   * Runs `fn` with no other request for `name` in progress, so two claims of
   * one new name cannot both pass the "no key yet" check.
   */
  async withNameLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(name) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(name, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(name) === settled) this.locks.delete(name);
    }
  }

  /**
   * Sends a change to every upstream's outbox — each one, even after another
   * failed (the original stopped at the first failure). Resolves with the
   * first attempt's outcome; failed operations stay queued and are retried.
   * `skipKeepRecords` leaves out upstreams that keep records (key expiry,
   * shutdown); `request` marks adds a client is waiting for (refused when an
   * outbox is full).
   */
  async forward(change: UpstreamChange, opts: { skipKeepRecords?: boolean; request?: boolean } = {}): Promise<ForwardOutcome> {
    if (isEmptyChange(change)) return { ok: true, failures: [] };
    const targets = this.outboxes.filter((b) => !(opts.skipKeepRecords && b.upstream.keepRecords));
    const results = await Promise.all(targets.map((b) => b.submit(change, { request: opts.request ?? false })));
    const failures: Error[] = [];
    results.forEach((ok, i) => {
      if (!ok) failures.push(new Error(`${targets[i]?.id ?? 'upstream'} did not apply the update`));
    });
    return { ok: failures.length === 0, failures };
  }

  /** Operations waiting for an upstream, all upstreams together. */
  get pendingOperations(): number {
    return this.outboxes.reduce((n, b) => n + b.pendingCount, 0);
  }

  /** Live records of a name (what whole-name upstreams such as Unbound re-add). */
  liveRecords(name: string): readonly AddrRecord[] {
    return this.cache.recordsOf(name);
  }

  /** Arms the single expiry timer for the earliest record or key deadline. */
  scheduleExpiry(): void {
    if (this.closed) return;
    const next = Math.min(this.cache.nextExpiry() ?? Infinity, this.keys.nextExpiry() ?? Infinity);
    if (next === this.timerAt && this.timer !== undefined) return;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = this.clock.schedule(next - this.clock.now(), () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      void this.runExpiry();
    });
  }

  /**
   * Drops what is due: expired records are removed upstream (class NONE);
   * an expired key removes its whole name (delete-name) from every upstream
   * without keep-records, with the name's cached records and their PTRs.
   */
  async runExpiry(): Promise<void> {
    const now = this.clock.now();
    const records = this.cache.expireDue(now);
    const keys = this.keys.expireDue(now);
    const removeNames = keys.map((k) => ({ name: k.name, addresses: this.cache.removeName(k.name) }));
    for (const r of records) this.state?.recordRemoved(r);
    for (const n of removeNames) for (const r of n.addresses) this.state?.recordRemoved(r);
    const jobs: Array<Promise<unknown>> = [];
    if (records.length > 0) {
      this.logger.info({ count: records.length }, 'records expired');
      jobs.push(this.forward({ add: [], remove: records, removeNames: [] }));
    }
    if (removeNames.length > 0) {
      this.logger.info({ names: removeNames.map((n) => n.name) }, 'keys expired');
      jobs.push(this.forward({ add: [], remove: [], removeNames }, { skipKeepRecords: true }));
    }
    this.scheduleExpiry();
    await Promise.all(jobs);
  }

  async start(): Promise<void> {
    for (const u of this.upstreams) {
      try {
        await u.start();
      } catch (err) {
        this.logger.error({ upstream: u.description, err: err }, 'upstream start failed');
      }
    }
    await this.runExpiry();
  }

  /**
   * Shuts the zone down: every cached record is removed from the upstreams
   * that do not keep records (the original removed them even then); what an
   * upstream does not take within SHUTDOWN_DRAIN_MS stays in the state file
   * and is sent at the next start. Then the key database and state are
   * written and upstreams closed.
   */
  async shutdown(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    const records = this.cache.all().map((c) => c.record);
    for (const r of records) this.uninstall(r);
    if (records.length > 0) {
      const outcome = await this.forward({ add: [], remove: records, removeNames: [] }, { skipKeepRecords: true });
      this.logger.info({ count: records.length, ok: outcome.ok }, 'records removed at shutdown');
    }
    const drained = await Promise.all(this.outboxes.map((b) => b.drain(SHUTDOWN_DRAIN_MS)));
    const left = this.pendingOperations;
    if (!drained.every(Boolean)) {
      this.logger.warn({ operations: left }, 'some upstream operations could not be applied; they are kept and sent at the next start');
    }
    for (const b of this.outboxes) b.close();
    await this.state?.close();
    await this.keys.close();
    await Promise.allSettled(this.upstreams.map((u) => u.close()));
  }
}

let localSeq = 0;
function nextLocalSeq(): number {
  return ++localSeq;
}
