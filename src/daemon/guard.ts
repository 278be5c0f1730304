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
 *    request waits on its name's lock) and handed out fairly: when every
 *    slot is busy, waiting checks queue per source and freed slots go round
 *    robin over the waiting sources, so a flood from many addresses delays
 *    another source by one round at most instead of taking every slot.
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
  /** Checks of one source waiting for a slot at most (beyond: "busy" at once). */
  maxQueuedPerSource: number;
  /** Checks waiting for a slot at most, all sources together. */
  maxQueued: number;
  /** Remembered requests at most (oldest expiry dropped beyond it). */
  replayCapacity: number;
  /** Sources tracked at most. */
  maxSources: number;
}

export const DEFAULT_GUARD: GuardOptions = Object.freeze({
  perSourceRate: 50,
  perSourceBurst: 100,
  maxInFlight: 64,
  maxQueuedPerSource: 8,
  maxQueued: 4096,
  replayCapacity: 200_000,
  maxSources: 50_000,
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
  /** Records one accepted request; resolves once it is durable. */
  add(key: string, expiresAtMs: number): Promise<void>;
}

type Waiter = (slot: CheckSlot) => void;

export class RequestGuard {
  private readonly opts: GuardOptions;
  private readonly buckets: TokenBuckets | undefined;
  private readonly replays = new ExpiryQueue<true>();
  private persistence: ReplayPersistence | undefined;
  private inFlight = 0;
  /** Waiting checks per source, and the sources with waiters in round-robin order. */
  private readonly waiting = new Map<string, Waiter[]>();
  private queued = 0;

  constructor(opts: Partial<GuardOptions> = {}) {
    this.opts = { ...DEFAULT_GUARD, ...opts };
    if (this.opts.perSourceRate > 0) {
      this.buckets = new TokenBuckets({ perSecond: this.opts.perSourceRate, burst: this.opts.perSourceBurst, maxKeys: this.opts.maxSources });
    }
  }

  get checksInFlight(): number {
    return this.inFlight;
  }

  get checksWaiting(): number {
    return this.queued;
  }

  /** May `source` send a request to be checked now (`nowMs` monotonic or wall clock)? Takes a token. */
  withinRate(source: string, nowMs: number): boolean {
    return this.buckets === undefined || this.buckets.take(sourceKey(source), nowMs).ok;
  }

  /**
   * A check slot for `source`: at once when one is free and nobody waits,
   * else after the sources queued before it had their turn. Null ("busy")
   * when this source or all sources have too many checks waiting.
   */
  acquire(source: string): Promise<CheckSlot | null> {
    if (this.inFlight < this.opts.maxInFlight && this.queued === 0) return Promise.resolve(this.grant());
    const key = sourceKey(source);
    const queue = this.waiting.get(key);
    if ((queue?.length ?? 0) >= this.opts.maxQueuedPerSource || this.queued >= this.opts.maxQueued) return Promise.resolve(null);
    return new Promise<CheckSlot>((resolve) => {
      if (queue === undefined) this.waiting.set(key, [resolve]);
      else queue.push(resolve);
      this.queued++;
    });
  }

  private grant(): CheckSlot {
    this.inFlight++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.inFlight--;
        this.handOn();
      },
    };
  }

  /** Gives free slots to waiting sources in turn (Map order: the source served goes to the back). */
  private handOn(): void {
    while (this.inFlight < this.opts.maxInFlight && this.queued > 0) {
      const next = this.waiting.entries().next();
      if (next.done === true) return;
      const [key, queue] = next.value;
      this.waiting.delete(key);
      const waiter = queue.shift();
      if (queue.length > 0) this.waiting.set(key, queue);
      if (waiter === undefined) continue;
      this.queued--;
      waiter(this.grant());
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

  /** Remembers an accepted request until `expiresAtMs` (the SIG expiration); resolves once persisted. */
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
