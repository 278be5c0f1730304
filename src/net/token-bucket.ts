/**
 * Token buckets per key (a source address, a client network), for the
 * request guard and the zone server's response-rate limit. A bucket holds
 * at most `burst` tokens and refills at `perSecond`; each admitted event
 * takes one. The map of keys is bounded: beyond `maxKeys` the key least
 * recently used is forgotten, so a flood of distinct sources costs a fixed
 * amount of memory (a forgotten key simply starts again with a full bucket).
 */

export interface TokenBucketOptions {
  /** Tokens added per second. */
  perSecond: number;
  /** Bucket size: the most events admitted at once after a quiet spell. */
  burst: number;
  /** Keys tracked at most. */
  maxKeys: number;
}

/** The result of take(): admitted, or refused with the key's refusals so far (this one included). */
export type TakeResult = { ok: true } | { ok: false; refused: number };

interface Bucket {
  tokens: number;
  last: number;
  refused: number;
}

export class TokenBuckets {
  /** Least recently used first: Maps iterate in insertion order and a key is re-inserted on use. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly opts: TokenBucketOptions) {}

  /** Takes a token from `key`'s bucket at `nowMs` (any clock that does not go backwards much). */
  take(key: string, nowMs: number): TakeResult {
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.opts.maxKeys) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
      b = { tokens: this.opts.burst, last: nowMs, refused: 0 };
    } else {
      this.buckets.delete(key);
      const refill = (Math.max(0, nowMs - b.last) / 1000) * this.opts.perSecond;
      b.tokens = Math.min(this.opts.burst, b.tokens + refill);
      b.last = nowMs;
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    b.refused++;
    return { ok: false, refused: b.refused };
  }

  /** Keys tracked now. */
  get size(): number {
    return this.buckets.size;
  }
}
