/**
 * A served zone whose claims and records live in etcd, shared by every
 * daemon of a site (README, "Several daemons as one service").
 *
 * Request path (any daemon): the handler decides as it does for a zone in
 * files, reading the claim from this daemon's mirror of the store; the
 * zone then makes the change one etcd transaction:
 *   - a first claim writes `keys/<name>` only if it is absent (create
 *     revision 0): of two daemons taking claims of one name by different
 *     keys at the same moment, exactly one transaction succeeds;
 *   - any other update compares the create revision of `keys/<name>` with
 *     the one the mirror holds (the same claim: not released and claimed
 *     again by another key) and the mod revision of `until/<name>` with the
 *     one this daemon last wrote or read. Every transaction that changes a
 *     name writes `until/<name>` (its deadlines move on), so this compare
 *     catches any change to the name made elsewhere. The mirrors do not
 *     hold `until/`: a daemon knows the deadlines of the names it wrote or
 *     read itself (a bounded cache); for any other name its first attempt
 *     fails the compare and reads them. On a failed compare the name is
 *     read again and the update recomputed (a bounded number of times);
 *   - the replay check across daemons (a signature older than the newest
 *     accepted for the name is refused) reads the newest inception from
 *     the same `until/<name>`: a stale one fails the compare, so the check
 *     is made again against what the store holds;
 *   - a refresh that only moves deadlines writes `until/<name>` alone, which
 *     no other daemon's mirror receives; records new to the name or whose
 *     TTL changed are written under `recs/`;
 *   - records added or removed are queued for the publisher in the same
 *     transaction (`changes/<id>`), and the client is answered NOERROR only
 *     once the publisher reports its first attempt succeeded — the promise
 *     a zone in files makes. A refresh that only moves deadlines needs no
 *     publisher and is answered once the transaction commits.
 * The publisher (./publisher.ts, one daemon per zone, elected) applies the
 * queued changes to the upstreams that every daemon shares (nsupdate) and
 * expires what is due. Upstreams that live on each daemon's own host (the
 * built-in zone server, Unbound) are fed by every daemon from its mirror.
 */
import type { Logger } from 'pino';
import type { MultiRangeBuilder, Namespace, SingleRangeBuilder } from 'etcd3';
import type { ZoneConfig } from '../../config/daemon.js';
import type { Clock } from '../../clock.js';
import { keyTag, sameKey } from '../../dns/keys.js';
import { StoredKey } from '../keydb/stored-key.js';
import { NameLocks } from '../name-locks.js';
import { Outbox, type AttemptObserver } from '../outbox.js';
import { isEmptyChange, recordKey, type AddrRecord, type UpstreamChange } from '../records.js';
import type { Upstream } from '../upstreams/upstream.js';
import { checkUnused, SHUTDOWN_DRAIN_MS, type ClaimedKey, type ServedZone, type UpdatePlan, type UpdateResult, type ZoneCounters } from '../zone.js';
import type { Election, SharedStore, StoredClaim, StoredDeadlines, ZoneMirror } from './contract.js';
import { ResponseTooLargeError, StoreUnavailableError } from './errors.js';
import * as layout from './layout.js';
import { earliestDeadline } from './deadlines.js';
import { Publisher } from './publisher.js';
import { Refusals } from '../refusals.js';
import { TxnBatcher, type NameCompare } from './batch.js';
import { TokenBuckets } from '../../net/token-bucket.js';
import type { IKeyValue } from 'etcd3';

/** How often an update is recomputed after another daemon changed the name meanwhile. */
const MAX_ATTEMPTS = 3;
/** How long a request waits for the publisher's first attempt at its change. */
export const PUBLISH_WAIT_MS = 8_000;
/** Names whose deadlines a daemon remembers (beyond, the least recently written or read go: their next update reads them again). */
const MAX_KNOWN_DEADLINES = 65_536;
/**
 * Reads of a claim a request's key does not match (refreshClaim), per
 * second and at once, the whole zone together. They come before any
 * signature check, so anyone may ask for them; beyond this the mirror's
 * view stands, which is stale only for the moment a watch event takes.
 */
