/**
 * The publisher of one zone on a shared store: the one daemon, elected
 * through etcd (./election.ts), that applies the queued changes to the
 * upstreams the daemons share (nsupdate) and expires claims and records
 * whose deadlines passed (README, "Several daemons as one service").
 *
 * Each term (from being elected to losing the lease, resigning or
 * stopping) starts by catching the mirror up with the store, then sends
 * every live record to every shared upstream (what a publisher that died
 * mid-way left undone is thereby done: adds are idempotent), then applies
 * the queued changes oldest first. A change's first attempt is reported
 * under `results/<id>` (the daemon whose client waits reads it); once
 * every upstream applied it, `changes/<id>` goes. A change still queued
 * when the publisher dies is applied again by the next one. Every write
 * the publisher makes is conditional on its leader key, so a publisher
 * cut off from the quorum can change nothing in the store.
 *
 * Deadlines live under until/, which no daemon watches (a refresh writes
 * nothing else, so it costs no other daemon anything): the publisher reads
 * them all when its term starts and learns of changes lazily
 * (./deadlines.ts) — a name whose claim or records changed elsewhere, or
 * whose known deadline came, is read again before anything is expired.
 */
import type { Logger } from 'pino';
import type { ComparatorBuilder, Lease, Namespace } from 'etcd3';
import type { Clock, TimerHandle } from '../../clock.js';
import { Outbox, type AttemptObserver } from '../outbox.js';
import { recordKey, type AddrRecord, type UpstreamChange } from '../records.js';
import type { Upstream } from '../upstreams/upstream.js';
import type { ZoneCounters } from '../zone.js';
import type { Election, MirrorEvent, OwnWrites, SharedStore, StoredChange, StoredDeadlines, Versioned, ZoneMirror } from './contract.js';
import { DeadlineSchedule, earliestDeadline } from './deadlines.js';
import * as layout from './layout.js';

/** How long results stay readable (s): far longer than a request waits for one. */
const RESULT_TTL_S = 30;
/** Expiry runs at most this often (ms); a deadline is acted on within this of passing. */
const SWEEP_MIN_MS = 250;
/** And at least this often. */
const SWEEP_MAX_MS = 5_000;
/** Names read again in one sweep (due, or changed elsewhere); more wait for the next sweep, SWEEP_MIN_MS later. */
const REREADS_PER_SWEEP = 4096;
/**
 * Records named one by one in an expiry transaction, so that with its other
 * operations it stays within the 128 etcd allows in one (--max-txn-ops).
 * Only an until/ entry written outside nsregd holds more (nsregd writes at
 * most 60 records a name): a claim's records beyond go by the prefix
 * delete (the mirror hears of them from the watch), a name's due records
 * beyond go in the next transactions.
 */
const RECORDS_PER_EXPIRY = 100;
/** How often changes that failed somewhere are checked for having been applied by a retry. */
const UNFINISHED_CHECK_MS = 1_000;
/** How long a new publisher waits for its mirror to reach its election before acting. */
const CATCH_UP_MS = 10_000;
/** After a failed write of results, the next try. */
const RETRY_WRITE_MS = 500;
/**
 * Outcomes written in one transaction: each is a result put and a change
 * delete, and etcd refuses more than 128 operations in one (its default
 * --max-txn-ops) — a larger batch would fail, and be tried again, forever.
 */
const OUTCOMES_PER_TXN = 64;

export interface PublisherDeps {
  readonly ns: Namespace;
  readonly store: SharedStore;
  readonly mirror: ZoneMirror;
  readonly election: Election;
  readonly instanceId: string;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly counters: ZoneCounters;
  /** Told at once of the first attempt at a change this daemon queued (its client need not wait for the result to travel through etcd). */
  readonly ownResult?: (id: string, ok: boolean) => void;
}

