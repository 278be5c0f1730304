/**
 * Fallback address source: the OS interface list (getifaddrs(3) through
 * os.networkInterfaces()), read every few seconds and diffed. It knows no
 * flags and no lifetimes, so every address counts as permanent and
 * preferred; temporary and deprecated IPv6 addresses cannot be told apart
 * here, and the log says so (the caller does).
 *
 * Each poll also reads the default routes from /proc/net/route and
 * /proc/net/ipv6_route and tells the route listeners when they differ from
 * the previous poll's: the host may have moved to another network (roaming).
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { normalizeIp } from '../../net/address.js';
import { EventRelay } from './relay.js';
import { LIFETIME_FOREVER, snapshotOf, type AddressEvent, type AddressSource, type LocalAddress } from './source.js';

export const DEFAULT_POLL_INTERVAL_MS = 10_000;

export type InterfaceReader = () => NodeJS.Dict<NetworkInterfaceInfo[]>;

export interface PollSourceOptions {
  /** Default DEFAULT_POLL_INTERVAL_MS. */
  readonly intervalMs?: number;
  /** Default os.networkInterfaces. */
  readonly readInterfaces?: InterfaceReader;
  /** Interface name → index; default reads /sys/class/net/NAME/ifindex, 0 when unknown. */
  readonly ifindexOf?: (name: string) => number;
  /** The IPv4 routing table as procfs shows it; default /proc/net/route. */
  readonly ipv4RoutesPath?: string;
  /** The IPv6 routing table as procfs shows it; default /proc/net/ipv6_route. */
  readonly ipv6RoutesPath?: string;
}

/** One default route as procfs shows it; the gateway is kept as the file's hex text. */
export interface DefaultRoute {
  readonly family: 4 | 6;
  readonly iface: string;
  readonly gateway: string;
}

// linux/route.h (IPv4) and linux/ipv6_route.h flags, as procfs prints them.
const RTF_UP = 0x1;
const RTF_REJECT = 0x200;

function routeUsable(flagsHex: string): boolean {
  const flags = parseInt(flagsHex, 16);
  return Number.isInteger(flags) && (flags & RTF_UP) !== 0 && (flags & RTF_REJECT) === 0;
}

/**
 * The default routes in /proc/net/route text: a header line, then
 * `Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT`
 * (hex fields) per route of the main table; default is Destination and
 * Mask 00000000, and only routes flagged up count.
 */
export function parseIpv4Routes(text: string): DefaultRoute[] {
  const out: DefaultRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, destination, gateway, flags, , , , mask] = f;
    if (destination !== '00000000' || mask !== '00000000' || !routeUsable(flags)) continue;
    out.push({ family: 4, iface, gateway: gateway.toLowerCase() });
  }
  return out;
}

/**
 * The default routes in /proc/net/ipv6_route text: per route, no header,
 * `dest dest_plen src src_plen next_hop metric refcnt use flags iface`
 * (hex fields); default is dest of 32 zeros with prefix length 00. The
 * file lists every table's routes without naming the table, so a default
 * route of a policy-routing table counts here too (at worst a needless
 * notification). The kernel's reject route for "no route" (RTF_REJECT) is
 * left out.
 */
export function parseIpv6Routes(text: string): DefaultRoute[] {
  const out: DefaultRoute[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const [dest, destLen, , , nextHop, , , , flags, iface] = f;
    if (!/^0{32}$/.test(dest) || destLen !== '00' || !routeUsable(flags)) continue;
    out.push({ family: 6, iface, gateway: nextHop.toLowerCase() });
  }
  return out;
}

/** A file's text; a missing or unreadable one reads as empty (a container without IPv6 has no ipv6_route). */
function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** An order-independent identity of a set of default routes. */
function routeSetKey(routes: readonly DefaultRoute[]): string {
  return [...new Set(routes.map((r) => `${r.family} ${r.iface} ${r.gateway}`))].sort().join('\n');
}

