/**
 * One served zone at run time: its settings, key store, record cache and
 * upstreams, and the rules that tie them together (what expiry sends, what
 * shutdown removes). The request handler decides; the zone carries out.
 */
import type { Logger } from 'pino';
import type { ZoneConfig } from '../config/daemon.js';
import type { Clock, TimerHandle } from './clock.js';
import type { AddrRecord, UpstreamChange } from './records.js';
import { isEmptyChange } from './records.js';
import type { KeyRData } from '../dns/types.js';
import type { KeyObject } from 'node:crypto';
import type { Upstream } from './upstreams/upstream.js';

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
  /** Durable before it resolves; 'exists' when the name was claimed meanwhile. */
  claim(name: string, rdata: KeyRData, expiry: number): Promise<'claimed' | 'exists'>;
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
  all(): ReadonlyArray<{ readonly record: AddrRecord }>;
  readonly size: number;
}

export interface ForwardOutcome {
  readonly ok: boolean;
  readonly failures: readonly Error[];
}

export class Zone {
  private readonly locks = new Map<string, Promise<unknown>>();
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private closed = false;

  constructor(
    public config: ZoneConfig,
    readonly keys: KeyStorePort,
    readonly cache: RecordCachePort,
    public upstreams: readonly Upstream[],
    public logger: Logger,
    readonly clock: Clock,
  ) {}

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
   * Sends a change to every upstream — each one, even after another failed
   * (the original stopped at the first failure). `skipKeepRecords` leaves out
   * upstreams configured to keep records (expiry of a key, shutdown).
   */
  async forward(change: UpstreamChange, opts: { skipKeepRecords?: boolean } = {}): Promise<ForwardOutcome> {
    if (isEmptyChange(change)) return { ok: true, failures: [] };
    const targets = this.upstreams.filter((u) => !(opts.skipKeepRecords && u.keepRecords));
    const results = await Promise.allSettled(targets.map((u) => u.apply(change)));
    const failures: Error[] = [];
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        const err = r.reason instanceof Error ? r.reason : new Error(String(r.reason));
        failures.push(err);
        this.logger.warn({ upstream: targets[i]?.description, err: err.message }, 'upstream update failed');
      }
    });
    return { ok: failures.length === 0, failures };
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
        this.logger.error({ upstream: u.description, err: (err as Error).message }, 'upstream start failed');
      }
    }
    await this.runExpiry();
  }

  /**
   * Shuts the zone down: every cached record is removed from the upstreams
   * that do not keep records (the original removed them even then), the key
   * database is written, upstreams are closed.
   */
  async shutdown(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    const records = this.cache.all().map((c) => c.record);
    if (records.length > 0) {
      const outcome = await this.forward({ add: [], remove: records, removeNames: [] }, { skipKeepRecords: true });
      this.logger.info({ count: records.length, ok: outcome.ok }, 'records removed at shutdown');
    }
    await this.keys.close();
    await Promise.allSettled(this.upstreams.map((u) => u.close()));
  }
}
