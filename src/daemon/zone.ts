/**
 * One served zone at run time: its settings, key store, record cache and
 * upstreams, and the rules that tie them together (the order in which an
 * accepted update is made durable and published, what expiry sends, what
 * shutdown removes). The request handler decides; the zone carries out.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { ZoneConfig } from '../config/daemon.js';
import type { Clock, TimerHandle } from '../clock.js';
import type { AddrRecord, UpstreamChange } from './records.js';
import { isEmptyChange, recordKey } from './records.js';
import type { KeyRData } from '../dns/types.js';
import type { KeyObject } from 'node:crypto';
import { NameInUseError, type Upstream } from './upstreams/upstream.js';
import { Outbox, type AttemptObserver, type Op } from './outbox.js';
import { NameLocks } from './name-locks.js';
import { reverseZoneFor } from './reverse.js';
import { isForwarded } from './upstreams/filter.js';
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
  remove(name: string): boolean;
  expireDue(now: number): ClaimedKey[];
  nextExpiry(): number | undefined;
  /** Every confirmed key, in no particular order (the control channel's listings). */
  claimedKeys(): Iterable<ClaimedKey>;
  readonly size: number;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The record cache as the zone uses it (implemented by RecordCache). */
export interface RecordCachePort {
  has(rec: AddrRecord): boolean;
  get(rec: AddrRecord): { readonly expiresAt: number } | undefined;
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
  /** The key whose signature the request carried (a shared store checks it is still the name's key). */
  readonly signer: KeyRData;
  /**
   * The signature's inception (ms since the epoch). A shared store keeps
   * the newest accepted per name and refuses older ones: a request
   * recorded at one daemon and replayed at another cannot undo a later
   * update (each daemon's replay cache only knows its own requests).
   */
  readonly signedAt?: number;
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
export type UpdateResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly failure: 'exists' | 'key-store' | 'upstream' | 'in-use' | 'store-unavailable' | 'changed' | 'replayed' };

/**
 * A served zone as the request handler, the control channel, the metrics
 * and the daemon see it. Zone keeps its data in files in the data-dir;
 * SharedZone (src/daemon/shared/shared-zone.ts) keeps it in etcd, shared
 * by every daemon of a site.
 */
export interface ServedZone {
  readonly name: string;
  readonly config: ZoneConfig;
  readonly logger: Logger;
  readonly upstreams: readonly Upstream[];
  readonly counters: ZoneCounters;
  readonly keyCount: number;
  readonly recordCount: number;
  /** On a shared store: whether this daemon publishes for the zone now; undefined for a zone in files. */
  readonly publishing?: boolean;
  keyOf(name: string): ClaimedKey | undefined;
  /**
   * A shared store: reads the name's claim again from the store itself,
   * so that what keyOf() says next is not behind a change made at another
   * daemon (the handler asks before refusing a key). Absent for a zone in
   * files, whose keyOf() is never behind.
   */
  refreshClaim?(name: string): Promise<void>;
  withNameLock<T>(name: string, fn: () => Promise<T>): Promise<T>;
  applyUpdate(plan: UpdatePlan, now: number): Promise<UpdateResult>;
  liveRecords(name: string): readonly AddrRecord[];
  allLiveRecords(): readonly AddrRecord[];
  claims(): Iterable<ClaimedKey>;
  recordStates(name: string): Array<{ record: AddrRecord; expiresAt: number; upstreams: Array<{ upstream: string; pending: boolean }> }>;
  upstreamStates(): Array<{ upstream: string; failing: boolean; pending: number; oldestPendingMs: number }>;
  release(name: string, keepRecords: boolean): Promise<{ records: AddrRecord[]; applied: boolean } | null>;
  observeAttempts(observer: AttemptObserver): void;
  reconfigure(config: ZoneConfig, upstreams: readonly Upstream[]): Promise<void>;
  start(): Promise<void>;
  shutdown(): Promise<void>;
}

/** How long shutdown waits for upstreams to take the removals before leaving them to the next start. */
export const SHUTDOWN_DRAIN_MS = 10_000;

/** What happened to a zone's names and records since it opened (metrics). */
export interface ZoneCounters {
  claims: number;
  releases: number;
  keyExpiries: number;
  recordExpiries: number;
}

