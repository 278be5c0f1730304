/** Where a listener binds: the addresses a `listen-addr` stands for. */
import * as dns from 'node:dns/promises';
import * as net from 'node:net';

/**
 * Every address a listen name stands for (`localhost` → 127.0.0.1 and ::1),
 * without duplicates, in resolver order. A literal address stands for itself.
 */
export async function resolveListenAddresses(host: string): Promise<string[]> {
  if (net.isIP(host) !== 0) return [host];
  const found = await dns.lookup(host, { all: true, verbatim: true });
  return [...new Set(found.map((a) => a.address))];
}
