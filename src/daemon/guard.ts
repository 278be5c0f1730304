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
import * as net from 'node:net';
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

interface Bucket {
  tokens: number;
  last: number;
}

/** The unit a source is limited as: one IPv4 address, one IPv6 /64. */
export function sourceKey(address: string): string {
  if (!net.isIPv6(address)) return address;
  // Expand "::" so the first four groups are the /64.
  const blocks = address.toLowerCase();
  const [head = '', tail = ''] = blocks.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = blocks.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':') + '::/64';
}

export class RequestGuard {
  private readonly opts: GuardOptions;
  private readonly buckets = new Map<string, Bucket>();
  private readonly replays = new ExpiryQueue<true>();
  private inFlight = 0;

  constructor(opts: Partial<GuardOptions> = {}) {
    this.opts = { ...DEFAULT_GUARD, ...opts };
  }

  get checksInFlight(): number {
    return this.inFlight;
  }

  /** May `source` have a signature checked now (`nowMs` monotonic or wall clock)? */
  admit(source: string, nowMs: number): Admission {
    if (this.opts.perSourceRate > 0) {
      const key = sourceKey(source);
      let b = this.buckets.get(key);
      if (b === undefined) {
        if (this.buckets.size >= this.opts.maxSources) {
          const oldest = this.buckets.keys().next().value;
          if (oldest !== undefined) this.buckets.delete(oldest);
        }
        b = { tokens: this.opts.perSourceBurst, last: nowMs };
      } else {
        this.buckets.delete(key); // re-insert: the Map stays ordered by last use
        b.tokens = Math.min(this.opts.perSourceBurst, b.tokens + ((nowMs - b.last) / 1000) * this.opts.perSourceRate);
        b.last = nowMs;
      }
      this.buckets.set(key, b);
      if (b.tokens < 1) return { ok: false, why: 'rate' };
      b.tokens -= 1;
    }
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