interface Outcome {
  readonly id: string;
  /** The first attempt's result, to be written under results/<id>; undefined when written already. */
  readonly ok?: boolean;
  /** Every upstream applied it: changes/<id> goes. */
  readonly done: boolean;
}

type Put = readonly [string, string];
type Compare = readonly [key: string, column: 'Create' | 'Mod', revision: string];

export class Publisher {
  private upstreams: readonly Upstream[] = [];
  private boxes: Outbox[] = [];
  private observer: AttemptObserver | undefined;
  private active = false;
  private term = 0;
  private readonly submitted = new Set<string>();
  private readonly unfinished = new Map<string, UpstreamChange>();
  private outcomes: Outcome[] = [];
  private writing = false;
  private resultsLease: Lease | undefined;
  private sweepTimer: TimerHandle | undefined;
  private sweeping = false;
  private checkTimer: TimerHandle | undefined;
  private writeTimer: TimerHandle | undefined;
  /** This term's deadlines: taking writes and changes from the term's start, loaded by its first sweep. */
  private schedule: DeadlineSchedule | undefined;
  private scheduleLoaded = false;

  constructor(private readonly deps: PublisherDeps) {}

  /** The shared upstreams (construction, reload); a running term moves to them at once. */
  setUpstreams(list: readonly Upstream[], observer: AttemptObserver | undefined): void {
    this.upstreams = list;
    this.observer = observer;
    if (!this.active) return;
    for (const b of this.boxes) b.close();
    this.boxes = this.makeBoxes();
  }

  observeAttempts(observer: AttemptObserver): void {
    this.observer = observer;
    for (const b of this.boxes) b.onAttempt = observer;
  }

  upstreamIds(): string[] {
    return this.upstreams.map((u) => u.description);
  }

  /** Each shared upstream's state as this daemon knows it (queued changes count for every daemon). */
  upstreamStates(now: number): Array<{ upstream: string; failing: boolean; pending: number; oldestPendingMs: number }> {
    const queued = this.deps.mirror.changes();
    const oldest = queued[0]?.entry.value.at;
    return this.upstreams.map((u) => {
      const box = this.boxes.find((b) => b.upstream === u);
      return {
        upstream: u.description,
        failing: box?.failing ?? false,
        pending: box?.pendingCount ?? queued.length,
        oldestPendingMs: box?.oldestPendingMs(now) ?? (oldest === undefined ? 0 : Math.max(0, now - oldest)),
      };
    });
  }

  /** Changes of this term not yet gone from the store (bounded by what is queued there). */
  get trackedChanges(): number {
    return this.submitted.size;
  }

  get isActive(): boolean {
    return this.active;
  }

  private makeBoxes(): Outbox[] {
    return this.upstreams.map((u) => {
      const box = new Outbox(u, this.deps.clock, this.deps.logger);
      box.onAttempt = this.observer;
      return box;
    });
  }

  leaderChanged(leader: boolean): void {
    if (leader && !this.active) void this.begin();
    else if (!leader && this.active) this.end('lost the publisher lease');
  }

  mirrorChanged(e: MirrorEvent): void {
    if (!this.active) return;
    // A change gone from the store is done with: its id need not be remembered for the rest of the term.
    for (const id of e.changes.deleted) this.submitted.delete(id);
    if (e.changes.put.length > 0) this.pump();
    // A name whose claim or records changed elsewhere has new deadlines: read them again soon.
    const schedule = this.schedule;
    if (schedule === undefined) return;
    let marked = false;
    const mark = (name: string): void => {
      if (schedule.changed(name, e.revision)) marked = true;
    };
    for (const name of e.claims.put) mark(name);
    for (const name of e.claims.deleted) mark(name);
    for (const r of e.records.added) mark(r.name);
    for (const r of e.records.removed) mark(r.name);
    if (marked) this.scheduleSweep(SWEEP_MIN_MS);
  }

  /** The deadlines of `name` as this term last read or wrote them (undefined when not publishing). */
  deadlines(name: string): Versioned<StoredDeadlines> | undefined {
    return this.active ? this.schedule?.deadlines(name) : undefined;
  }

