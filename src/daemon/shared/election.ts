/**
 * A zone's publisher election (README, "Several daemons as one service"):
 * each daemon campaigns with a lease of its own; the one whose transaction
 * creates `leader` (only if it does not exist) under its lease is the
 * publisher, and the others watch `leader` and try again when it goes
 * (deleted, or its lease ran out at etcd).
 *
 * etcd lease TTLs are whole seconds, at least one: the lease granted is
 * ceil(leaseMs / 1000) s (etcd may raise it to its own minimum, about 1.5
 * election timeouts), never shorter than leaseMs. The leader keeps it alive
 * itself, several times per leaseMs / 2, and counts itself leader only
 * while its last answered keep-alive was *sent* less than leaseMs / 2 ago:
 * the lease at etcd lasts at least leaseMs from the moment etcd received
 * that keep-alive, so a daemon cut off from the quorum stops publishing
 * well before another can be elected. Losing leadership is reported
 * (onChange(false)), the old lease is given up, and the daemon campaigns
 * again.
 */
import { performance } from 'node:perf_hooks';
import { EtcdLeaseInvalidError, type Lease, type Namespace, type Watcher } from 'etcd3';
import type { Logger } from 'pino';

import type { Election } from './contract.js';
import { encodeLeader, LEADER_KEY } from './layout.js';
import { Listeners } from './listeners.js';
import { fragmentingWatcher } from './watch.js';

export interface LeaseElectionOptions {
  /** The zone's namespace (`<prefix>/v1/zones/<zone>/`). */
  readonly namespace: Namespace;
  /** This daemon's id, written as the leader key's value. */
  readonly instanceId: string;
  readonly leaseMs: number;
  /** Bounds each campaign step, and the revoke on close. */
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Called once when the election is closed or abandoned. */
  readonly onClose?: () => void;
}

/** The etcd lease TTL for `leaseMs`: whole seconds, at least one. */
export function leaseTtlSeconds(leaseMs: number): number {
  return Math.max(1, Math.ceil(leaseMs / 1000));
}

/** A campaign step did not finish in time. */
class StepTimeoutError extends Error {}

export class LeaseElection implements Election {
  readonly #ns: Namespace;
  readonly #value: string;
  readonly #leaseMs: number;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  readonly #onClose: (() => void) | undefined;
  /** How long leadership lasts after a keep-alive was sent that etcd answered. */
  readonly #validMs: number;
  readonly #keepAliveMs: number;
  readonly #retryMs: number;

  readonly #listeners: Listeners<boolean>;
  #leader = false;
  #lease: Lease | undefined;
  #createRevision: string | undefined;
  /** performance.now() when the last keep-alive that etcd answered was sent. */
  #lastAck = 0;
  #keepAliveTimer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #keepAliveInFlight = false;
  #watcher: Watcher | undefined;
  #campaigning = false;
  #closed = false;
  /** Wakes a campaign that is waiting (a pause, or for the leader key to go). */
  #wake: (() => void) | undefined;

  constructor(opts: LeaseElectionOptions) {
    this.#ns = opts.namespace;
    this.#value = encodeLeader(opts.instanceId);
    this.#leaseMs = opts.leaseMs;
    this.#timeoutMs = opts.timeoutMs;
    this.#log = opts.logger;
    this.#onClose = opts.onClose;
    this.#listeners = new Listeners(opts.logger, 'election');
    this.#validMs = opts.leaseMs / 2;
    this.#keepAliveMs = Math.max(50, Math.floor(opts.leaseMs / 6));
    this.#retryMs = Math.max(100, Math.min(1000, Math.floor(opts.leaseMs / 4)));
    void this.#campaign();
  }

  get isLeader(): boolean {
    return this.#leader && performance.now() - this.#lastAck < this.#validMs;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    return this.#listeners.add(listener);
  }

