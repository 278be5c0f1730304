/**
 * Defences of the SIG(0) check, which is the daemon's CPU-exhaustion target
 * (BIND dropped SIG(0) validation over CVE-2024-1975). Before a signature
 * is checked, the request must pass:
 *  - a per-source token bucket (IPv4 /32, IPv6 /64: one host),
 *  - a global cap on checks in flight (excess is answered "busy" at once),
 *  - a replay cache: an accepted signature is remembered until it expires,
 *    and the same signed message seen again is refused — a captured
 *    registration cannot be replayed to undo a later change.
 * Everything here is O(1) or O(log n) per request and bounded in memory.
 */
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
  /** Remembered signatures at most (oldest expiry dropped beyond it). */
  replayCapacity: number;
  /** Sources tracked at most. */
  maxSources: number;
}

export const DEFAULT_GUARD: GuardOptions = Object.freeze({
  perSourceRate: 50,
  perSourceBurst: 100,
  maxInFlight: 64,
  replayCapacity: 200_000,
  maxSources: 50_000,
});

export type Admission = { ok: true; release(): void } | { ok: false; why: 'rate' | 'busy' };

/** The unit a source is limited as: one IPv4 address, one IPv6 /64. */
export function sourceKey(address: string): string {
  return prefixKey(address, HOST_PREFIX);
}

export class RequestGuard {
  private readonly opts: GuardOptions;
  private readonly buckets: TokenBuckets | undefined;
  private readonly replays = new ExpiryQueue<true>();
  private inFlight = 0;

  constructor(opts: Partial<GuardOptions> = {}) {
    this.opts = { ...DEFAULT_GUARD, ...opts };
    if (this.opts.perSourceRate > 0) {
      this.buckets = new TokenBuckets({ perSecond: this.opts.perSourceRate, burst: this.opts.perSourceBurst, maxKeys: this.opts.maxSources });
    }
  }

  get checksInFlight(): number {
    return this.inFlight;
  }

  /** May `source` have a signature checked now (`nowMs` monotonic or wall clock)? */
  admit(source: string, nowMs: number): Admission {
    if (this.buckets !== undefined && !this.buckets.take(sourceKey(source), nowMs).ok) return { ok: false, why: 'rate' };
    if (this.inFlight >= this.opts.maxInFlight) return { ok: false, why: 'busy' };
    this.inFlight++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.inFlight--;
      },
    };
  }

  /** True when this signature was accepted before and has not expired (`nowMs`: wall clock). */
  isReplay(signature: Buffer, nowMs: number): boolean {
    this.prune(nowMs);
    return this.replays.has(signature.toString('base64'));
  }

  /** Remembers an accepted signature until `expiresAtMs` (the SIG expiration). */
  remember(signature: Buffer, expiresAtMs: number, nowMs: number): void {
    this.prune(nowMs);
    if (expiresAtMs <= nowMs) return;
    if (this.replays.size >= this.opts.replayCapacity) this.replays.pop();
    this.replays.set(signature.toString('base64'), expiresAtMs, true);
  }

  private prune(nowMs: number): void {
    // popDue is O(k log n) for the k expired entries.
    this.replays.popDue(nowMs);
  }

  get remembered(): number {
    return this.replays.size;
  }
}