  /**
   * This daemon wrote (or deleted: `value` undefined) `until/<name>` at
   * `revision`, or read it: the schedule takes it at once. Call before
   * applying the same write to the zone mirror, whose report of the name
   * then needs no read.
   */
  noteDeadlines(name: string, revision: string, value: StoredDeadlines | undefined): void {
    if (!this.active || this.schedule === undefined) return;
    this.schedule.note(name, revision, value);
    const due = value === undefined ? Infinity : earliestDeadline(value);
    if (due < this.sweepAt) this.scheduleSweep(Math.max(SWEEP_MIN_MS, due - this.deps.clock.now()));
  }

  /** This term's deadlines, loaded (once per term); undefined when the term ended meanwhile. */
  private async loadedSchedule(term: number): Promise<DeadlineSchedule | undefined> {
    const schedule = this.schedule;
    if (schedule === undefined) return undefined;
    if (!this.scheduleLoaded) {
      await schedule.load();
      if (!this.active || term !== this.term) return undefined;
      this.scheduleLoaded = true;
    }
    return schedule;
  }

  /** Sends every live record to the shared upstreams `which` selects (new after a reload). */
  resync(which: (u: Upstream) => boolean): void {
    if (!this.active) return;
    const live = this.deps.mirror.allRecords().map((r) => r.record);
    if (live.length === 0) return;
    for (const b of this.boxes) if (which(b.upstream)) void b.submit({ add: live, remove: [], removeNames: [] }, { request: false });
  }

  /** The lease results are written under; a lost one (the store was out of reach too long) is replaced. */
  private newResultsLease(): Lease {
    const lease = this.deps.ns.lease(RESULT_TTL_S, { autoKeepAlive: true });
    lease.on('lost', (err: Error) => {
      if (this.resultsLease !== lease) return;
      this.deps.logger.warn({ err }, 'publisher: results lease lost; taking a new one');
      this.resultsLease = this.active ? this.newResultsLease() : undefined;
    });
    return lease;
  }

  /** Whether the zone has upstreams the publisher feeds (otherwise requests need not wait for it). */
  get hasUpstreams(): boolean {
    return this.upstreams.length > 0;
  }

  private async begin(): Promise<void> {
    const { mirror, logger } = this.deps;
    this.active = true;
    const term = ++this.term;
    this.boxes = this.makeBoxes();
    this.submitted.clear();
    this.unfinished.clear();
    this.outcomes = [];
    this.resultsLease = this.newResultsLease();
    // From now on the schedule takes this daemon's writes and the changes the mirror reports; its load (the first sweep) adds the rest.
    const { ns, store } = this.deps;
    this.schedule = new DeadlineSchedule({ zone: mirror.zone, namespace: ns, run: (what, op) => store.run(what, op), logger });
    this.scheduleLoaded = false;
    try {
      // Whatever the last publisher did is in the store, before this daemon's election: act on all of it.
      const fence = this.deps.election.fence();
      if (fence !== undefined) await mirror.caughtUp(fence.createRevision, CATCH_UP_MS);
    } catch (err) {
      logger.warn({ err }, 'publisher: cannot catch up with the store; publishing what the mirror holds');
    }
    if (!this.active || term !== this.term) return;
    // Records a queued change adds are sent with it, in order, rather than twice.
    const queued = new Set(mirror.changes().flatMap(({ entry }) => entry.value.change.add.map(recordKey)));
    const live = mirror
      .allRecords()
      .map((r) => r.record)
      .filter((r) => !queued.has(recordKey(r)));
    logger.info({ records: live.length, queued: queued.size }, 'publishing for the zone (elected publisher)');
    if (live.length > 0) for (const b of this.boxes) void b.submit({ add: live, remove: [], removeNames: [] }, { request: false });
    this.pump();
    this.scheduleSweep(0);
  }