  fence(): { readonly key: string; readonly createRevision: string } | undefined {
    if (!this.isLeader || this.#createRevision === undefined) return undefined;
    return { key: LEADER_KEY, createRevision: this.#createRevision };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    const wasLeader = this.#leader;
    const lease = this.#shutDown();
    if (wasLeader) this.#listeners.emit(false);
    if (lease !== undefined) {
      try {
        await this.#bounded(lease.revoke({ deadline: Date.now() + this.#timeoutMs }), 'revoke');
      } catch (err) {
        this.#log.warn({ err }, 'could not give up the publisher lease; it runs out by itself');
      }
    }
  }

  /**
   * Stops everything without a word to etcd, as a process killed with
   * SIGKILL would: no revoke, no more keep-alives, no onChange. The lease
   * runs out at etcd and another daemon takes over. For tests.
   */
  abandon(): void {
    if (this.#closed) return;
    this.#shutDown()?.release();
  }

  /** Marks the election closed and stops its timers and watch; returns the lease still held. */
  #shutDown(): Lease | undefined {
    this.#closed = true;
    this.#leader = false;
    this.#stopKeepAlive();
    this.#stopWatch();
    this.#wake?.();
    const lease = this.#lease;
    this.#lease = undefined;
    this.#onClose?.();
    return lease;
  }

  // ---------------------------------------------------------------- campaigning

  /** Campaigns until leader or closed; at most one campaign runs at a time. */
  async #campaign(): Promise<void> {
    if (this.#campaigning) return;
    this.#campaigning = true;
    try {
      while (!this.#closed && !this.#leader) {
        try {
          const waitFrom = await this.#tryOnce();
          if (waitFrom === undefined) return;
          await this.#vacancy(waitFrom);
        } catch (err) {
          if (this.#closed) return;
          this.#log.debug({ err }, 'publisher campaign step failed; trying again');
          await this.#pause(this.#retryMs);
        }
      }
    } finally {
      this.#campaigning = false;
    }
  }

  /**
   * One attempt: a fresh lease, then `leader` created under it if absent.
   * Resolves undefined when this daemon became leader, or the revision to
   * watch `leader` from when another holds it.
   */
  async #tryOnce(): Promise<bigint | undefined> {
    const lease = this.#ns.lease(leaseTtlSeconds(this.#leaseMs), { autoKeepAlive: false });
    const sent = performance.now();
    let won = false;
    try {
      const leaseId = await this.#bounded(lease.grant(), 'lease grant');
      const res = await this.#bounded(
        this.#ns
          .if(LEADER_KEY, 'Create', '==', 0)
          .then(this.#ns.put(LEADER_KEY).value(this.#value).lease(leaseId))
          .else(this.#ns.get(LEADER_KEY))
          .options({ deadline: Date.now() + this.#timeoutMs })
          .commit(),
        'leader txn',
      );
      if (this.#closed) return undefined;
      if (res.succeeded) {
        won = true;
        this.#becomeLeader(lease, res.header.revision, sent);
        return undefined;
      }
      const holder = res.responses[0]?.response_range?.kvs[0];
      this.#log.debug({ holder: holder?.value.toString().slice(0, 100) }, 'another daemon publishes this zone');
      return BigInt(res.header.revision) + 1n;
    } finally {
      if (!won) this.#giveUp(lease);
    }
  }

  /** Resolves when `leader` may be free: deleted, the watch failed, a while passed, or closed. */
  async #vacancy(from: bigint): Promise<void> {
    if (this.#closed) return;
    await new Promise<void>((resolve) => {
      const watcher = fragmentingWatcher(this.#ns.watch().key(LEADER_KEY), from);
      let finished = false;
      const done = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        if (this.#watcher === watcher) this.#stopWatch();
        resolve();
      };
      // A watch held by a member cut off from the quorum sees nothing: look again now and then.
      const timer = setTimeout(done, 5 * this.#leaseMs);
      this.#wake = done;
      this.#watcher = watcher;
      watcher.on('delete', done);
      watcher.on('disconnected', done);
      watcher.on('error', done);
    });
  }

  #becomeLeader(lease: Lease, createRevision: string, sent: number): void {
    this.#lease = lease;
    this.#createRevision = createRevision;
    this.#lastAck = sent;
    this.#leader = true;
    this.#log.info({ createRevision }, 'publisher of this zone');
    this.#armExpiry();
    this.#keepAliveTimer = setInterval(() => this.#keepAlive(), this.#keepAliveMs);
    // The lease's time runs from its grant: the first keep-alive goes at once.
    this.#keepAlive();
    // While leader, a change of `leader` by anyone else ends it at once.
    const watcher = fragmentingWatcher(this.#ns.watch().key(LEADER_KEY), BigInt(createRevision) + 1n);
    this.#watcher = watcher;
    watcher.on('delete', () => this.#lose('the leader key was deleted'));
    watcher.on('put', (kv) => {
      if (kv.create_revision !== createRevision) this.#lose('the leader key was replaced');
    });
    watcher.on('error', () => undefined);
    this.#listeners.emit(true);
  }

  #keepAlive(): void {
    const lease = this.#lease;
    if (this.#keepAliveInFlight || lease === undefined) return;
    this.#keepAliveInFlight = true;
    const sent = performance.now();
    lease
      .keepaliveOnce({ deadline: Date.now() + Math.max(50, Math.floor(this.#validMs)) })
      .then(() => {
        if (this.#lease !== lease || !this.#leader) return;
        if (sent > this.#lastAck) this.#lastAck = sent;
        this.#armExpiry();
      })
      .catch((err: unknown) => {
        if (this.#lease !== lease) return;
        if (err instanceof EtcdLeaseInvalidError) this.#lose('the lease ran out at etcd');
        else this.#log.debug({ err }, 'publisher keep-alive failed');
      })
      .finally(() => {
        this.#keepAliveInFlight = false;
      });
  }

  /** Leadership ends leaseMs / 2 after the last answered keep-alive was sent, unless another is answered first. */
  #armExpiry(): void {
    clearTimeout(this.#expiryTimer);
    const left = this.#lastAck + this.#validMs - performance.now();
    this.#expiryTimer = setTimeout(() => this.#lose('no keep-alive answered within half the lease'), Math.max(0, left));
  }

  #lose(why: string): void {
    if (!this.#leader || this.#closed) return;
    this.#leader = false;
    this.#createRevision = undefined;
    this.#stopKeepAlive();
    this.#stopWatch();
    const lease = this.#lease;
    this.#lease = undefined;
    if (lease !== undefined) this.#giveUp(lease);
    this.#log.warn({ reason: why }, 'no longer publisher of this zone');
    this.#listeners.emit(false);
    void this.#campaign();
  }

  /** Stops keeping `lease` alive and revokes it in the background (bounded), so its key goes as soon as etcd can. */
  #giveUp(lease: Lease): void {
    lease.revoke({ deadline: Date.now() + this.#timeoutMs }).catch(() => undefined);
  }

  #stopKeepAlive(): void {
    clearInterval(this.#keepAliveTimer);
    clearTimeout(this.#expiryTimer);
    this.#keepAliveTimer = undefined;
    this.#expiryTimer = undefined;
  }

  #stopWatch(): void {
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (watcher === undefined) return;
    // Its 'error' listener stays: an EventEmitter without one throws.
    watcher.removeAllListeners('delete').removeAllListeners('put').removeAllListeners('disconnected');
    watcher.cancel().catch(() => undefined);
  }

  /** Pauses `ms`, or less when closed. */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** `p`, or a rejection after the store timeout. */
  #bounded<T>(p: Promise<T>, what: string): Promise<T> {
    p.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StepTimeoutError(`${what} took longer than ${this.#timeoutMs} ms`)), this.#timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }
}