export const CLAIM_REREADS_PER_SECOND = 20;
export const CLAIM_REREADS_BURST = 40;

/**
 * What this daemon knows of a name's `until/<name>`: its mod revision
 * ('0': absent) and value (undefined when absent, or present but not
 * decodable — reported, and replaced by the next update).
 */
interface KnownDeadlines {
  readonly mod: string;
  readonly value: StoredDeadlines | undefined;
}

const ABSENT: KnownDeadlines = { mod: '0', value: undefined };

/** Upstreams every daemon feeds itself: they live on the daemon's own host. */
export function isPerHost(u: Upstream): boolean {
  return u.perHost === true;
}

export interface SharedZoneDeps {
  readonly store: SharedStore;
  readonly mirror: ZoneMirror;
  readonly election: Election;
  /** This daemon's instance id (logs, the changes it queues). */
  readonly instanceId: string;
}

export class SharedZone implements ServedZone {
  readonly counters: ZoneCounters = { claims: 0, releases: 0, keyExpiries: 0, recordExpiries: 0 };
  private readonly locks = new NameLocks();
  private readonly ns: Namespace;
  private readonly mirror: ZoneMirror;
  private upstreamList: readonly Upstream[] = [];
  /** Outboxes of the per-host upstreams (fed from the mirror, no journal: the store is the record). */
  private perHost: Outbox[] = [];
  private readonly publisher: Publisher;
  /** Request transactions go to etcd together (./batch.ts). */
  private readonly batcher: TxnBatcher;
  /** The deadlines this daemon last wrote or read, by name, least recently used first (bounded). */
  private readonly known = new Map<string, KnownDeadlines>();
  /** refreshClaim's reads under way, by name (callers for one name share one). */
  private readonly claimReads = new Map<string, Promise<void>>();
  /** refreshClaim's reads allowed (one bucket for the zone). */
  private readonly claimRereads = new TokenBuckets({ perSecond: CLAIM_REREADS_PER_SECOND, burst: CLAIM_REREADS_BURST, maxKeys: 1 });
  /** Requests waiting for the publisher's first attempt at a change, by change id (several may wait for one). */
  private readonly waiting = new Map<string, { readonly result: Promise<boolean>; readonly settle: (ok: boolean) => void }>();
  private unsubscribe: Array<() => void> = [];
  private attemptObserver: AttemptObserver | undefined;
  private closed = false;

  constructor(
    public config: ZoneConfig,
    private readonly deps: SharedZoneDeps,
    upstreams: readonly Upstream[],
    public logger: Logger,
    readonly clock: Clock,
  ) {
    this.ns = deps.store.zoneNamespace(config.name);
    this.mirror = deps.mirror;
    this.batcher = new TxnBatcher(this.ns, (what, op) => deps.store.run(what, op));
    this.publisher = new Publisher({
      ns: this.ns,
      store: deps.store,
      mirror: deps.mirror,
      election: deps.election,
      instanceId: deps.instanceId,
      logger,
      clock,
      counters: this.counters,
      ownResult: (id, ok) => this.waiting.get(id)?.settle(ok),
    });
    this.setUpstreams(upstreams);
  }

  get name(): string {
    return this.config.name;
  }

  get upstreams(): readonly Upstream[] {
    return this.upstreamList;
  }

  private setUpstreams(list: readonly Upstream[]): void {
    for (const b of this.perHost) b.close();
    this.upstreamList = list;
    this.perHost = list.filter(isPerHost).map((u) => {
      const box = new Outbox(u, this.clock, this.logger);
      box.onAttempt = this.attemptObserver;
      return box;
    });
    this.publisher.setUpstreams(list.filter((u) => !isPerHost(u)), this.attemptObserver);
  }

  // ---- reading: this daemon's mirror of the store ----

