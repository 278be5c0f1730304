/**
 * The address records the daemon manages, and the changes it sends upstream.
 */
import { RRClass } from '../dns/constants.js';
import type { ResourceRecord } from '../dns/message.js';

export type AddrType = 'A' | 'AAAA';

/** One A/AAAA record of a registered name. */
export interface AddrRecord {
  /** Canonical owner: lower-case FQDN. */
  readonly name: string;
  readonly type: AddrType;
  /** Normalised address text (as the AAAA codec in src/dns/rdata.ts writes it). */
  readonly address: string;
  /** Seconds. */
  readonly ttl: number;
}

/** Identity of a record in caches and upstream state: TTL is not part of it. */
export function recordKey(r: Pick<AddrRecord, 'name' | 'type' | 'address'>): string {
  return `${r.name} ${r.type} ${r.address}`;
}

/** What one upstream is asked to do in a single call. */
export interface UpstreamChange {
  /** Records to add (or re-add with a new TTL). */
  readonly add: readonly AddrRecord[];
  /** Single records to delete (RFC 2136 §2.5.4). */
  readonly remove: readonly AddrRecord[];
  /**
   * Names whose every record goes (RFC 2136 §2.5.3 delete-name), with the
   * addresses they were known to have so reverse-zone PTRs can go too.
   */
  readonly removeNames: ReadonlyArray<{ readonly name: string; readonly addresses: readonly AddrRecord[] }>;
}

export function isEmptyChange(c: UpstreamChange): boolean {
  return c.add.length === 0 && c.remove.length === 0 && c.removeNames.length === 0;
}

/** The record as an RR of class IN. */
export function toResourceRecord(r: AddrRecord): ResourceRecord {
  return { name: r.name, type: r.type, class: RRClass.IN, ttl: r.ttl, data: r.address };
}
