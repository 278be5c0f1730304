/**
 * Fallback address source: the OS interface list (getifaddrs(3) through
 * os.networkInterfaces()), read every few seconds and diffed. It knows no
 * flags and no lifetimes, so every address counts as permanent and
 * preferred; temporary and deprecated IPv6 addresses cannot be told apart
 * here, and the log says so (the caller does).
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
  #timer: NodeJS.Timeout | null = null;

  constructor(opts: PollSourceOptions = {}) {
    const interval = opts.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    if (!Number.isFinite(interval) || interval <= 0) throw new RangeError(`intervalMs must be positive, got ${interval}`);
    this.intervalMs = interval;
    this.#read = opts.readInterfaces ?? networkInterfaces;
    this.#ifindexOf = opts.ifindexOf ?? sysIfindex;
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
  }

  async close(): Promise<void> {
    this.#relay.close();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
