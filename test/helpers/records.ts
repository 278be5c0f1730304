/** Building records and upstream changes in tests. */
import type { AddrRecord, UpstreamChange } from '../../src/daemon/records.js';

/** An A or AAAA record (by the address's form). */
export const addr = (name: string, address: string, ttl = 300): AddrRecord => ({
  name,
  type: address.includes(':') ? 'AAAA' : 'A',
  address,
  ttl,
});

/** A change with only the parts given. */
export const change = (c: Partial<UpstreamChange>): UpstreamChange => ({ add: [], remove: [], removeNames: [], ...c });
