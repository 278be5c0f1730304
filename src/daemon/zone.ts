/**
 * One served zone at run time: its settings, key store, record cache and
 * upstreams, and the rules that tie them together (the order in which an
 * accepted update is made durable and published, what expiry sends, what
 * shutdown removes). The request handler decides; the zone carries out.
 */
import type { Logger } from 'pino';
import type { ZoneConfig } from '../config/daemon.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { AddrRecord, UpstreamChange } from './records.js';
import { isEmptyChange, recordKey } from './records.js';
import type { KeyRData } from '../dns/types.js';
import type { KeyObject } from 'node:crypto';
import { NameInUseError, type Upstream } from './upstreams/upstream.js';
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
  /** A confirmed key; a tentative claim is not visible. */
  get(name: string): ClaimedKey | undefined;
  /**
   * A tentative claim, durable before it resolves; 'exists' when the name
   * was claimed meanwhile. Invisible until confirm(); dropped at the next
   * start if never confirmed.
   */
  claim(name: string, rdata: KeyRData, expiry: number): Promise<'claimed' | 'exists'>;
  /** Makes a tentative claim real; durable before it resolves. */
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

/** What the handler decided to do for one authenticated, vetted update. */
export interface UpdatePlan {
  /** The claimed name (canonical). */
  readonly name: string;
  /** A first claim: the key to store. Absent when the name already has this key. */
  readonly newKey?: KeyRData;
  /** ms since the epoch. */
  readonly keyExpiry: number;
  /** Records to add or refresh, TTL already clamped. */
  readonly adds: readonly AddrRecord[];
  /** Single records to delete (RFC 2136 §2.5.4). */
  readonly removes: readonly AddrRecord[];
  /** RRsets to delete (RFC 2136 §2.5.2). */
  readonly removeTypes: ReadonlyArray<'A' | 'AAAA'>;
  /** Delete every RRset of the name (RFC 2136 §2.5.3). */
  readonly removeAll: boolean;
}

/**
 * How applying a plan ended. 'exists': someone else claimed the name first;
 * 'key-store': the key could not be made durable; 'upstream': an upstream
 * did not take the change; 'in-use': an upstream holds records of the name
 * that nsregd did not put there (first claims only; final, not retried).
 * Nothing of a failed plan stays visible: adds that reached an upstream are taken back; removals stay queued (they are
 * what the client asked for, and a retry asks again).
 */
export type UpdateResult = { readonly ok: true } | { readonly ok: false; readonly failure: 'exists' | 'key-store' | 'upstream' | 'in-use' };

/** How long shutdown waits for upstreams to take the removals before leaving them to the next start. */
export const SHUTDOWN_DRAIN_MS = 10_000;

export class Zone {
  private readonly locks = new Map<string, Promise<unknown>>();
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private closed = false;
  private outboxes: Outbox[] = [];
  private upstreamList: readonly Upstream[] = [];
  /** The removals restore() queued, until first tried (shutdown waits for them). */
  private restoring: Promise<unknown> | undefined;