function sysIfindex(name: string): number {
  if (!/^[^/\0]+$/.test(name) || name === '.' || name === '..') return 0;
  try {
    const n = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** Flatten an os.networkInterfaces() result into LocalAddresses. */
export function fromNetworkInterfaces(
  table: NodeJS.Dict<NetworkInterfaceInfo[]>,
  ifindexOf: (name: string) => number = sysIfindex,
): LocalAddress[] {
  const out: LocalAddress[] = [];
  for (const [label, infos] of Object.entries(table)) {
    if (infos === undefined) continue;
    // getifaddrs reports IPv4 alias labels (eth0:1) as interface names.
    const ifname = label.split(':')[0];
    const ifindex = ifindexOf(ifname);
    for (const info of infos) {
      // Node 18.0–18.3 reported the family as a number.
      const fam: unknown = info.family;
      const family = fam === 'IPv4' || fam === 4 ? 4 : fam === 'IPv6' || fam === 6 ? 6 : null;
      if (family === null) continue;
      const address = normalizeIp(info.address.split('%')[0]);
      if (address === null) continue;
      const slash = info.cidr?.lastIndexOf('/') ?? -1;
      const prefixLen = slash >= 0 ? Number((info.cidr as string).slice(slash + 1)) : family === 4 ? 32 : 128;
      out.push({
        address,
        family,
        ifindex,
        ifname,
        prefixLen,
        flags: 0,
        validLifetime: LIFETIME_FOREVER,
        preferredLifetime: LIFETIME_FOREVER,
      });
    }
  }
  return out;
}

export class PollAddressSource implements AddressSource {
  readonly kind = 'poll' as const;
  readonly intervalMs: number;
  readonly #read: InterfaceReader;
  readonly #ifindexOf: (name: string) => number;
  readonly #relay = new EventRelay(() => this.close());
  readonly #routePaths: readonly [string, string];
  /** The default routes at the last poll; null until a route listener is added. */
  #routes: string | null = null;
  #timer: NodeJS.Timeout | null = null;

  constructor(opts: PollSourceOptions = {}) {
    const interval = opts.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    if (!Number.isFinite(interval) || interval <= 0) throw new RangeError(`intervalMs must be positive, got ${interval}`);
    this.intervalMs = interval;
    this.#read = opts.readInterfaces ?? networkInterfaces;
    this.#ifindexOf = opts.ifindexOf ?? sysIfindex;
    this.#routePaths = [opts.ipv4RoutesPath ?? '/proc/net/route', opts.ipv6RoutesPath ?? '/proc/net/ipv6_route'];
  }

  async list(): Promise<LocalAddress[]> {
    const list = fromNetworkInterfaces(this.#read(), this.#ifindexOf);
    this.#relay.listed(list);
    return list;
  }

  async subscribe(onEvent: (e: AddressEvent) => void, onFailure: (err: Error) => void): Promise<void> {
    this.#relay.subscribe(onEvent, onFailure);
    this.#timer = setInterval(() => this.pollOnce(), this.intervalMs);
  }

  /** Read the interface list once and report what changed since the last read. */
  pollOnce(): void {
    if (this.#relay.closed || !this.#relay.subscribed) return;
    let fresh: Map<string, LocalAddress>;
    try {
      fresh = snapshotOf(fromNetworkInterfaces(this.#read(), this.#ifindexOf));
    } catch (err) {
      this.#relay.fail(err);
      return;
    }
    for (const e of this.#relay.difference(fresh)) this.#relay.deliver(e);
    this.#pollRoutes();
  }

  /** Changes are measured from the routes read now; polls run once subscribed. */
  onDefaultRouteChange(listener: () => void): void {
    if (this.#relay.closed) return;
    this.#routes ??= this.#readRoutes();
    this.#relay.onRouteChange(listener);
  }

  #readRoutes(): string {
    const [v4, v6] = this.#routePaths;
    return routeSetKey([...parseIpv4Routes(readOrEmpty(v4)), ...parseIpv6Routes(readOrEmpty(v6))]);
  }

  #pollRoutes(): void {
    if (this.#routes === null) return;
    const fresh = this.#readRoutes();
    if (fresh === this.#routes) return;
    this.#routes = fresh;
    this.#relay.routeChanged();
  }

  async close(): Promise<void> {
    this.#relay.close();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
