/**
 * One upstream's outbox: every add and removal for that upstream goes
 * through it. Operations for the same record collapse (a newer one replaces
 * an older one not yet applied: add then remove = remove), a removal of a
 * whole name swallows the pending operations of its records, and whatever
 * the upstream refuses or cannot be reached for is retried with exponential
 * back-off and jitter until it is applied — so an upstream that was down
 * converges to exactly the live records. Operations arriving while an
 * update is in flight ride together in the next one (group commit).
 *
 * Before an operation is sent it is written to the zone's state journal
 * (`persist`), so a crash cannot lose it; `acked` records that it was
 * applied. Upstreams marked `local` (the built-in zone server, which reads
 * the live records directly) need neither.
 *
 * Bounded: at most `maxPending` operations wait; beyond that new request
 * adds are refused at once (the client gets SERVFAIL and retries later,
 * logged once per episode), while removals and expiries are always taken —
 * they replace at most one pending operation per record, so they are
 * bounded by the number of records. Nothing is ever dropped silently.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Backoff } from '../backoff.js';
import type { Clock, TimerHandle } from '../clock.js';
import { recordKey, type AddrRecord, type UpstreamChange } from './records.js';
import type { Upstream } from './upstreams/upstream.js';

export type OpKind = 'add' | 'remove' | 'removeName';

export interface Op {
  readonly key: string;
  readonly kind: OpKind;
  readonly seq: number;
  /** add/remove: the record; removeName: absent. */
  readonly record?: AddrRecord;
  /** removeName: the name and the addresses it had (for PTR clean-up). */
  readonly name?: string;
  readonly addresses?: readonly AddrRecord[];
}

export interface OutboxPersistence {
  /** Durably records operations about to be sent. */
  persist(upstream: string, ops: readonly Op[]): Promise<void>;
  /** Records (lazily) that operations were applied. */
  acked(upstream: string, ops: readonly Op[]): void;
}

export const NO_PERSISTENCE: OutboxPersistence = {
  persist: async () => undefined,
  acked: () => undefined,
};

export interface OutboxOptions {
  maxPending: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** Random spread of each retry delay, as a fraction (0.2 = ±20 %). */
  jitter: number;
}

export const DEFAULT_OUTBOX: OutboxOptions = Object.freeze({
  maxPending: 100_000,
  retryInitialMs: 1_000,
  retryMaxMs: 300_000,
  jitter: 0.2,
});

function nameKey(name: string): string {
  return `${name} *`;
}

/** The operations a change stands for, in the order they must apply. */
export function opsOf(change: UpstreamChange, nextSeq: () => number): Op[] {
  const ops: Op[] = [];
  for (const n of change.removeNames) {
    ops.push({ key: nameKey(n.name), kind: 'removeName', seq: nextSeq(), name: n.name, addresses: n.addresses });
  }
  for (const r of change.remove) ops.push({ key: recordKey(r), kind: 'remove', seq: nextSeq(), record: r });
  for (const r of change.add) ops.push({ key: recordKey(r), kind: 'add', seq: nextSeq(), record: r });
  return ops;
}

/** The change that applies a set of pending operations. */
export function changeOf(ops: Iterable<Op>): UpstreamChange {
  const add: AddrRecord[] = [];
  const remove: AddrRecord[] = [];
  const removeNames: Array<{ name: string; addresses: readonly AddrRecord[] }> = [];
  for (const op of ops) {
    if (op.kind === 'add' && op.record) add.push(op.record);
    else if (op.kind === 'remove' && op.record) remove.push(op.record);
    else if (op.kind === 'removeName' && op.name !== undefined) removeNames.push({ name: op.name, addresses: op.addresses ?? [] });
  }
  return { add, remove, removeNames };
}

/** One attempt to apply a batch upstream (metrics). */
export type AttemptObserver = (upstream: string, ok: boolean, seconds: number) => void;