  private end(why: string): void {
    if (!this.active) return;
    this.active = false;
    this.term++;
    this.deps.logger.info({ why }, 'no longer publishing for the zone');
    for (const b of this.boxes) b.close();
    this.boxes = [];
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.checkTimer?.cancel();
    this.checkTimer = undefined;
    this.writeTimer?.cancel();
    this.writeTimer = undefined;
    // Results already written stay until their lease runs out; the next publisher writes its own.
    this.resultsLease?.release();
    this.resultsLease = undefined;
    this.schedule = undefined;
  }

  async stop(): Promise<void> {
    this.end('daemon stopping');
  }

  /** Queued changes not yet submitted this term go to the outboxes, oldest first. */
  private pump(): void {
    for (const { id, entry } of this.deps.mirror.changes()) {
      if (this.submitted.has(id)) continue;
      this.submitted.add(id);
      void this.process(id, entry.value, this.term);
    }
  }

  private async process(id: string, stored: StoredChange, term: number): Promise<void> {
    const targets = this.boxes.filter((b) => !(stored.skipKeepRecords === true && b.upstream.keepRecords));
    const results = await Promise.all(targets.map((b) => b.submit(stored.change, { request: true })));
    if (!this.active || term !== this.term) return;
    const ok = results.every(Boolean);
    if (stored.by === this.deps.instanceId) this.deps.ownResult?.(id, ok);
    if (!ok) {
      this.unfinished.set(id, stored.change);
      this.armUnfinishedCheck();
    }
    this.outcomes.push({ id, ok, done: ok });
    this.writeOutcomes();
  }

  private armUnfinishedCheck(): void {
    if (this.checkTimer !== undefined) return;
    this.checkTimer = this.deps.clock.schedule(UNFINISHED_CHECK_MS, () => {
      this.checkTimer = undefined;
      if (!this.active) return;
      for (const [id, change] of this.unfinished) {
        const records = [...change.add, ...change.remove, ...change.removeNames.flatMap((n) => n.addresses)];
        if (records.some((r) => this.boxes.some((b) => b.isPending(r)))) continue;
        this.unfinished.delete(id);
        this.outcomes.push({ id, done: true });
      }
      this.writeOutcomes();
      if (this.unfinished.size > 0) this.armUnfinishedCheck();
    });
  }

  /** Writes the outcomes gathered so far in one fenced transaction (one at a time; the next takes what came meanwhile). */
  private writeOutcomes(): void {
    if (this.writing || this.outcomes.length === 0 || !this.active) return;
    this.writing = true;
    const batch = this.outcomes.splice(0, OUTCOMES_PER_TXN);
    const lease = this.resultsLease;
    const puts: Put[] = [];
    const deletes: string[] = [];
    for (const o of batch) {
      if (o.ok !== undefined) puts.push([layout.resultKey(o.id), layout.encodeResult({ ok: o.ok })]);
      if (o.done) deletes.push(layout.changeKey(o.id));
    }
    const term = this.term;
    void this.commitFenced([], puts, deletes, lease).then(
      (committed) => {
        this.writing = false;
        if (this.term !== term) return;
        if (!committed) this.end('the leader key is gone');
        else this.writeOutcomes();
      },
      (err: unknown) => {
        this.writing = false;
        if (this.term !== term) return;
        // Tried again after a pause: a store without a leader refuses at once, and must not be asked in a loop.
        this.deps.logger.warn({ err, results: batch.length }, 'publisher: cannot write results; retrying');
        this.outcomes.unshift(...batch);
        this.writeTimer ??= this.deps.clock.schedule(RETRY_WRITE_MS, () => {
          this.writeTimer = undefined;
          this.writeOutcomes();
        });
      },
    );
  }

