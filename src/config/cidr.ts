/**
 * IP addresses and prefixes as values: parse once, test membership many
 * times (allowed-nets, exclude-nets, exclude-subnets). Pure bigint
 * arithmetic so IPv4 and IPv6 behave the same way.
 */

export type IpFamily = 4 | 6;

export interface ParsedIp {
  readonly family: IpFamily;
  /** The address as an unsigned 32- or 128-bit integer. */
  readonly value: bigint;
}

const V4_MAPPED_PREFIX = 0xffffn << 32n; // ::ffff:0:0/96

function parseIpv4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    // Decimal only, no leading zeros: "010" is octal to some parsers and ambiguous.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseIpv6(s: string): bigint | null {
  if (s.includes('%')) return null; // zone ids make no sense in configuration
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (part: string, allowV4Tail: boolean): bigint[] | null => {
    if (part === '') return [];
    const items = part.split(':');
    const out: bigint[] = [];
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (allowV4Tail && i === items.length - 1 && item.includes('.')) {
        const v4 = parseIpv4(item);
        if (v4 === null) return null;
        out.push(v4 >> 16n, v4 & 0xffffn);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) {
        out.push(BigInt(`0x${item}`));
      } else {
        return null;
      }
    }
    return out;
  };
  let groups: bigint[];
  if (halves.length === 2) {
    const head = groupsOf(halves[0], false);
    const tail = groupsOf(halves[1], true);
    if (head === null || tail === null || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<bigint>(8 - head.length - tail.length).fill(0n), ...tail];
  } else {
    const all = groupsOf(s, true);
    if (all === null || all.length !== 8) return null;
    groups = all;
  }
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Parse a literal IPv4 or IPv6 address (no brackets, no zone id); null if it is not one. */
export function parseIp(s: string): ParsedIp | null {
  if (s.includes(':')) {
    const value = parseIpv6(s);
    return value === null ? null : { family: 6, value };
  }
  const value = parseIpv4(s);
  return value === null ? null : { family: 4, value };
}

/** Canonical text of an address (RFC 5952 for IPv6: lower case, longest zero run compressed). */
export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) {
    return [24n, 16n, 8n, 0n].map((sh) => ((ip.value >> sh) & 0xffn).toString()).join('.');
  }
  const groups: number[] = [];
  for (let sh = 112n; sh >= 0n; sh -= 16n) groups.push(Number((ip.value >> sh) & 0xffffn));
  // RFC 5952 section 4.2: compress the longest run of two or more zero groups, the first if tied.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Normalise an address literal to canonical text, or null if it is not one. */
export function normalizeIp(s: string): string | null {
  const ip = parseIp(s);
  return ip === null ? null : formatIp(ip);
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
    const bits = family === 4 ? 32n : 128n;
    const all = (1n << bits) - 1n;
    this.family = family;
    this.prefix = prefix;
    this.#mask = prefix === 0 ? 0n : (all >> (bits - BigInt(prefix))) << (bits - BigInt(prefix));
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
