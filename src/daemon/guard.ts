/**
 * Defences of the SIG(0) check, which is the daemon's CPU-exhaustion target
 * (BIND dropped SIG(0) validation over CVE-2024-1975). A request must pass:
 *  - a per-source token bucket (IPv4 /32, IPv6 /64: one host),
 *  - a replay cache: an accepted request is remembered until its signature
 *    expires, keyed on a digest of what the signature covers (never on the
 *    signature bytes: an ECDSA (r, s) is also valid as (r, n − s), so a
 *    third party can make a second "different" signature of the same
 *    message without the key),
 *  - check slots, taken just around the signature check (not while the
 *    request waits on its name's lock), at most `maxPerSource` per source,
 *    and handed out fairly: when every slot is busy, waiting checks are
 *    served in order of how many checks their source had lately (a count
 *    decaying with a half-life of `usageHalfLifeMs`), first come first
 *    served among equals. A source that asks rarely — a real client — goes
 *    ahead of the sources of a flood however many they are; within a flood
 *    the checks are shared evenly between its sources.
 * Everything here is O(1) or O(log n) per request and bounded in memory.
 */
import { createHash } from 'node:crypto';
import { HOST_PREFIX, prefixKey } from '../net/address.js';
import { TokenBuckets } from '../net/token-bucket.js';
import { ExpiryQueue } from './expiry-queue.js';

export interface GuardOptions {
  /** Signature checks per second per source; 0 disables the per-source limit. */
  perSourceRate: number;
  /** Bucket size per source. */
  perSourceBurst: number;
  /** Checks running at once, all sources together. */
  maxInFlight: number;
  /** Checks of one source running or waiting at most (beyond: "busy" at once). */
  maxPerSource: number;
  /** Checks waiting for a slot at most, all sources together. */
  maxQueued: number;
  /** Remembered requests at most (oldest expiry dropped beyond it). */
  replayCapacity: number;
  /** Sources tracked at most. */
  maxSources: number;
  /** Half-life of a source's recent-checks count, which orders waiting checks. */
  usageHalfLifeMs: number;
}

export const DEFAULT_GUARD: GuardOptions = Object.freeze({
  perSourceRate: 50,
  perSourceBurst: 100,
  maxInFlight: 16,
  maxPerSource: 16,
  maxQueued: 4096,
  replayCapacity: 200_000,
  maxSources: 50_000,
  usageHalfLifeMs: 1000,
});

/** A check slot; release() is idempotent. */
export interface CheckSlot {
  release(): void;
}

/** The unit a source is limited as: one IPv4 address, one IPv6 /64. */
export function sourceKey(address: string): string {
  return prefixKey(address, HOST_PREFIX);
}

/**
 * The replay-cache key of a signed request: SHA-256 of the data the
 * signature covers (RFC 2931 §3: the SIG fields and the message before the
 * SIG). Every algorithm's signatures are keyed alike, malleable or not.
 */
export function replayKey(signedData: Buffer): string {
  return createHash('sha256').update(signedData).digest('base64');
}

/** Where remembered requests are also kept, so that a restart does not forget them. */
export interface ReplayPersistence {
  /** Records one accepted request; resolves once it would survive a restart. */
  add(key: string, expiresAtMs: number): Promise<void>;
}

type Waiter = () => void;

export class RequestGuard {
  private readonly opts: GuardOptions;
  private buckets: TokenBuckets | undefined;
  private readonly replays = new ExpiryQueue<true>();
  private persistence: ReplayPersistence | undefined;
  private inFlight = 0;
  /** Waiting checks, keyed by arrival number, ordered by their source's recent checks (then arrival). */
  private readonly waiting = new ExpiryQueue<Waiter, number>();
  private arrivals = 0;
  /** Checks running or waiting, per source (sources with none are left out). */
  private readonly busyBySource = new Map<string, number>();
  /** Recent checks per source, decaying; least recently updated first (the first dropped beyond maxSources). */
  private readonly usage = new Map<string, { count: number; at: number }>();

  constructor(opts: Partial<GuardOptions> = {}) {
    this.opts = { ...DEFAULT_GUARD, ...opts };
    if (this.opts.perSourceRate > 0) {
      this.buckets = new TokenBuckets({ perSecond: this.opts.perSourceRate, burst: this.opts.perSourceBurst, maxKeys: this.opts.maxSources });
    }
  }

  /**
   * Applies new limits (a reload). The per-source buckets start afresh only
   * when their rate or burst changed; checks running or waiting keep their
   * slots and turns, and more slots are handed on at once.
   */
  reconfigure(opts: Partial<GuardOptions>): void {
    const before = { ...this.opts };
    Object.assign(this.opts, opts);
    if (this.opts.perSourceRate !== before.perSourceRate || this.opts.perSourceBurst !== before.perSourceBurst) {
      this.buckets = this.opts.perSourceRate > 0 ? new TokenBuckets({ perSecond: this.opts.perSourceRate, burst: this.opts.perSourceBurst, maxKeys: this.opts.maxSources }) : undefined;
    }
    this.handOn();
  }