  keyOf(name: string): ClaimedKey | undefined {
    const c = this.mirror.claim(name);
    return c === undefined ? undefined : claimedKey(name, c.value, this.deadlinesOf(name)?.value?.expiry);
  }

  /**
   * The newest of what this daemon wrote or read of `until/<name>`, and
   * what the publisher's deadline mirror holds (when this daemon publishes
   * and its zone mirror has seen that revision, so that the records it
   * holds for the name are not older than these deadlines).
   */
  private deadlinesOf(name: string): KnownDeadlines | undefined {
    const cached = this.known.get(name);
    const seen = this.publisher.deadlines(name);
    if (seen === undefined) return cached;
    const mod = BigInt(seen.modRevision);
    if (mod > BigInt(this.mirror.revision) || (cached !== undefined && BigInt(cached.mod) >= mod)) return cached;
    return { mod: seen.modRevision, value: seen.value };
  }

  /** Notes what this daemon wrote or read of `until/<name>` at `revision`, and tells the publisher (when this daemon is it). */
  private remember(name: string, d: KnownDeadlines, revision: string): void {
    this.known.delete(name);
    this.known.set(name, d);
    if (this.known.size > MAX_KNOWN_DEADLINES) this.known.delete(this.known.keys().next().value as string);
    if (d.value !== undefined || d === ABSENT) this.publisher.noteDeadlines(name, d === ABSENT ? revision : d.mod, d.value);
  }

  /** Notes what a read of `name` at `revision` found under `until/<name>` (its absence included). */
  private rememberRead(name: string, revision: string, kvs: readonly IKeyValue[]): void {
    const full = layout.fullKey(this.ns, layout.deadlinesKey(name));
    const kv = kvs.find((k) => k.key.equals(full));
    if (kv === undefined) {
      this.remember(name, ABSENT, revision);
      return;
    }
    const d = layout.decodeDeadlines(kv.value);
    if (!d.ok) this.logger.warn({ name, reason: d.reason }, 'deadlines in etcd do not decode; the next update replaces them');
    this.remember(name, { mod: kv.mod_revision, value: d.ok ? d.value : undefined }, revision);
  }

  liveRecords(name: string): readonly AddrRecord[] {
    return this.mirror.records(name).map((r) => r.record);
  }

  allLiveRecords(): readonly AddrRecord[] {
    return this.mirror.allRecords().map((r) => r.record);
  }

  get keyCount(): number {
    return this.mirror.claimCount;
  }

  get publishing(): boolean {
    return this.publisher.isActive;
  }

  get recordCount(): number {
    return this.mirror.recordCount;
  }

  *claims(): Iterable<ClaimedKey> {
    for (const [name, c] of this.mirror.claims()) yield claimedKey(name, c.value, this.deadlinesOf(name)?.value?.expiry);
  }

  recordStates(name: string): Array<{ record: AddrRecord; expiresAt: number; upstreams: Array<{ upstream: string; pending: boolean }> }> {
    const queued = new Set(this.mirror.changes().flatMap(({ entry }) => changedRecords(entry.value.change).map(recordKey)));
    const deadlines = this.deadlinesOf(name)?.value?.records;
    return this.mirror.records(name).map(({ record }) => ({
      record,
      // Unknown here (NaN) when this daemon neither wrote nor read the name's deadlines.
      expiresAt: deadlines?.get(layout.recordSlot(record)) ?? NaN,
      upstreams: [
        ...this.publisher.upstreamIds().map((upstream) => ({ upstream, pending: queued.has(recordKey(record)) })),
        ...this.perHost.map((b) => ({ upstream: b.id, pending: b.isPending(record) })),
      ],
    }));
  }

  upstreamStates(): Array<{ upstream: string; failing: boolean; pending: number; oldestPendingMs: number }> {
    const now = this.clock.now();
    return [...this.publisher.upstreamStates(now), ...this.perHost.map((b) => ({ upstream: b.id, failing: b.failing, pending: b.pendingCount, oldestPendingMs: b.oldestPendingMs(now) }))];
  }

