/**
 * The DNS server nsregc asks when `dns-server` is unset: the first
 * `nameserver` line of /etc/resolv.conf.
 *
 * resolv.conf(5): one keyword per line, `#` or `;` in the first column
 * starts a comment. Real files also carry trailing comments, so anything
 * after `#`/`;` is ignored. Addresses may be IPv4, IPv6, bracketed IPv6
 * (the form Go's resolver writes back) and IPv6 with a zone index
 * (`fe80::1%eth0`), which is kept because a link-local server is
 * unreachable without it.
 */
import { readFile } from 'node:fs/promises';
import * as net from 'node:net';
import { DEFAULT_DNS_PORT, type DnsServer } from '../config/client.js';
import { ResolvConfError } from './errors.js';
import { errnoCode } from '../errors.js';

export const RESOLV_CONF = '/etc/resolv.conf';

/** An IP literal with an optional `%zone` suffix (IPv6 only), or null. */
function nameserverAddress(text: string): string | null {
  let s = text;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const pct = s.indexOf('%');
  const zone = pct >= 0 ? s.slice(pct + 1) : '';
  const addr = pct >= 0 ? s.slice(0, pct) : s;
  const family = net.isIP(addr);
  if (family === 4 && pct < 0) return addr;
  if (family !== 6) return null;
  if (pct >= 0 && !/^[A-Za-z0-9_.-]+$/.test(zone)) return null;
  const lower = addr.toLowerCase();
  return pct >= 0 ? `${lower}%${zone}` : lower;
}

/** The first usable `nameserver` of resolv.conf text, port 53; null if there is none. */
export function parseResolvConf(text: string): DnsServer | null {
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.replace(/[#;].*$/, '').trim();
    const fields = line.split(/\s+/);
    if (fields[0] !== 'nameserver' || fields[1] === undefined) continue;
    const host = nameserverAddress(fields[1]);
    if (host !== null) return { host, port: DEFAULT_DNS_PORT };
  }
  return null;
}

/** Reads `file` (default /etc/resolv.conf) and returns its first nameserver. */
export async function systemNameserver(file: string = RESOLV_CONF): Promise<DnsServer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ResolvConfError(file, 'unreadable', `cannot read (${errnoCode(err) ?? 'error'})`, {
      cause: err,
    });
  }
  const server = parseResolvConf(text);
  if (server === null) throw new ResolvConfError(file, 'no-nameserver', 'no nameserver line');
  return server;
}
