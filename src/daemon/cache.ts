/**
 * The A/AAAA records of one zone that upstreams have accepted, each with the
 * time it expires: one (clamped) TTL after its last add or refresh.
 *
 * Only records the upstreams accepted belong here — the handler writes the
 * cache after a successful forward, never before, so a client's retry after
 * a failed forward is forwarded again rather than taken for a refresh (the
 * original kept records cached after a failed forward, so the retry was
 * never forwarded). For that the handler needs to ask "is this cached?"
 * (`has`/`get`) separately from "cache it" (`upsert`), which it can.
 *
 * Every operation is O(log n) or better in the number of cached records;
 * lookups by name cost O(records of that name).
 */
import { canonicalName } from '../dns/names.js';
import { ExpiryQueue } from './expiry-queue.js';
import type { AddrRecord } from './records.js';

export interface CachedRecord {
  readonly record: AddrRecord;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
}

type RecordId = Pick<AddrRecord, 'name' | 'type' | 'address'>;

export class RecordCache {
  /** Keyed by the cached record object itself (found through #byName): no key string per record. */
  readonly #queue = new ExpiryQueue<AddrRecord, AddrRecord>();
  /**
   * name → its records. A name has a handful of addresses at most, so a
   * small array is both faster and far smaller than a Map per name (memory
   * per registered name is a target).
   */
  readonly #byName = new Map<string, AddrRecord[]>();

  get size(): number {
    return this.#queue.size;
  }

  /** The cached record object with this identity, if any. */
  #find(rec: RecordId): AddrRecord | undefined {
    return this.#byName.get(rec.name)?.find((r) => r.type === rec.type && r.address === rec.address);
  }

  has(rec: RecordId): boolean {
    return this.#find(rec) !== undefined;
  }

  get(rec: RecordId): CachedRecord | undefined {
    const record = this.#find(rec);
    if (record === undefined) return undefined;
    return { record, expiresAt: this.#queue.deadlineOf(record)! };
  }

  /**
   * Caches `rec` until `expiresAt` (ms). A record already cached (same name,
   * type and address) is a refresh: its TTL and expiry are replaced.
   */
  upsert(rec: AddrRecord, expiresAt: number): 'new' | 'refreshed' {
    const names = this.#byName.get(rec.name);
    const at = names === undefined ? -1 : names.findIndex((r) => r.type === rec.type && r.address === rec.address);
    if (names === undefined) {
      this.#byName.set(rec.name, [rec]);
    } else if (at >= 0) {
      this.#queue.delete(names[at]);
      names[at] = rec;
    } else {
      names.push(rec);
    }
    this.#queue.set(rec, expiresAt, rec);
    return at >= 0 ? 'refreshed' : 'new';
  }

  remove(rec: RecordId): boolean {
    const record = this.#find(rec);
    if (record === undefined) return false;
    this.#queue.delete(record);
    this.#unindex(record);
    return true;
  }

  /** Drops every record of `name` and returns them. */
  removeName(name: string): AddrRecord[] {
    const canonical = canonicalName(name);
    const names = this.#byName.get(canonical);
    if (names === undefined) return [];
    this.#byName.delete(canonical);
    for (const rec of names) this.#queue.delete(rec);
    return names;
  }

  recordsOf(name: string): AddrRecord[] {
    const names = this.#byName.get(canonicalName(name));
    return names === undefined ? [] : [...names];
  }

  /** Every cached record with its expiry, in no particular order. */
  all(): CachedRecord[] {
    const out: CachedRecord[] = [];
    for (const e of this.#queue.entries()) out.push({ record: e.value, expiresAt: e.deadline });
    return out;
  }

  /** The earliest expiry, or undefined when empty. */
  nextExpiry(): number | undefined {
    return this.#queue.nextDeadline();
  }

  /** Removes and returns, earliest first, every record with expiresAt <= now. */
  expireDue(now: number): AddrRecord[] {
    const out: AddrRecord[] = [];
    for (const e of this.#queue.popDue(now)) {
      this.#unindex(e.value);
      out.push(e.value);
    }
    return out;
  }

  #unindex(rec: RecordId): void {
    const names = this.#byName.get(rec.name);
    if (names === undefined) return;
    const at = names.findIndex((r) => r.type === rec.type && r.address === rec.address);
    if (at >= 0) names.splice(at, 1);
    if (names.length === 0) this.#byName.delete(rec.name);
  }
}