  get checksInFlight(): number {
    return this.inFlight;
  }

  get checksWaiting(): number {
    return this.waiting.size;
  }

  /** May `source` send a request to be checked now (`nowMs` monotonic or wall clock)? Takes a token. */
  withinRate(source: string, nowMs: number): boolean {
    return this.buckets === undefined || this.buckets.take(sourceKey(source), nowMs).ok;
  }

  /**
   * A check slot for `source`: at once when one is free and nobody waits,
   * else in its turn (see the module comment). Null ("busy") when this
   * source has too many checks running or waiting, or all sources together
   * too many waiting.
   */
  acquire(source: string, nowMs: number): Promise<CheckSlot | null> {
    const key = sourceKey(source);
    const busy = this.busyBySource.get(key) ?? 0;
    if (busy >= this.opts.maxPerSource) return Promise.resolve(null);
    const recent = this.recentChecks(key, nowMs);
    if (this.inFlight < this.opts.maxInFlight && this.waiting.size === 0) return Promise.resolve(this.grant(key, recent, nowMs));
    if (this.waiting.size >= this.opts.maxQueued) return Promise.resolve(null);
    this.busyBySource.set(key, busy + 1);
    return new Promise<CheckSlot>((resolve) => {
      // Its checks already running or waiting count as recent ones: a source's second waiting check goes behind others' first.
      this.waiting.set(this.arrivals++, recent + busy, () => resolve(this.grant(key, this.recentChecks(key, nowMs), nowMs, true)));
    });
  }

  /** The decayed count of `key`'s recent checks at `nowMs`. */
  private recentChecks(key: string, nowMs: number): number {
    const u = this.usage.get(key);
    if (u === undefined) return 0;
    return u.count * 2 ** (-Math.max(0, nowMs - u.at) / this.opts.usageHalfLifeMs);
  }

  /** A slot for `key`; `counted`: its busy count was raised when it started waiting. */
  private grant(key: string, recent: number, nowMs: number, counted = false): CheckSlot {
    this.inFlight++;
    if (!counted) this.busyBySource.set(key, (this.busyBySource.get(key) ?? 0) + 1);
    this.usage.delete(key);
    this.usage.set(key, { count: recent + 1, at: nowMs });
    if (this.usage.size > this.opts.maxSources) {
      const oldest = this.usage.keys().next();
      if (oldest.done !== true) this.usage.delete(oldest.value);
    }
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.inFlight--;
        const n = (this.busyBySource.get(key) ?? 1) - 1;
        if (n <= 0) this.busyBySource.delete(key);
        else this.busyBySource.set(key, n);
        this.handOn();
      },
    };
  }

  /** Gives free slots to the waiting checks of the least busy sources. */
  private handOn(): void {
    while (this.inFlight < this.opts.maxInFlight) {
      const next = this.waiting.pop();
      if (next === undefined) return;
      next.value();
    }
  }

  /** Keeps remembered requests in `p` too (the daemon's replay file); see loadReplays. */
  persistTo(p: ReplayPersistence): void {
    this.persistence = p;
  }

  /** Restores requests remembered before a restart. */
  loadReplays(entries: Iterable<{ key: string; expiresAtMs: number }>, nowMs: number): void {
    for (const e of entries) this.rememberInMemory(e.key, e.expiresAtMs, nowMs);
  }

  /** True when this request (its replayKey) was accepted before and has not expired (`nowMs`: wall clock). */
  isReplay(key: string, nowMs: number): boolean {
    this.prune(nowMs);
    return this.replays.has(key);
  }

  /** Remembers an accepted request until `expiresAtMs` (the SIG expiration); resolves once persisted (see ReplayPersistence). */
  async remember(key: string, expiresAtMs: number, nowMs: number): Promise<void> {
    if (!this.rememberInMemory(key, expiresAtMs, nowMs)) return;
    await this.persistence?.add(key, expiresAtMs);
  }

  private rememberInMemory(key: string, expiresAtMs: number, nowMs: number): boolean {
    this.prune(nowMs);
    if (expiresAtMs <= nowMs) return false;
    if (this.replays.size >= this.opts.replayCapacity) this.replays.pop();
    this.replays.set(key, expiresAtMs, true);
    return true;
  }

  private prune(nowMs: number): void {
    // popDue is O(k log n) for the k expired entries.
    this.replays.popDue(nowMs);
  }

  get remembered(): number {
    return this.replays.size;
  }
}
