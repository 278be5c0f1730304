/**
 * Response-rate limiting for the UDP side of the zone server, so it cannot be
 * used to reflect and amplify traffic at a spoofed victim (the idea of BIND's
 * RRL). Clients are grouped by network — IPv4 /24, IPv6 /56 — because an
 * attacker can spoof any address within a victim's network. TCP is not
 * limited: it cannot be spoofed.
 */
import * as net from 'node:net';

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

interface Bucket {
  tokens: number;
  last: number;
  dropped: number;
}

/** The network a client address is limited as. */
export function networkKey(address: string): string {
  if (net.isIPv4(address)) return address.split('.').slice(0, 3).join('.') + '.0/24';
  if (address.startsWith('::ffff:') && net.isIPv4(address.slice(7))) return networkKey(address.slice(7));
  // Expand to 8 groups and keep the first 56 bits (3.5 groups).
  const [head = '', tail = ''] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const g = groups.map((x) => parseInt(x, 16) || 0);
  return `${g.slice(0, 3).map((x) => x.toString(16)).join(':')}:${((g[3] ?? 0) & 0xff00).toString(16)}::/56`;
}

export class ResponseRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly burst: number;
  private readonly slip: number;
  private readonly maxNetworks: number;

  constructor(private readonly opts: RateLimitOptions) {
    this.burst = opts.burst ?? Math.max(1, opts.perSecond * 2);
    this.slip = opts.slip ?? 2;
    this.maxNetworks = opts.maxNetworks ?? 100_000;
  }

  get enabled(): boolean {
    return this.opts.perSecond > 0;
  }

  /** Whether a response to `address` may go out now (`nowMs`: a monotonic clock). */
  check(address: string, nowMs: number): RateDecision {
    if (!this.enabled) return 'send';
    const key = networkKey(address);
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxNetworks) {
        // Maps iterate in insertion order; re-inserting on use keeps the oldest first.
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      b = { tokens: this.burst, last: nowMs, dropped: 0 };
    } else {
      this.buckets.delete(key);
      b.tokens = Math.min(this.burst, b.tokens + ((nowMs - b.last) / 1000) * this.opts.perSecond);
      b.last = nowMs;
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 'send';
    }
    b.dropped++;
    return this.slip > 0 && b.dropped % this.slip === 0 ? 'slip' : 'drop';
  }

  get trackedNetworks(): number {
    return this.buckets.size;
  }
}