  /**
   * One transaction that holds only while this daemon is the publisher
   * (the leader key is the one it wrote) and the given compares hold.
   * False when a compare failed; rejects with StoreUnavailableError.
   */
  private async commitFenced(compares: readonly Compare[], puts: readonly Put[], deletes: readonly string[], lease?: Lease, deletePrefix?: string): Promise<boolean> {
    const fence = this.deps.election.fence();
    if (fence === undefined) return false;
    const { ns, store, mirror } = this.deps;
    const res = await store.run('publish', () => {
      let txn: ComparatorBuilder = ns.if(fence.key, 'Create', '==', fence.createRevision);
      for (const [key, column, revision] of compares) txn = txn.and(key, column, '==', revision);
      const ops = [
        ...puts.map(([k, v]) => (lease !== undefined && k.startsWith(layout.RESULTS_PREFIX) ? lease.put(k).value(v) : ns.put(k).value(v))),
        ...deletes.map((k) => ns.delete().key(k)),
        ...(deletePrefix === undefined ? [] : [ns.delete().prefix(deletePrefix)]),
      ];
      return txn.then(...ops).commit();
    });
    if (!res.succeeded) return false;
    const isDeadline = (k: string): boolean => k.startsWith(layout.DEADLINES_PREFIX);
    const nameOf = (k: string): string | undefined => {
      const key = layout.parseZoneKey(k);
      return key?.kind === 'deadlines' ? key.name : undefined;
    };
    const revision = res.header.revision;
    // The schedule first: the mirror's report of the same names then needs no read.
    for (const [k, v] of puts) {
      const name = nameOf(k);
      const d = name === undefined ? undefined : layout.decodeDeadlines(v);
      if (name !== undefined && d?.ok === true) this.schedule?.note(name, revision, d.value);
    }
    for (const k of deletes) {
      const name = nameOf(k);
      if (name !== undefined) this.schedule?.note(name, revision, undefined);
    }
    const own: OwnWrites = { puts: puts.filter(([k]) => !isDeadline(k)).map(([key, value]) => ({ key, value })), deletes: deletes.filter((k) => !isDeadline(k)) };
    mirror.applyOwn(revision, own);
    return true;
  }

  // ---- expiry ----

  private scheduleSweep(inMs: number): void {
    if (!this.active || this.sweeping) return;
    const at = this.deps.clock.now() + inMs;
    if (this.sweepTimer !== undefined && this.sweepAt <= at) return;
    this.sweepTimer?.cancel();
    this.sweepAt = at;
    this.sweepTimer = this.deps.clock.schedule(inMs, () => {
      this.sweepTimer = undefined;
      this.sweepAt = Infinity;
      void this.sweep();
    });
  }

  private sweepAt = Infinity;

  /**
   * Removes what is due: a claim whose deadline passed goes with all its
   * records (delete-name upstream, skipping upstreams that keep records);
   * a record whose deadline passed goes alone. A name due by what the
   * schedule holds is read again first (a refresh at another daemon may
   * have moved it on), as are names changed elsewhere; each name that is
   * still due is one fenced transaction that also compares the name's
   * until/ entry as read, so a refresh in the same moment wins (the next
   * sweep reads it again). A claim without an until/ entry (which only a
   * write from outside nsregd leaves) has no deadline and does not expire.
   */
  private async sweep(): Promise<void> {
    if (!this.active || this.sweeping) return;
    this.sweeping = true;
    const term = this.term;
    let next = Infinity;
    try {
      const schedule = await this.loadedSchedule(term);
      if (schedule === undefined) return;
      const read = await schedule.reread(schedule.scan(this.deps.clock.now()).due, REREADS_PER_SWEEP);
      if (this.term !== term) return;
      const now = this.deps.clock.now();
      let more = false;
      for (const name of read) {
        const d = schedule.deadlines(name);
        if (d === undefined) continue;
        if (d.value.expiry <= now) {
          await this.expireClaim(name, d, now);
        } else {
          const slots = [...d.value.records].filter(([, at]) => at <= now).map(([slot]) => slot);
          if (slots.length > 0 && (await this.expireRecords(name, d, slots, now))) more = true;
        }
        if (this.term !== term) return;
      }
      next = schedule.scan(now).next;
      // Names left to read (more than one sweep reads, or changed meanwhile) are read soon.
      if (schedule.changedCount > 0 || read.length >= REREADS_PER_SWEEP || more) next = Math.min(next, now + SWEEP_MIN_MS);
    } catch (err) {
      this.deps.logger.warn({ err }, 'publisher: expiry failed; trying again');
      next = this.deps.clock.now() + RETRY_WRITE_MS;
    } finally {
      this.sweeping = false;
    }
    if (this.term !== term) return;
    const wait = Math.min(Math.max(next - this.deps.clock.now(), SWEEP_MIN_MS), SWEEP_MAX_MS);
    this.scheduleSweep(wait);
  }