export class Outbox {
  private readonly pending = new Map<string, Op>();
  /** When each pending operation's key first started waiting (ms); its age survives replacement by a newer operation. */
  private readonly waitingSince = new Map<string, number>();
  /** Told of every attempt (metrics). */
  onAttempt: AttemptObserver | undefined;
  private readonly waiters = new Map<Op, Array<(ok: boolean) => void>>();
  private readonly opts: OutboxOptions;
  private readonly backoff: Backoff;
  private flushing: Promise<void> | undefined;
  private timer: TimerHandle | undefined;
  private failures = 0;
  private full = false;
  private closed = false;

  constructor(
    readonly upstream: Upstream,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly persistence: OutboxPersistence = NO_PERSISTENCE,
    private readonly nextSeq: () => number = counter(),
    opts: Partial<OutboxOptions> = {},
  ) {
    this.opts = { ...DEFAULT_OUTBOX, ...opts };
    this.backoff = new Backoff({ initialMs: this.opts.retryInitialMs, capMs: this.opts.retryMaxMs, jitter: this.opts.jitter });
  }

  get id(): string {
    return this.upstream.description;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** True while the upstream keeps failing (operations wait for a retry). */
  get failing(): boolean {
    return this.failures > 0;
  }

  /** How long the oldest pending operation has waited, in ms (0 when none waits). */
  oldestPendingMs(now: number = this.clock.now()): number {
    // Insertion order is the order keys started waiting.
    for (const since of this.waitingSince.values()) return Math.max(0, now - since);
    return 0;
  }

  /** Whether an operation for `record` (or its whole name) waits to be applied. */
  isPending(record: AddrRecord): boolean {
    return this.pending.has(recordKey(record)) || this.pending.has(nameKey(record.name));
  }

  /** Operations waiting, oldest first (for the state snapshot). */
  pendingOps(): Op[] {
    return [...this.pending.values()];
  }

  /**
   * Queues a change. Resolves with the outcome of the first attempt that
   * carries it (true: the upstream applied it). Request adds are refused
   * (false) when the outbox is full.
   */
  async submit(change: UpstreamChange, opts: { request: boolean }): Promise<boolean> {
    if (this.closed) return false;
    if (this.upstream.local) {
      try {
        await this.upstream.apply(change);
        return true;
      } catch (err) {
        this.logger.warn({ upstream: this.id, err }, 'upstream update failed');
        return false;
      }
    }
    if (opts.request && change.add.length > 0 && this.pending.size >= this.opts.maxPending) {
      if (!this.full) {
        this.full = true;
        this.logger.error({ upstream: this.id, pending: this.pending.size }, 'upstream outbox full: refusing new records until it drains');
      }
      return false;
    }
    const ops = opsOf(change, this.nextSeq);
    if (ops.length === 0) return true;
    try {
      await this.persistence.persist(this.id, ops);
    } catch (err) {
      this.logger.error({ upstream: this.id, err }, 'cannot write the state journal; operation not sent');
      return false;
    }
    const result = new Promise<boolean>((resolve) => {
      for (const op of ops) this.enqueue(op, op === ops[ops.length - 1] ? resolve : undefined);
    });
    this.flushSoon();
    return result;
  }

  /** Puts back operations found in the state journal at start-up; they are sent with the next flush. */
  restore(ops: readonly Op[]): void {
    for (const op of ops) this.enqueue(op, undefined);
    if (ops.length > 0) {
      this.logger.info({ upstream: this.id, operations: ops.length }, 'resending operations left over from before the restart');
      this.flushSoon();
    }
  }

  private enqueue(op: Op, waiter: ((ok: boolean) => void) | undefined): void {
    const carried: Array<(ok: boolean) => void> = [];
    if (op.kind === 'removeName' && op.name !== undefined) {
      // A whole-name removal supersedes everything pending for that name's records.
      const prefix = `${op.name} `;
      for (const [key, old] of this.pending) {
        if (key.startsWith(prefix)) {
          this.pending.delete(key);
          this.waitingSince.delete(key);
          carried.push(...(this.waiters.get(old) ?? []));
          this.waiters.delete(old);
        }
      }
    }
    const old = this.pending.get(op.key);
    if (old !== undefined) {
      carried.push(...(this.waiters.get(old) ?? []));
      this.waiters.delete(old);
      this.pending.delete(op.key); // re-insert: pending stays in submission order
    }
    this.pending.set(op.key, op);
    if (!this.waitingSince.has(op.key)) this.waitingSince.set(op.key, this.clock.now());
    if (waiter) carried.push(waiter);
    if (carried.length > 0) this.waiters.set(op, carried);
  }

  /**
   * Attempts to apply everything pending now. A submission while the
   * upstream is failing still tries at once (the waiting client deserves a
   * real answer) but leaves the back-off schedule alone; only the retry
   * timer's own attempts lengthen it.
   */
  private flushSoon(trigger: 'submit' | 'timer' = 'submit'): void {
    if (this.flushing !== undefined || this.closed) return;
    if (trigger === 'timer' || this.failures === 0) {
      this.timer?.cancel();
      this.timer = undefined;
    }
    this.flushing = this.flush(trigger).finally(() => {
      this.flushing = undefined;
      // Operations that arrived during the attempt go out now, unless we are backing off.
      if (this.pending.size > 0 && this.failures === 0 && !this.closed) this.flushSoon();
    });
  }

  private async flush(trigger: 'submit' | 'timer'): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    let error: Error | undefined;
    const started = this.onAttempt === undefined ? 0 : performance.now();
    try {
      await this.upstream.apply(changeOf(batch));
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }
    this.onAttempt?.(this.id, error === undefined, (performance.now() - started) / 1000);
    const settled: Array<[Array<(ok: boolean) => void>, boolean]> = [];
    if (error === undefined) {
      const applied: Op[] = [];
      for (const op of batch) {
        if (this.pending.get(op.key) === op) {
          this.pending.delete(op.key);
          this.waitingSince.delete(op.key);
          applied.push(op);
        }
        const w = this.waiters.get(op);
        if (w) settled.push([w, true]);
        this.waiters.delete(op);
      }
      this.persistence.acked(this.id, applied);
      if (this.failures > 0) {
        this.logger.info({ upstream: this.id, applied: applied.length, failedAttempts: this.failures }, 'upstream reachable again; pending operations applied');
      }
      this.failures = 0;
      if (this.full && this.pending.size < this.opts.maxPending) {
        this.full = false;
        this.logger.info({ upstream: this.id }, 'upstream outbox has room again');
      }
    } else {
      for (const op of batch) {
        const w = this.waiters.get(op);
        if (w) settled.push([w, false]);
        this.waiters.delete(op);
      }
      if ((trigger === 'timer' || this.failures === 0 || this.timer === undefined) && !this.closed) {
        this.failures++;
        const delay = this.backoff.delayFor(this.failures - 1);
        const fields = { upstream: this.id, pending: this.pending.size, retryInMs: delay, err: error };
        if (this.failures === 1) this.logger.warn(fields, 'upstream update failed; operations kept and retried');
        else this.logger.debug(fields, 'upstream still failing');
        this.timer?.cancel();
        this.timer = this.clock.schedule(delay, () => {
          this.timer = undefined;
          this.flushSoon('timer');
        });
      }
    }
    for (const [ws, ok] of settled) for (const w of ws) w(ok);
  }

  /**
   * Tries to apply everything pending within `timeoutMs` (shutdown). What
   * is still pending afterwards stays in the state journal for next start.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = this.clock.now() + timeoutMs;
    this.failures = 0;
    while (this.pending.size > 0 && this.clock.now() < deadline) {
      this.timer?.cancel();
      this.timer = undefined;
      if (this.flushing === undefined) this.flushSoon();
      await this.flushing;
      if (this.failures > 0) break;
    }
    return this.pending.size === 0;
  }

  /** Stops retrying; pending operations remain in the journal. */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
    for (const ws of this.waiters.values()) for (const w of ws) w(false);
    this.waiters.clear();
  }
}

function counter(): () => number {
  let n = 0;
  return () => ++n;
}