  observeAttempts(observer: AttemptObserver): void {
    this.attemptObserver = observer;
    for (const b of this.perHost) b.onAttempt = observer;
    this.publisher.observeAttempts(observer);
  }

  withNameLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(name, fn);
  }

  // ---- writing ----

  /**
   * Carries out an accepted update as one transaction (see the file's
   * comment), then waits for the publisher when records changed. Call under
   * withNameLock(plan.name).
   */
  async applyUpdate(plan: UpdatePlan, now: number): Promise<UpdateResult> {
    try {
      return await this.applyShared(plan, now);
    } catch (err) {
      // Too large an answer (values written from outside under this name) fails this request alone, the same way.
      if (!(err instanceof StoreUnavailableError || err instanceof ResponseTooLargeError)) throw err;
      this.logger.warn({ name: plan.name, err }, 'shared store unavailable: update not applied');
      return { ok: false, failure: 'store-unavailable' };
    }
  }

  private async applyShared(plan: UpdatePlan, now: number): Promise<UpdateResult> {
    const { name } = plan;
    let checkedUnused = false;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = this.mirror.claim(name);
      const known = this.deadlinesOf(name);
      let first: boolean;
      if (current === undefined) {
        // Only a request that was checked as a first claim may create the name.
        if (plan.newKey === undefined) return { ok: false, failure: 'changed' };
        first = true;
      } else {
        if (!sameKey(current.value.rdata, plan.signer)) return { ok: false, failure: 'exists' };
        const newest = known?.value?.signedAt;
        if (plan.signedAt !== undefined && newest !== undefined && plan.signedAt < newest) return { ok: false, failure: 'replayed' };
        first = false;
      }
      if (first && !checkedUnused) {
        const unused = await checkUnused(this.upstreamList, name, this.logger);
        // The records may be those of a claim another daemon has just made: then that claim decides.
        if (unused === 'in-use' && (await this.claimedInStore(name))) continue;
        if (unused !== undefined) return { ok: false, failure: unused };
        checkedUnused = true;
      }
      const change = this.changeFor(plan);
      const pending = this.queuedAddsOf(plan);
      // Only the upstreams every daemon shares wait for the publisher; per-host ones follow the mirror.
      const id = isEmptyChange(change) || !this.publisher.hasUpstreams ? undefined : layout.newChangeId();
      const before = first ? undefined : known?.value;
      const signedAt = Math.max(plan.signedAt ?? 0, before?.signedAt ?? 0);
      const removed = [...change.remove, ...change.removeNames.flatMap((n) => n.addresses)];
      const deadlines = this.deadlinesAfter(plan, first, before, removed, now);
      const until: StoredDeadlines = { expiry: plan.keyExpiry, ...(signedAt > 0 ? { signedAt } : {}), records: deadlines };
      const puts: Array<[string, string]> = [];
      if (first) puts.push([layout.claimKey(name), layout.encodeClaim({ rdata: plan.signer, keyTag: keyTag(plan.signer) })]);
      // A record already stored with its TTL is not written again: its deadline is in until/<name>.
      const ttls = new Map(this.mirror.records(name).map(({ record }) => [layout.recordSlot(record), record.ttl]));
      for (const r of plan.adds) if (first || ttls.get(layout.recordSlot(r)) !== r.ttl) puts.push([layout.recordPath(r), layout.encodeRecord({ ttl: r.ttl })]);
      const deletes = removed.map((r) => layout.recordPath(r));
      if (id !== undefined) puts.push([layout.changeKey(id), layout.encodeChange({ change, by: this.deps.instanceId, at: now })]);
      if (!isEmptyChange(change)) puts.push([layout.SERIAL_KEY, this.serialValue()]);
      // The publisher learns deadlines lazily (./deadlines.ts): one moved earlier by a write that no mirror
      // would report (only until/<name> written) comes with the claim written again, which they do report.
      const reported = deletes.length > 0 || puts.some(([k]) => k.startsWith(layout.RECS_PREFIX));
      if (!first && !reported && (before === undefined || earliestDeadline(until) < earliestDeadline(before))) puts.push([layout.claimKey(name), layout.encodeClaim(current!.value)]);
      const committed = await this.transact(name, this.comparesFor(name, first ? undefined : current!.createRevision, known), puts, deletes, until);
      if (!committed) continue;
      const [ok, ...earlier] = await Promise.all([id === undefined ? true : this.published(id), ...pending.map((p) => this.published(p))]);
      if (!ok) {
        await this.takeBack(name, first, change.add);
        return { ok: false, failure: 'upstream' };
      }
      // A record of this update that an earlier change is still adding is not published yet either.
      if (!earlier.every(Boolean)) return { ok: false, failure: 'upstream' };
      if (first) this.counters.claims++;
      return { ok: true };
    }
    this.logger.info({ name }, 'update given up: the name kept changing at other daemons');
    return { ok: false, failure: 'changed' };
  }

  /**
   * Each record's deadline after an update: the records the name keeps
   * keep theirs (one whose deadline is unknown, which only a damaged
   * until/ entry leaves, is due at once), the removed ones go, and the
   * records the update carries run from now for their TTL.
   */
  private deadlinesAfter(plan: UpdatePlan, first: boolean, before: StoredDeadlines | undefined, removed: readonly AddrRecord[], now: number): Map<string, number> {
    const out = new Map<string, number>();
    if (!first) for (const { record } of this.mirror.records(plan.name)) out.set(layout.recordSlot(record), before?.records.get(layout.recordSlot(record)) ?? now);
    for (const r of removed) out.delete(layout.recordSlot(r));
    for (const r of plan.adds) out.set(layout.recordSlot(r), now + r.ttl * 1000);
    return out;
  }

  /**
   * The compares of a transaction on `name`: a first claim, that the name
   * is not claimed; otherwise that the claim is the one of create revision
   * `claimed`, and `until/<name>` is as this daemon knows it (absent when
   * it knows nothing: then the compare fails unless it is, and the
   * transaction reads it back).
   */
  private comparesFor(name: string, claimed: string | undefined, known: KnownDeadlines | undefined): NameCompare[] {
    if (claimed === undefined) return [{ key: layout.claimKey(name), target: 'Create', revision: '0' }];
    return [
      { key: layout.claimKey(name), target: 'Create', revision: claimed },
      { key: layout.deadlinesKey(name), target: 'Mod', revision: known?.mod ?? '0' },
    ];
  }

  /** The change for the upstreams: records new to the name, and every record the update removes. */
  private changeFor(plan: UpdatePlan): UpstreamChange {
    const have = this.mirror.records(plan.name).map((r) => r.record);
    const known = new Set(have.map(recordKey));
    // As in a zone in files: a record already installed only moves its deadline.
    const add = plan.adds.filter((r) => !known.has(recordKey(r)));
    const removes = new Map(plan.removes.filter((r) => known.has(recordKey(r))).map((r) => [recordKey(r), r]));
    for (const r of have) if (plan.removeAll || plan.removeTypes.includes(r.type)) removes.set(recordKey(r), r);
    const removed = [...removes.values()];
    if (plan.removeAll && removed.length > 0) return { add, remove: [], removeNames: [{ name: plan.name, addresses: removed }] };
    return { add, remove: removed, removeNames: [] };
  }

  /**
   * The queued changes that add a record this update carries and the name
   * already holds: such a record is not published until its change is
   * applied (a publisher that died before applying it left it queued, or
   * one is applying it now), so the reply waits for those changes too —
   * a client whose claim went unanswered and who retries at another
   * daemon hears NOERROR only once named serves its records.
   */
  private queuedAddsOf(plan: UpdatePlan): string[] {
    if (!this.publisher.hasUpstreams || plan.adds.length === 0) return [];
    const known = new Set(this.mirror.records(plan.name).map((r) => recordKey(r.record)));
    const carried = new Set(plan.adds.map(recordKey).filter((k) => known.has(k)));
    if (carried.size === 0) return [];
    return this.mirror
      .changes()
      .filter(({ entry }) => entry.value.change.add.some((r) => carried.has(recordKey(r))))
      .map(({ id }) => id);
  }

  /** The value every transaction that changes published data writes to `serial` (the zone's serial base). */
  private serialValue(): string {
    return this.mirror.serialBase;
  }

  /**
   * One transaction for one name: the compares, then the puts and deletes,
   * and `until/<name>` written (or deleted). Returns false when a compare
   * failed (the name is read again into the mirror and the known deadlines
   * first).
   */
  private async transact(
    name: string,
    compares: readonly NameCompare[],
    puts: ReadonlyArray<[string, string]>,
    deletes: readonly string[],
    until: StoredDeadlines | 'delete',
  ): Promise<boolean> {
    const untilKey = layout.deadlinesKey(name);
    const res = await this.batcher.submit({
      compares,
      puts: until === 'delete' ? puts : [...puts, [untilKey, layout.encodeDeadlines(until)]],
      deletes: until === 'delete' ? [...deletes, untilKey] : deletes,
      readBack: { keys: [layout.claimKey(name), untilKey], prefix: layout.recordsOfNamePrefix(name) },
    });
    // The deadlines first: the publisher (when this daemon is it) then needs no read when the mirror reports the name.
    if (res.succeeded) {
      this.remember(name, until === 'delete' ? ABSENT : { mod: res.revision, value: until }, res.revision);
      this.mirror.applyOwn(res.revision, { puts: puts.map(([key, value]) => ({ key, value })), deletes });
      return true;
    }
    this.rememberRead(name, res.revision, res.kvs);
    this.mirror.reloadName(name, res.revision, res.kvs);
    return false;
  }

  /**
   * Reads `name`'s claim again, for a request whose key the mirror's claim
   * does not match (the mirror may not have seen a release and a new claim
   * at another daemon yet). Bounded: one read per name at a time, shared by
   * every caller, and CLAIM_REREADS_PER_SECOND for the zone; beyond that
   * the mirror's view stands.
   */
  refreshClaim(name: string): Promise<void> {
    const under = this.claimReads.get(name);
    if (under !== undefined) return under;
    if (!this.claimRereads.take('', this.clock.now()).ok) return Promise.resolve();
    const read = this.claimedInStore(name).then(
      () => undefined,
      (err: unknown) => {
        throw err instanceof StoreUnavailableError || err instanceof ResponseTooLargeError ? Refusals.storeUnavailable() : err;
      },
    );
    const tracked = read.finally(() => this.claimReads.delete(name));
    this.claimReads.set(name, tracked);
    return tracked;
  }

  /**
   * Reads `name`'s claim, deadlines and records from the store (one read at
   * one revision) into the mirror; true when the name is claimed there. A
   * first claim whose name an upstream reports in use asks this, so that
   * the loser of two claims at two daemons hears that the name is another
   * key's, as at a single daemon, not that its records are someone else's.
   */
  private async claimedInStore(name: string): Promise<boolean> {
    const claimPath = layout.claimKey(name);
    const reads = (): [SingleRangeBuilder, SingleRangeBuilder, MultiRangeBuilder] => [
      this.ns.get(claimPath),
      this.ns.get(layout.deadlinesKey(name)),
      this.ns.getAll().prefix(layout.recordsOfNamePrefix(name)),
    ];
    const res = await this.deps.store.run('read', () =>
      this.ns
        .if(claimPath, 'Create', '==', '0')
        .then(...reads())
        .else(...reads())
        .commit(),
    );
    const kvs = res.responses.flatMap((r) => r.response_range?.kvs ?? []);
    this.rememberRead(name, res.header.revision, kvs);
    this.mirror.reloadName(name, res.header.revision, kvs);
    return this.mirror.claim(name) !== undefined;
  }

  /** Waits for the publisher's first attempt at change `id`: true when every shared upstream took it. */
  private published(id: string): Promise<boolean> {
    const known = this.mirror.result(id);
    if (known !== undefined) return Promise.resolve(known);
    const already = this.waiting.get(id);
    if (already !== undefined) return already.result;
    let settle: (ok: boolean) => void = () => undefined;
    const result = new Promise<boolean>((resolve) => {
      const timer = this.clock.schedule(PUBLISH_WAIT_MS, () => {
        this.logger.warn({ change: id, waitedMs: PUBLISH_WAIT_MS }, 'no publisher applied the change in time; it stays queued');
        settle(false);
      });
      settle = (ok) => {
        timer.cancel();
        this.waiting.delete(id);
        resolve(ok);
      };
    });
    this.waiting.set(id, { result, settle });
    return result;
  }

  /**
   * An update whose records an upstream did not take: nothing of it stays
   * visible — its new records go again (queued after it, so they leave the
   * upstreams that did take them), and a first claim is dropped. The
   * client heard SERVFAIL and retries. Skipped when the name changed again
   * meanwhile (that change decides).
   */
  private async takeBack(name: string, first: boolean, added: readonly AddrRecord[]): Promise<void> {
    const current = this.mirror.claim(name);
    const known = this.deadlinesOf(name);
    if (current === undefined || known?.value === undefined) return;
    const id = layout.newChangeId();
    const puts: Array<[string, string]> = [];
    const deletes = added.map((r) => layout.recordPath(r));
    if (first) deletes.push(layout.claimKey(name));
    const records = new Map(known.value.records);
    for (const r of added) records.delete(layout.recordSlot(r));
    if (added.length > 0) {
      puts.push([layout.changeKey(id), layout.encodeChange({ change: { add: [], remove: added, removeNames: [] }, by: this.deps.instanceId, at: this.clock.now() })]);
      puts.push([layout.SERIAL_KEY, this.serialValue()]);
    }
    try {
      await this.transact(name, this.comparesFor(name, current.createRevision, known), puts, deletes, first ? 'delete' : { ...known.value, records });
    } catch (err) {
      this.logger.warn({ name, err }, 'cannot take back an update the upstreams refused; the publisher applies it later');
    }
  }

  /**
   * An operator frees `name` (`nsregd names release`): the claim goes from
   * the store at once; unless `keepRecords`, its records go too and are
   * removed upstream by the publisher (upstreams that keep records keep
   * theirs).
   */
  async release(name: string, keepRecords: boolean): Promise<{ records: AddrRecord[]; applied: boolean } | null> {
    return this.withNameLock(name, async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const current = this.mirror.claim(name);
        if (current === undefined) return null;
        const records = keepRecords ? [] : this.mirror.records(name).map((r) => r.record);
        const id = layout.newChangeId();
        const puts: Array<[string, string]> = [];
        const deletes = [layout.claimKey(name), ...records.map((r) => layout.recordPath(r))];
        const publish = !keepRecords && this.publisher.hasUpstreams;
        if (publish) {
          const change: UpstreamChange = { add: [], remove: [], removeNames: [{ name, addresses: records }] };
          puts.push([layout.changeKey(id), layout.encodeChange({ change, by: this.deps.instanceId, at: this.clock.now(), skipKeepRecords: true })]);
        }
        if (records.length > 0) puts.push([layout.SERIAL_KEY, this.serialValue()]);
        const compares = this.comparesFor(name, current.createRevision, this.deadlinesOf(name));
        if (!(await this.transact(name, compares, puts, deletes, 'delete'))) continue;
        this.counters.releases++;
        this.logger.info({ name, keepRecords }, 'name released by the operator');
        return { records, applied: publish ? await this.published(id) : true };
      }
      throw new Error(`${name} kept changing at other daemons; try again`);
    });
  }

  // ---- life cycle ----

  /** Starts the upstreams, feeds the per-host ones from the mirror, and joins the publisher election. */
  async start(): Promise<void> {
    if (this.unsubscribe.length === 0) {
      this.unsubscribe.push(
        this.mirror.onEvent((e) => {
          for (const r of e.results) this.waiting.get(r.id)?.settle(r.ok);
          if (e.records.added.length > 0 || e.records.removed.length > 0) {
            const change: UpstreamChange = { add: e.records.added, remove: e.records.removed, removeNames: [] };
            for (const b of this.perHost) void b.submit(change, { request: false });
          }
          this.publisher.mirrorChanged(e);
        }),
      );
      this.unsubscribe.push(this.deps.election.onChange((leader) => this.publisher.leaderChanged(leader)));
    }
    await this.ensureSerialBase();
    for (const u of this.upstreamList) {
      try {
        await u.start();
      } catch (err) {
        this.logger.error({ upstream: u.description, err }, 'upstream start failed');
      }
    }
    if (this.deps.election.isLeader) this.publisher.leaderChanged(true);
  }

  /** The zone's SOA serial base is written once, by whichever daemon uses the zone first (./serial.ts). */
  private async ensureSerialBase(): Promise<void> {
    if (this.mirror.dataVersion !== '0') return;
    const base = String(Math.floor(this.clock.now() / 1000) >>> 0);
    const res = await this.deps.store.run('serial base', () =>
      this.ns.if(layout.SERIAL_KEY, 'Create', '==', 0).then(this.ns.put(layout.SERIAL_KEY).value(base)).commit(),
    );
    if (res.succeeded) this.mirror.applyOwn(res.header.revision, { puts: [{ key: layout.SERIAL_KEY, value: base }] });
  }

  /**
   * A reload changed the zone's settings: the new upstreams replace the
   * old, and the new ones receive every live record (per-host ones from
   * this daemon, shared ones from the publisher). Records stay on an
   * upstream no longer configured (other daemons of the site may still
   * run the old settings).
   */
  async reconfigure(config: ZoneConfig, upstreams: readonly Upstream[]): Promise<void> {
    const before = new Set(this.upstreamList.map((u) => u.description));
    const old = this.upstreamList;
    this.config = config;
    this.setUpstreams(upstreams);
    await Promise.allSettled(old.map((u) => u.close()));
    await this.start();
    const live = this.allLiveRecords();
    if (live.length === 0) return;
    for (const b of this.perHost) if (!before.has(b.id) && b.upstream.local !== true) void b.submit({ add: live, remove: [], removeNames: [] }, { request: false });
    this.publisher.resync((u) => !before.has(u.description));
  }

  /**
   * Stops this daemon's part: leaves the election (another daemon takes
   * over publishing at once), removes the live records from per-host
   * upstreams that do not keep records (they live on this host), and
   * closes the upstreams. The shared upstreams keep the records: the site
   * still serves them.
   */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    for (const w of [...this.waiting.values()]) w.settle(false);
    await this.deps.election.close();
    await this.publisher.stop();
    const live = this.allLiveRecords();
    const boxes = this.perHost.filter((b) => !b.upstream.keepRecords && b.upstream.local !== true);
    if (live.length > 0 && boxes.length > 0) {
      await Promise.all(boxes.map((b) => b.submit({ add: [], remove: live, removeNames: [] }, { request: false })));
      await Promise.all(boxes.map((b) => b.drain(SHUTDOWN_DRAIN_MS)));
    }
    for (const b of this.perHost) b.close();
    await Promise.allSettled(this.upstreamList.map((u) => u.close()));
  }
}

/** The claim as the handler and the control channel see it; its expiry NaN when this daemon does not know it. */
function claimedKey(name: string, c: StoredClaim, expiry: number | undefined): ClaimedKey {
  return new StoredKey(name, c.rdata, expiry ?? NaN, c.keyTag);
}

/** Every record a change adds or removes. */
export function changedRecords(c: UpstreamChange): AddrRecord[] {
  return [...c.add, ...c.remove, ...c.removeNames.flatMap((n) => n.addresses)];
}