export class Zone implements ServedZone {
  readonly counters: ZoneCounters = { claims: 0, releases: 0, keyExpiries: 0, recordExpiries: 0 };
  private readonly locks = new NameLocks();
  private attemptObserver: AttemptObserver | undefined;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private closed = false;
  private outboxes: Outbox[] = [];
  private upstreamList: readonly Upstream[] = [];
  /** The removals restore() queued, until first tried (shutdown waits for them). */
  private restoring: Promise<unknown> | undefined;
  /** Records withdrawn at the last clean stop, to be installed again once the upstreams have started. */
  private withdrawnAtStop: AddrRecord[] = [];
  /** Their re-installation, until first tried (shutdown waits for it). */
  private reinstalling: Promise<unknown> | undefined;

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
    this.replaceUpstreams(upstreams);
    state?.setRecordSource(
      () => this.cache.all(),
      () => this.cache.size,
    );
  }

  get upstreams(): readonly Upstream[] {
    return this.upstreamList;
  }

  /**
   * Installs the upstreams (construction, reload). Each gets an outbox;
   * operations still pending for an upstream that stays (same description)
   * carry over. Returns the outboxes of upstreams no longer configured,
   * still open (reconfigure() removes the records from them first).
   */
  private replaceUpstreams(list: readonly Upstream[]): Outbox[] {
    const old = new Map(this.outboxes.map((o) => [o.id, o]));
    this.upstreamList = list;
    this.outboxes = list.map((u) => {
      const box = new Outbox(u, this.clock, this.logger, this.state, () => this.state?.nextSeq() ?? nextLocalSeq());
      box.onAttempt = this.attemptObserver;
      const previous = old.get(u.description);
      if (previous !== undefined) {
        box.restore(previous.pendingOps());
        previous.close();
        old.delete(u.description);
      }
      return box;
    });
    return [...old.values()];
  }

  private dropOutbox(gone: Outbox): void {
    const n = gone.pendingCount;
    gone.close();
    this.state?.dropUpstream(gone.id);
    if (n > 0) this.logger.warn({ upstream: gone.id, operations: n }, 'upstream no longer configured: its pending operations are dropped');
  }

  /**
   * Applies changed zone settings (reload) so that every upstream converges
   * to the live records as the new settings publish them:
   *   - an upstream no longer configured has the live records removed
   *     (unless it keeps records), tried for up to SHUTDOWN_DRAIN_MS;
   *   - an upstream whose settings changed first has, through its old
   *     settings, the records removed that it published differently before
   *     (an address now excluded, a PTR whose reverse zone changed or went);
   *     the old PTRs of a reverse zone no longer configured are reachable
   *     only that way (their forward records go too, for the moment until
   *     the step below adds them back);
   *   - a new or changed upstream then receives every live record (adds
   *     carry the new `record-ttl`), and the addresses now excluded are
   *     removed through its outbox (journaled and retried).
   * An upstream whose settings stayed the same is left alone.
   */
  async reconfigure(config: ZoneConfig, upstreams: readonly Upstream[]): Promise<void> {
    const oldList = this.upstreamList;
    const before = new Map(oldList.map((u, i) => [u.description, { upstream: u, config: this.config.upstreams[i] }]));
    const live = this.allLiveRecords();
    const resync = new Map<string, AddrRecord[]>();
    const takeBacks: Array<Promise<void>> = [];
    upstreams.forEach((u, i) => {
      const was = before.get(u.description);
      const now = config.upstreams[i];
      if (was === undefined) {
        resync.set(u.description, []);
        return;
      }
      if (was.config === undefined || now === undefined || isDeepStrictEqual(was.config, now)) return;
      const old = was.config;
      const published = live.filter((r) => isForwarded(r, old));
      resync.set(
        u.description,
        published.filter((r) => !isForwarded(r, now)),
      );
      // A PTR that moves to another reverse zone, or to none, goes first (the new settings cannot reach the old zone).
      const ptrMoves = (r: AddrRecord): boolean => {
        const before = reverseZoneFor(r.address, old.reverseZones);
        return before !== undefined && before !== reverseZoneFor(r.address, now.reverseZones);
      };
      const takeBack = published.filter((r) => !isForwarded(r, now) || ptrMoves(r));
      if (takeBack.length > 0 && was.upstream.local !== true) {
        takeBacks.push(
          was.upstream.apply({ add: [], remove: takeBack, removeNames: [] }).catch((err: unknown) => {
            this.logger.warn({ upstream: u.description, records: takeBack.length, err }, 'cannot remove what the old settings published; the records not published any more are still removed');
          }),
        );
      }
    });
    await Promise.all(takeBacks);
    this.config = config;
    const gone = this.replaceUpstreams(upstreams);
    await Promise.all(
      gone.map(async (box) => {
        if (!box.upstream.keepRecords && live.length > 0) {
          await box.submit({ add: [], remove: live, removeNames: [] }, { request: false });
          const done = await box.drain(SHUTDOWN_DRAIN_MS);
          this.logger.info({ upstream: box.id, count: live.length, ok: done }, 'records removed from an upstream no longer configured');
        }
        this.dropOutbox(box);
      }),
    );
    await Promise.allSettled(oldList.map((u) => u.close()));
    await this.start();
    const current = this.allLiveRecords();
    await Promise.all(
      this.outboxes.flatMap((box, i) => {
        const excluded = resync.get(box.id);
        if (excluded === undefined) return [];
        // An add and a removal of one record collapse in the outbox: the excluded ones are only removed.
        const now = config.upstreams[i];
        const add = now === undefined ? current : current.filter((r) => isForwarded(r, now));
        this.logger.info({ upstream: box.id, records: add.length }, 'sending the live records to a new or changed upstream');
        return [box.submit({ add, remove: excluded, removeNames: [] }, { request: false })];
      }),
    );
  }

  /**
   * Puts back records and operations loaded from the state file (start-up).
   * A record, or a pending add, of a name that has no confirmed key — a
   * claim interrupted by a crash before it was confirmed — is not restored
   * but removed upstream: a crash leaves a claim with its records, or
   * neither. A record withdrawn at a clean stop is installed again by
   * start() on every upstream that does not keep records, unless its
   * deadline or its key's has passed meanwhile: then it is dropped (it was
   * removed at the stop already).
   */
  restore(records: ReadonlyArray<{ record: AddrRecord; expiresAt: number; withdrawn?: boolean }>, ops: ReadonlyMap<string, readonly Op[]>): void {
    const orphans = new Map<string, AddrRecord>();
    const now = this.clock.now();
    let restored = 0;
    let lapsed = 0;
    for (const { record, expiresAt, withdrawn } of records) {
      const key = this.keys.get(record.name);
      if (withdrawn === true && (expiresAt <= now || (key !== undefined && key.expiry <= now))) {
        this.state?.recordRemoved(record);
        lapsed++;
      } else if (key === undefined) {
        orphans.set(recordKey(record), record);
        this.state?.recordRemoved(record);
      } else {
        this.cache.upsert(record, expiresAt);
        if (withdrawn === true) this.withdrawnAtStop.push(record);
        restored++;
      }
    }
    if (lapsed > 0) this.logger.info({ records: lapsed }, 'records withdrawn at the last stop have lapsed since; dropped');
    const unclaimed = (op: Op): boolean => op.kind === 'add' && op.record !== undefined && this.keys.get(op.record.name) === undefined;
    // The stop's removal of a record start() installs again is superseded by
    // that add: sending it first would make the name vanish for a moment.
    const reinstalled = new Set(this.withdrawnAtStop.map(recordKey));
    const superseded = (op: Op): boolean => op.kind === 'remove' && op.record !== undefined && reinstalled.has(recordKey(op.record));
    for (const box of this.outboxes) {
      // A pending add of an unconfirmed claim is sent as the removal it must become.
      box.restore((ops.get(box.id) ?? []).filter((op) => !superseded(op)).map((op) => (unclaimed(op) ? { ...op, kind: 'remove' as const } : op)));
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
    const ttlBefore = this.cache.recordsOf(r.name).find((x) => x.type === r.type && x.address === r.address)?.ttl;
    this.cache.upsert(r, expiresAt);
    this.state?.recordInstalled(r, expiresAt, ttlBefore === r.ttl);
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
      const unused = await checkUnused(this.upstreamList, name, this.logger);
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
      this.counters.claims++;
    } else {
      this.keys.refresh(name, plan.keyExpiry);
    }
    this.scheduleExpiry();
    return { ok: true };
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
  withNameLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(name, fn);
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

  /** Claimed names. */
  get keyCount(): number {
    return this.keys.size;
  }

  /** Live records. */
  get recordCount(): number {
    return this.cache.size;
  }

  /** Every claimed name's key (the control channel). */
  claims(): Iterable<ClaimedKey> {
    return this.keys.claimedKeys();
  }

  /** A name's live records with their deadlines (ms), and for each upstream whether the record is installed there or still pending. */
  recordStates(name: string): Array<{ record: AddrRecord; expiresAt: number; upstreams: Array<{ upstream: string; pending: boolean }> }> {
    return this.cache.recordsOf(name).map((record) => ({
      record,
      expiresAt: this.cache.get(record)?.expiresAt ?? NaN,
      upstreams: this.outboxes.map((b) => ({ upstream: b.id, pending: b.isPending(record) })),
    }));
  }

  /** Each upstream's health and queue (the control channel's status). */
  upstreamStates(): Array<{ upstream: string; failing: boolean; pending: number; oldestPendingMs: number }> {
    const now = this.clock.now();
    return this.outboxes.map((b) => ({ upstream: b.id, failing: b.failing, pending: b.pendingCount, oldestPendingMs: b.oldestPendingMs(now) }));
  }

  /** Tells `observer` of every attempt to apply a batch upstream, now and after reloads (metrics). */
  observeAttempts(observer: AttemptObserver): void {
    this.attemptObserver = observer;
    for (const b of this.outboxes) b.onAttempt = observer;
  }

  /**
   * An operator frees `name` (`nsregd names release`, for a lost key or a
   * retired host): its key is forgotten, durably before this resolves, so
   * the next claim is a new first claim. Unless `keepRecords`, its records
   * leave the cache and are removed from every upstream as at key expiry
   * (through the outboxes, journaled first; keep-records upstreams keep
   * theirs). With `keepRecords` they stay published until their own
   * deadlines, a new owner's update, or the next start of the daemon,
   * which removes records of names without a key (restore()).
   * Returns the records removed and whether every upstream applied the
   * removal at its first attempt (otherwise it waits in the outbox and is
   * retried), or null when the name has no key.
   */
  async release(name: string, keepRecords: boolean): Promise<{ records: AddrRecord[]; applied: boolean } | null> {
    return this.withNameLock(name, async () => {
      if (!this.keys.remove(name)) return null;
      this.counters.releases++;
      await this.keys.flush();
      this.logger.info({ name, keepRecords }, 'name released by the operator');
      if (keepRecords) return { records: [], applied: true };
      const addresses = this.cache.removeName(name);
      for (const r of addresses) this.state?.recordRemoved(r);
      this.scheduleExpiry();
      const outcome = await this.forward({ add: [], remove: [], removeNames: [{ name, addresses }] }, { skipKeepRecords: true });
      return { records: addresses, applied: outcome.ok };
    });
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
    this.counters.recordExpiries += records.length;
    this.counters.keyExpiries += keys.length;
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
        this.logger.error({ upstream: u.description, err }, 'upstream start failed');
      }
    }
    await this.runExpiry();
    this.reinstallWithdrawn();
  }

  /**
   * Sends the records withdrawn at the last clean stop (and still live) to
   * every upstream that does not keep records. Start-up does not wait for
   * an upstream that is down: the outboxes retry.
   */
  private reinstallWithdrawn(): void {
    const again = this.withdrawnAtStop.filter((r) => this.cache.has(r));
    this.withdrawnAtStop = [];
    if (again.length === 0) return;
    this.logger.info({ records: again.length }, 'installing again the records withdrawn at the last stop');
    this.reinstalling = this.forward({ add: again, remove: [], removeNames: [] }, { skipKeepRecords: true }).then(() => {
      // The adds are journaled now; the records are ordinary installed ones again.
      const deadlines = new Map(this.cache.all().map((c) => [recordKey(c.record), c.expiresAt]));
      for (const r of again) {
        const at = deadlines.get(recordKey(r));
        if (at !== undefined) this.state?.recordInstalled(r, at);
      }
    });
  }

  /**
   * Shuts the zone down: every cached record is removed from the upstreams
   * that do not keep records (the original removed them even then), so a
   * daemon stopped for good leaves nothing behind; what an upstream does
   * not take within SHUTDOWN_DRAIN_MS stays in the state file and is sent
   * at the next start. The records stay in the state file, marked
   * withdrawn with their deadlines, so a restart within their TTL publishes
   * them again (restore()). Then the key database and state are written
   * and upstreams closed.
   */
  async shutdown(): Promise<void> {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    await this.restoring;
    await this.reinstalling;
    const live = this.cache.all();
    for (const { record, expiresAt } of live) this.state?.recordWithdrawn(record, expiresAt);
    const records = live.map((c) => c.record);
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

/**
 * Before a first claim: asks every upstream that protects names in use
 * (nsupdate `protect-existing`). Undefined when the name may be claimed.
 * Nothing is stored or sent before this, so a refusal leaves no trace.
 */
export async function checkUnused(upstreams: readonly Upstream[], name: string, logger: Logger): Promise<'in-use' | 'upstream' | undefined> {
  const asked = upstreams.filter((u) => u.checkUnused !== undefined);
  const results = await Promise.allSettled(asked.map((u) => u.checkUnused?.(name) ?? Promise.resolve()));
  let outcome: 'in-use' | 'upstream' | undefined;
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') return;
    const upstream = asked[i]?.description;
    if (r.reason instanceof NameInUseError) {
      logger.info({ name, upstream }, 'claim refused: the name holds records nsregd did not put there');
      outcome = 'in-use';
    } else {
      logger.warn({ name, upstream, err: r.reason }, 'cannot tell whether the name is in use upstream');
      outcome ??= 'upstream';
    }
  });
  return outcome;
}

let localSeq = 0;
function nextLocalSeq(): number {
  return ++localSeq;
}
