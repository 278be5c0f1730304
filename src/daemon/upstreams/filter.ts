/**
 * What every upstream does to records before sending them: TTLs clamped to
 * the upstream's `record-ttl`, added records inside `exclude-nets` dropped
 * (the client is still told they were accepted; they just never leave the
 * daemon for this upstream). Removals are never filtered.
 */
import type { Cidr } from '../../net/address.js';
import { inNets } from '../../net/address.js';
import type { AddrRecord, UpstreamChange } from '../records.js';

export interface RecordFilter {
  /** Milliseconds, as configured; records are clamped to whole seconds of it. */
  readonly recordTtl: number;
  readonly excludeNets: readonly Cidr[];
}

/** `record-ttl` in whole seconds (DNS TTLs are seconds, RFC 1035 §3.2.1). */
export function maxTtlSeconds(f: RecordFilter): number {
  return Math.floor(f.recordTtl / 1000);
}

/** Whether a record may go to this upstream at all. */
export function isForwarded(r: AddrRecord, f: RecordFilter): boolean {
  return !inNets(r.address, f.excludeNets);
}

/** The records that go upstream, TTLs clamped. */
export function filterRecords(records: readonly AddrRecord[], f: RecordFilter): AddrRecord[] {
  const max = maxTtlSeconds(f);
  const out: AddrRecord[] = [];
  for (const r of records) {
    if (!isForwarded(r, f)) continue;
    out.push(r.ttl > max ? { ...r, ttl: max } : r);
  }
  return out;
}

/**
 * A change as this upstream sees it: additions are filtered and clamped;
 * removals and delete-name entries are passed on whole. An address may have
 * been published here before `exclude-nets` came to cover it (a reload), so
 * filtering its removal would leave it published for good; removing what
 * is not there is harmless (RFC 2136 §3.4.2.4: a delete of an absent RR is
 * ignored).
 */
export function filterChange(change: UpstreamChange, f: RecordFilter): UpstreamChange {
  return {
    add: filterRecords(change.add, f),
    remove: change.remove,
    removeNames: change.removeNames,
  };
}
