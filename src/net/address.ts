/**
 * IP addresses and prefixes as values: parse once, test membership many
 * times (allowed-nets, exclude-nets, exclude-subnets), and group remote
 * addresses into the prefixes that limits count them by. Parsing and
 * printing go through the `ip-address` package; membership is bigint
 * arithmetic so IPv4 and IPv6 behave the same way.
 */
import { Address4, Address6 } from 'ip-address';

export type IpFamily = 4 | 6;

export interface ParsedIp {
  readonly family: IpFamily;
  /** The address as an unsigned 32- or 128-bit integer. */
  readonly value: bigint;
}

/** ::ffff:0:0/96, the IPv4-mapped IPv6 addresses (RFC 4291 section 2.5.5.2). */
const V4_MAPPED_PREFIX = 0xffffn << 32n;

/**
 * Parse a literal IPv4 or IPv6 address (no brackets, prefix or zone id);
 * null if it is not one. IPv4 is dotted decimal without leading zeros:
 * "010" is octal to some parsers and ambiguous.
 */
export function parseIp(s: string): ParsedIp | null {
  const hit = parsedIps.get(s);
  if (hit !== undefined) return hit;
  const ip = parseUncached(s);
  // Every request parses its source address several times (limits, allowed-nets, logs): a
  // small memo saves the library's work. Bounded: emptied when full, whatever the input.
  if (parsedIps.size >= PARSED_IPS_MAX) parsedIps.clear();
  parsedIps.set(s, ip);
  return ip;
}

const PARSED_IPS_MAX = 4096;
/** Dotted decimal as formatIp writes it: four octets 0-255, no leading zeros. */
const CANONICAL_V4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** True when `s` is an IPv4 address in dotted decimal as formatIp (and the A record codec) writes it. */
export function isCanonicalIPv4(s: string): boolean {
  return CANONICAL_V4.test(s);
}

const parsedIps = new Map<string, ParsedIp | null>();

function parseUncached(s: string): ParsedIp | null {
  // ip-address accepts a prefix length and a zone id; an address here has neither.
  if (s.includes('/') || s.includes('%')) return null;
  if (s.includes(':')) return Address6.isValid(s) ? Object.freeze({ family: 6, value: new Address6(s).bigInt() }) : null;
  // Canonical dotted decimal (every IPv4 peer's socket text) needs no library: four octets.
  if (CANONICAL_V4.test(s)) {
    const [a, b, c, d] = s.split('.').map(Number);
    return Object.freeze({ family: 4, value: BigInt((((a << 24) | (b << 16) | (c << 8) | d) >>> 0)) });
  }
  return Address4.isValid(s) ? Object.freeze({ family: 4, value: new Address4(s).bigInt() }) : null;
}

/** Canonical text of an address (RFC 5952 for IPv6: lower case, longest zero run compressed). */
export function formatIp(ip: ParsedIp): string {
  return ip.family === 4 ? Address4.fromBigInt(ip.value).correctForm() : Address6.fromBigInt(ip.value).correctForm();
}

/** Normalise an address literal to canonical text, or null if it is not one. */
export function normalizeIp(s: string): string | null {
  const ip = parseIp(s);
  return ip === null ? null : formatIp(ip);
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it stands for; others unchanged. */
function unmapped(ip: ParsedIp): ParsedIp {
  return ip.family === 6 && ip.value >> 32n === 0xffffn ? { family: 4, value: ip.value & 0xffffffffn } : ip;
}

/**
 * The address a socket reports, as the operator would write it: a
 * dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d, which becomes
 * a.b.c.d. Anything else is returned unchanged ('' for undefined).
 */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return '';
  if (!address.includes(':')) return address;
  const ip = parseIp(address);
  return ip !== null && unmapped(ip).family === 4 ? formatIp(unmapped(ip)) : address;
}

function maskOf(family: IpFamily, prefix: number): bigint {
  const bits = family === 4 ? 32n : 128n;
  const all = (1n << bits) - 1n;
  return prefix === 0 ? 0n : (all >> (bits - BigInt(prefix))) << (bits - BigInt(prefix));
}