  constructor(
    public config: ZoneConfig,
    private readonly keys: KeyStorePort,
    private readonly cache: RecordCachePort,
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

  /**
   * Puts back records and operations loaded from the state file (start-up).
   * A record, or a pending add, of a name that has no confirmed key — a
   * claim interrupted by a crash before it was confirmed — is not restored
   * but removed upstream: a crash leaves a claim with its records, or
   * neither.
   */
  restore(records: ReadonlyArray<{ record: AddrRecord; expiresAt: number }>, ops: ReadonlyMap<string, readonly Op[]>): void {
    const orphans = new Map<string, AddrRecord>();
    let restored = 0;
    for (const { record, expiresAt } of records) {
      if (this.keys.get(record.name) === undefined) {
        orphans.set(recordKey(record), record);
        this.state?.recordRemoved(record);
      } else {
        this.cache.upsert(record, expiresAt);
        restored++;
      }
    }
    const unclaimed = (op: Op): boolean => op.kind === 'add' && op.record !== undefined && this.keys.get(op.record.name) === undefined;
    for (const box of this.outboxes) {
      // A pending add of an unconfirmed claim is sent as the removal it must become.
      box.restore((ops.get(box.id) ?? []).map((op) => (unclaimed(op) ? { ...op, kind: 'remove' as const } : op)));
    }
    for (const [id, list] of ops) {
      if (!this.outboxes.some((b) => b.id === id) && list.length > 0) {
        this.state?.dropUpstream(id);
        this.logger.warn({ upstream: id, operations: list.length }, 'upstream no longer configured: its pending operations are dropped');
      }
    }
    if (restored > 0) this.logger.info({ records: restored }, 'records restored from the state file');
    if (orphans.size > 0) {
      const remove = [...orphans.values()];
      this.logger.warn({ records: remove.length, names: [...new Set(remove.map((r) => r.name))] }, 'records of unconfirmed claims are removed');
      // Every outbox, keep-records ones too: these records were never
      // acknowledged to a client. Start-up does not wait for an upstream
      // that is down (shutdown does wait for the first try); the outboxes
      // retry, and a crash before these are written finds them again.
      this.restoring = this.forward({ add: [], remove, removeNames: [] });
    }
  }

  /** A record the upstreams accepted: cached (and journaled) until `expiresAt`. */
  private install(r: AddrRecord, expiresAt: number): void {
    this.cache.upsert(r, expiresAt);
    this.state?.recordInstalled(r, expiresAt);
  }

  private uninstall(r: AddrRecord): void {
    if (this.cache.remove(r)) this.state?.recordRemoved(r);
  }

  /** The key of `name`, if it has a confirmed one. */
  keyOf(name: string): ClaimedKey | undefined {
    return this.keys.get(name);
  }

  /** Every live record with its deadline (the built-in zone server and Unbound read these). */
  allLiveRecords(): readonly AddrRecord[] {
    return this.cache.all().map((c) => c.record);
  }

  /**
   * Carries out an accepted update, in an order that a crash at any point
   * leaves either no claim and no records, or both:
   *   0. a first claim of a name an upstream reports in use is refused
   *      before anything is stored or sent (nsupdate `protect-existing`);
   *   1. a first claim is written durably as tentative (invisible, and
   *      dropped at the next start unless confirmed);
   *   2. the change goes to every upstream (each outbox writes its
   *      operations ahead durably);
   *   3. the records are installed (cache and state file);
   *   4. the claim is confirmed durably — only then is the client told
   *      NOERROR;
   *   5. the expiry timer is re-armed.
   * Call under withNameLock(plan.name).
   */
  async applyUpdate(plan: UpdatePlan, now: number): Promise<UpdateResult> {
    const { name } = plan;
    const fresh = plan.adds.filter((r) => !this.cache.has(r));
    const removes = [...plan.removes];
    const seen = new Set(removes.map(recordKey));
    for (const r of this.cache.recordsOf(name)) {
      if ((plan.removeAll || plan.removeTypes.includes(r.type)) && !seen.has(recordKey(r))) {
        removes.push(r);
        seen.add(recordKey(r));
      }
    }
    // Installed records only move their expiry; the rest go upstream.
    const change: UpstreamChange = {
      add: fresh,
      remove: plan.removeAll ? [] : removes,
      removeNames: plan.removeAll ? [{ name, addresses: removes }] : [],
    };

    if (plan.newKey !== undefined) {
      const unused = await this.checkUnused(name);
      if (unused !== undefined) return { ok: false, failure: unused };
      let claimed: 'claimed' | 'exists';
      try {
        claimed = await this.keys.claim(name, plan.newKey, plan.keyExpiry);
      } catch (err) {
        this.logger.error({ name, err }, 'key database write failed');
        return { ok: false, failure: 'key-store' };
      }
      if (claimed === 'exists') return { ok: false, failure: 'exists' };
    }

    const outcome = await this.forward(change, { request: true });
    if (!outcome.ok) {
      // The client hears SERVFAIL and retries. The daemon's view must stay
      // what the upstreams converge to: adds that landed somewhere are taken
      // back (a retry queues them again after the removal), and removals
      // stay queued in the outboxes, so they count as done here too.
      await this.takeBack(fresh);
      if (plan.newKey !== undefined) this.keys.abandon(name);
      else for (const r of removes) this.uninstall(r);
      return { ok: false, failure: 'upstream' };
    }

    for (const r of removes) this.uninstall(r);
    for (const r of plan.adds) this.install(r, now + r.ttl * 1000);
    if (plan.newKey !== undefined) {
      try {
        await this.keys.confirm(name);
      } catch (err) {
        this.logger.error({ name, err }, 'key database write failed');
        for (const r of plan.adds) this.uninstall(r);
        await this.takeBack(fresh);
        this.keys.abandon(name);
        return { ok: false, failure: 'key-store' };
      }
    } else {
      this.keys.refresh(name, plan.keyExpiry);
    }
    this.scheduleExpiry();
    return { ok: true };
  }

  /**
   * Before a first claim: asks every upstream that protects names in use
   * (nsupdate `protect-existing`). Undefined when the name may be claimed.
   * Nothing is stored or sent before this, so a refusal leaves no trace.
   */
  private async checkUnused(name: string): Promise<'in-use' | 'upstream' | undefined> {
    const asked = this.upstreamList.filter((u) => u.checkUnused !== undefined);
    const results = await Promise.allSettled(asked.map((u) => u.checkUnused?.(name) ?? Promise.resolve()));
    let outcome: 'in-use' | 'upstream' | undefined;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return;
      const upstream = asked[i]?.description;
      if (r.reason instanceof NameInUseError) {
        this.logger.info({ name, upstream }, 'claim refused: the name holds records nsregd did not put there');
        outcome = 'in-use';
      } else {
        this.logger.warn({ name, upstream, err: r.reason }, 'cannot tell whether the name is in use upstream');
        outcome ??= 'upstream';
      }
    });
    return outcome;
  }

  /** Removes, from every upstream, adds of a request that then failed. */
  private async takeBack(added: readonly AddrRecord[]): Promise<void> {
    if (added.length > 0) await this.forward({ add: [], remove: added, removeNames: [] });
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
  private async forward(change: UpstreamChange, opts: { skipKeepRecords?: boolean; request?: boolean } = {}): Promise<ForwardOutcome> {
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
  private scheduleExpiry(): void {
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
    await this.restoring;
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
