/**
 * Which local addresses nsregc registers, and for how long. Pure functions of the
 * addresses a source reports; no I/O, no clock.
 */
import { inNets, parseIp, type Cidr } from '../../net/address.js';
import { instanceKey, LIFETIME_FOREVER, type AddressEvent, type LocalAddress } from './source.js';

/** IPv4: a secondary address of its prefix (linux/if_addr.h). */
export const IFA_F_SECONDARY = 0x01;
/** IPv6: an RFC 8981 temporary ("privacy") address. Same bit as IFA_F_SECONDARY. */
export const IFA_F_TEMPORARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_PERMANENT = 0x80;

export interface AddressPolicy {
  /** Interface names to watch; empty = every interface. */
  readonly interfaces: readonly string[];
  readonly excludeSubnets: readonly Cidr[];
}

export type UnusableReason = 'temporary' | 'deprecated' | 'dad-failed' | 'excluded' | 'interface';

/** Why an address must not be registered, or null if it may be. */
export function unusableReason(addr: LocalAddress, opts: AddressPolicy): UnusableReason | null {
  if (opts.interfaces.length > 0 && !opts.interfaces.includes(addr.ifname)) return 'interface';
  // Bit 0x01 is IFA_F_TEMPORARY only for IPv6; for IPv4 it marks a secondary
  // address, which is as good as a primary one (the original drops those — FIX).
  if (addr.family === 6 && (addr.flags & IFA_F_TEMPORARY) !== 0) return 'temporary';
  // A zero preferred lifetime is what deprecation means (RFC 4862 section 5.5.4);
  // test it too in case a source reports lifetimes without the flag.
  if ((addr.flags & IFA_F_DEPRECATED) !== 0 || addr.preferredLifetime === 0) return 'deprecated';
  // The kernel never uses an address that failed duplicate address detection.
  if ((addr.flags & IFA_F_DADFAILED) !== 0) return 'dad-failed';
  if (inNets(addr.address, opts.excludeSubnets)) return 'excluded';
  return null;
}

export function isUsable(addr: LocalAddress, opts: AddressPolicy): boolean {
  return unusableReason(addr, opts) === null;
}

/**
 * Record TTL in seconds: the address's remaining valid lifetime, or
 * addr-ttl when the lifetime is 0 (unknown), infinite, or longer.
 */
export function ttlFor(addr: Pick<LocalAddress, 'validLifetime'>, addrTtlSeconds: number): number {
  const v = addr.validLifetime;
  if (v === 0 || v === LIFETIME_FOREVER || v > addrTtlSeconds) return addrTtlSeconds;
  return v;
}

export interface RegistrableAddress {
  readonly address: string;
  readonly family: 4 | 6;
  /** Seconds. */
  readonly ttl: number;
}

/**
 * The addresses to register: usable local addresses, deduplicated (the
 * longest TTL of an address's instances wins), then extra-addresses not
 * already listed, with addr-ttl.
 */
export function registrableAddresses(
  list: readonly LocalAddress[],
  opts: AddressPolicy,
  addrTtlSeconds: number,
  extraAddresses: readonly string[] = [],
): RegistrableAddress[] {
  const out = new Map<string, RegistrableAddress>();
  for (const addr of list) {
    if (!isUsable(addr, opts)) continue;
    const ttl = ttlFor(addr, addrTtlSeconds);
    const seen = out.get(addr.address);
    if (seen === undefined || seen.ttl < ttl) out.set(addr.address, { address: addr.address, family: addr.family, ttl });
  }
  for (const extra of extraAddresses) {
    const ip = parseIp(extra);
    if (ip === null || out.has(extra)) continue;
    out.set(extra, { address: extra, family: ip.family, ttl: addrTtlSeconds });
  }
  return [...out.values()];
}

export type AddressChange = 'new' | 'gone' | 'unchanged';

/**
 * The addresses present on the host, per interface, folded from a
 * source's events. `apply` answers what the registrar must do:
 * * `new` — the address just became usable (on some watched interface) and
 *   was not usable before: insert it.
 * * `gone` — the address left its last interface (of any kind) after having
 *   been reported `new`: remove it. An address that is still on another
 *   interface is not gone.
 * * `unchanged` — nothing to send: repeats (the kernel re-sends RTM_NEWADDR
 *   whenever a lifetime is refreshed), a second instance of a known address,
 *   or a usable address turning unusable (deprecated), which is left to
 *   expire at the next refresh rather than removed.
 */
export class AddressSet {
  readonly #policy: AddressPolicy;
  /** address → instance key → latest report of that instance. */
  readonly #instances = new Map<string, Map<string, LocalAddress>>();
  /** Addresses reported `new` and not yet `gone`. */
  readonly #announced = new Set<string>();

  constructor(policy: AddressPolicy) {
    this.#policy = policy;
  }

  apply(event: AddressEvent): AddressChange {
    const addr = event.address;
    const wasUsable = this.isUsable(addr.address);
    let instances = this.#instances.get(addr.address);
    const key = instanceKey(addr);
    if (event.kind === 'added') {
      if (instances === undefined) {
        instances = new Map();
        this.#instances.set(addr.address, instances);
      }
      instances.set(key, addr);
    } else if (instances !== undefined) {
      instances.delete(key);
      if (instances.size === 0) this.#instances.delete(addr.address);
    }
    if (!wasUsable && this.isUsable(addr.address)) {
      this.#announced.add(addr.address);
      return 'new';
    }
    if (!this.#instances.has(addr.address) && this.#announced.delete(addr.address)) return 'gone';
    return 'unchanged';
  }

  /** Apply `added` for every address of a listing; returns the addresses that became `new`. */
  load(list: readonly LocalAddress[]): string[] {
    const fresh: string[] = [];
    for (const address of list) {
      if (this.apply({ kind: 'added', address }) === 'new') fresh.push(address.address);
    }
    return fresh;
  }

  /** Present on any interface (usable or not). */
  has(address: string): boolean {
    return this.#instances.has(address);
  }

  /** Usable on at least one interface. */
  isUsable(address: string): boolean {
    const instances = this.#instances.get(address);
    if (instances === undefined) return false;
    for (const a of instances.values()) if (isUsable(a, this.#policy)) return true;
    return false;
  }

  /** Every instance currently known. */
  instances(): LocalAddress[] {
    return [...this.#instances.values()].flatMap((m) => [...m.values()]);
  }

  /** Number of distinct addresses present. */
  get size(): number {
    return this.#instances.size;
  }
}