/**
 * An IP prefix. Host bits in the written form are cleared, as Go's
 * net.ParseCIDR does (`127.0.0.1/8` is 127.0.0.0/8).
 */
export class Cidr {
  readonly family: IpFamily;
  readonly prefix: number;
  /** Canonical network address. */
  readonly network: string;
  readonly #base: bigint;
  readonly #mask: bigint;

  private constructor(family: IpFamily, base: bigint, prefix: number) {
    this.family = family;
    this.prefix = prefix;
    this.#mask = maskOf(family, prefix);
    this.#base = base & this.#mask;
    this.network = formatIp({ family, value: this.#base });
  }

  /** Parse `addr/len`; a bare address is a host prefix (/32 or /128). Null if malformed. */
  static parse(text: string): Cidr | null {
    const slash = text.indexOf('/');
    const addr = slash < 0 ? text : text.slice(0, slash);
    const ip = parseIp(addr);
    if (ip === null) return null;
    const max = ip.family === 4 ? 32 : 128;
    let prefix = max;
    if (slash >= 0) {
      const len = text.slice(slash + 1);
      if (!/^(0|[1-9][0-9]{0,2})$/.test(len)) return null;
      prefix = Number(len);
      if (prefix > max) return null;
    }
    return new Cidr(ip.family, ip.value, prefix);
  }

  /**
   * Whether an address (text or parsed) lies inside. IPv4-mapped IPv6
   * addresses (::ffff:a.b.c.d, what a dual-stack socket reports for an
   * IPv4 peer) match IPv4 prefixes, and IPv4 addresses match IPv6 prefixes
   * that cover their mapped form. Anything unparsable is outside.
   */
  contains(addr: string | ParsedIp): boolean {
    const ip = typeof addr === 'string' ? parseIp(addr) : addr;
    if (ip === null) return false;
    let value = ip.value;
    if (ip.family !== this.family) {
      if (ip.family === 6) {
        if (value >> 32n !== 0xffffn) return false;
        value &= 0xffffffffn;
      } else {
        value |= V4_MAPPED_PREFIX;
      }
    }
    return (value & this.#mask) === this.#base;
  }

  toString(): string {
    return `${this.network}/${this.prefix}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** True if any of the prefixes contains the address. */
export function inNets(addr: string | ParsedIp, nets: readonly Cidr[]): boolean {
  const ip = typeof addr === 'string' ? parseIp(addr) : addr;
  return ip !== null && nets.some((n) => n.contains(ip));
}

/** How many leading bits of a remote address one limit counts together. */
export interface PrefixLengths {
  readonly v4: number;
  readonly v6: number;
}

/**
 * One host: an IPv4 address, or an IPv6 /64 (the smallest network one
 * site is normally given, RFC 6177, so the unit one attacker controls).
 */
export const HOST_PREFIX: PrefixLengths = Object.freeze({ v4: 32, v6: 64 });

/**
 * The key a limit counts a remote address under: the network of its first
 * `v4` or `v6` bits, as "network/len", or the bare canonical address when
 * the prefix is the whole address. IPv4-mapped IPv6 addresses count as the
 * IPv4 address they stand for. Text that is no address is its own key.
 */
export function prefixKey(address: string, lengths: PrefixLengths): string {
  // The common case, an IPv4 peer counted per address: the socket's text is already canonical.
  if (lengths.v4 === 32 && CANONICAL_V4.test(address)) return address;
  const parsed = parseIp(address);
  if (parsed === null) return address;
  const ip = unmapped(parsed);
  const prefix = ip.family === 4 ? lengths.v4 : lengths.v6;
  const network = formatIp({ family: ip.family, value: ip.value & maskOf(ip.family, prefix) });
  return prefix === (ip.family === 4 ? 32 : 128) ? network : `${network}/${prefix}`;
}

/** `host:port`, with an IPv6 host in brackets (RFC 3986 section 3.2.2). */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
