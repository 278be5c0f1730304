/**
 * Response-rate limiting for the UDP side of the zone server, so it cannot be
 * used to reflect and amplify traffic at a spoofed victim (the idea of BIND's
 * RRL). Clients are grouped by network — IPv4 /24, IPv6 /56 — because an
 * attacker can spoof any address within a victim's network. TCP is not
 * limited: it cannot be spoofed.
 */
import { prefixKey } from '../../net/address.js';
import { TokenBuckets } from '../../net/token-bucket.js';

export interface RateLimitOptions {
  /** Responses per second per network; 0 disables the limit. */
  perSecond: number;
  /** Bucket size (default 2 × perSecond). */
  burst?: number;
  /** Every n-th dropped response is sent truncated instead, so a real client behind a flooded network retries over TCP (BIND's "slip"). 0: never. */
  slip?: number;
  /** Networks tracked at most; the least recently seen are forgotten beyond it. */
  maxNetworks?: number;
}

export type RateDecision = 'send' | 'drop' | 'slip';

/** The network a client address is limited as: IPv4 /24, IPv6 /56. */
export function networkKey(address: string): string {
  return prefixKey(address, { v4: 24, v6: 56 });
}

export class ResponseRateLimiter {
  private readonly buckets: TokenBuckets;
  private readonly slip: number;

  constructor(private readonly opts: RateLimitOptions) {
    this.slip = opts.slip ?? 2;
    this.buckets = new TokenBuckets({
      perSecond: opts.perSecond,
      burst: opts.burst ?? Math.max(1, opts.perSecond * 2),
      maxKeys: opts.maxNetworks ?? 100_000,
    });
  }

  get enabled(): boolean {
    return this.opts.perSecond > 0;
  }

  /** Whether a response to `address` may go out now (`nowMs`: a monotonic clock). */
  check(address: string, nowMs: number): RateDecision {
    if (!this.enabled) return 'send';
    const taken = this.buckets.take(networkKey(address), nowMs);
    if (taken.ok) return 'send';
    return this.slip > 0 && taken.refused % this.slip === 0 ? 'slip' : 'drop';
  }

  get trackedNetworks(): number {
    return this.buckets.size;
  }
}