  /** The records of `name` the slots stand for, with the TTL the zone mirror holds (0 when it has none yet: removals ignore it). */
  private recordsOf(name: string, slots: Iterable<string>): AddrRecord[] {
    const held = new Map(this.deps.mirror.records(name).map(({ record }) => [layout.recordSlot(record), record]));
    const out: AddrRecord[] = [];
    for (const slot of slots) {
      const r = held.get(slot) ?? layout.slotRecord(name, slot, 0);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  private async expireClaim(name: string, d: Versioned<StoredDeadlines>, now: number): Promise<void> {
    // Every record the zone mirror or the deadlines know of; any other under recs/<name>/ goes by its prefix.
    const slots = new Set([...d.value.records.keys(), ...this.deps.mirror.records(name).map(({ record }) => layout.recordSlot(record))]);
    const addresses = this.recordsOf(name, slots);
    const change: StoredChange = { change: { add: [], remove: [], removeNames: [{ name, addresses }] }, by: this.deps.instanceId, at: now, skipKeepRecords: true };
    const id = layout.newChangeId();
    const ok = await this.commitFenced(
      [[layout.deadlinesKey(name), 'Mod', d.modRevision]],
      [
        [layout.changeKey(id), layout.encodeChange(change)],
        [layout.SERIAL_KEY, this.deps.mirror.serialBase],
      ],
      [layout.claimKey(name), layout.deadlinesKey(name), ...addresses.slice(0, RECORDS_PER_EXPIRY).map((r) => layout.recordPath(r))],
      undefined,
      layout.recordsOfNamePrefix(name),
    );
    if (!ok) return;
    this.deps.counters.keyExpiries++;
    this.deps.logger.info({ name }, 'key expired');
  }

  /** Removes the due records `slots` of `name` (at most RECORDS_PER_EXPIRY of them); true when some were left for later. */
  private async expireRecords(name: string, d: Versioned<StoredDeadlines>, due: readonly string[], now: number): Promise<boolean> {
    const slots = due.slice(0, RECORDS_PER_EXPIRY);
    const remove = this.recordsOf(name, slots);
    const records = new Map(d.value.records);
    for (const slot of slots) records.delete(slot);
    const id = layout.newChangeId();
    const puts: Put[] = [
      [layout.changeKey(id), layout.encodeChange({ change: { add: [], remove, removeNames: [] }, by: this.deps.instanceId, at: now })],
      [layout.SERIAL_KEY, this.deps.mirror.serialBase],
      // Rewritten without them: an update of the name elsewhere in the meantime fails its compare and looks again.
      [layout.deadlinesKey(name), layout.encodeDeadlines({ ...d.value, records })],
    ];
    const ok = await this.commitFenced([[layout.deadlinesKey(name), 'Mod', d.modRevision]], puts, remove.map((r) => layout.recordPath(r)));
    if (!ok) return false;
    this.deps.counters.recordExpiries += remove.length;
    this.deps.logger.info({ name, count: remove.length }, 'records expired');
    return due.length > slots.length;
  }
}
