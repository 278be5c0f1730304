/**
 * Addresses from rtnetlink (rtnetlink(7)): one dump at start, then the
 * kernel's RTNLGRP_IPV4_IFADDR / RTNLGRP_IPV6_IFADDR notifications. The
 * route groups (RTNLGRP_IPV4_ROUTE / RTNLGRP_IPV6_ROUTE) are joined too, to
 * notice a default route appearing, going away or changing: the host may
 * have moved to another network (roaming), which addresses alone do not
 * always show.
 *
 * The npm `netlink` package frames messages and runs requests; the
 * ifaddrmsg / ifinfomsg / rtmsg payloads are decoded here, because its high-level
 * address objects drop the message type (RTM_NEWADDR vs RTM_DELADDR) and the
 * 32-bit IFA_FLAGS attribute is what carries the flags that matter.
 *
 * Two sockets: notifications arrive on one, dumps on the other. The
 * package groups multipart replies per socket, and a notification arriving
 * in the middle of a dump on the same socket would cut the dump short.
 */
import { endianness } from 'node:os';
import { createNetlink, FlagsGet, Protocol, type NetlinkMessage, type NetlinkSocket } from 'netlink';
import { formatIp } from '../../net/address.js';
import { EventRelay } from './relay.js';
import { LIFETIME_FOREVER, snapshotOf, type AddressEvent, type AddressSource, type LocalAddress } from './source.js';

// linux/rtnetlink.h message types.
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;

// linux/rtnetlink.h multicast groups (numbers, not bit masks: used with NETLINK_ADD_MEMBERSHIP).
export const RTNLGRP_LINK = 1;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV6_IFADDR = 9;
export const RTNLGRP_IPV4_ROUTE = 7;
export const RTNLGRP_IPV6_ROUTE = 11;

// linux/if_addr.h attribute types.
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_CACHEINFO = 6;
export const IFA_FLAGS = 8;
// linux/if_link.h
export const IFLA_IFNAME = 3;
// linux/rtnetlink.h route attributes, table ids, route types and flags.
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_TABLE = 15;
export const RT_TABLE_MAIN = 254;
export const RTN_UNICAST = 1;
/** A route the kernel cloned for one destination (a cache entry), not a configured one. */
export const RTM_F_CLONED = 0x200;

export const AF_INET = 2;
export const AF_INET6 = 10;

/** NLM_F_DUMP_INTR: the dump raced with a change and may be inconsistent; redo it. */
const NLM_F_DUMP_INTR = 0x10;
const IFADDRMSG_LEN = 8;
const IFINFOMSG_LEN = 16;
const RTMSG_LEN = 12;
const NLA_HDRLEN = 4;
const REQUEST_TIMEOUT_MS = 5000;
const DUMP_ATTEMPTS = 5;

/** Netlink structures use the host's byte order (netlink(7)). */
const HOST_LE = endianness() === 'LE';

/** One RTM_NEWADDR / RTM_DELADDR payload, decoded. */
export interface IfAddrMessage {
  readonly family: 4 | 6;
  readonly prefixLen: number;
  /** IFA_FLAGS when present (it carries bits above 0xff), else ifa_flags. */
  readonly flags: number;
  readonly scope: number;
  readonly ifindex: number;
  /** Canonical text of the local address. */
  readonly address: string;
  /** IFA_LABEL (IPv4 only), e.g. `eth0` or the alias `eth0:1`. */
  readonly label: string | null;
  readonly validLifetime: number;
  readonly preferredLifetime: number;
}

function u16(buf: Buffer, off: number, le: boolean): number {
  return le ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
}

function u32(buf: Buffer, off: number, le: boolean): number {
  return le ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
}

/**
 * Route attributes (struct rtattr, 4-byte aligned) from `offset` to the end.
 * A later attribute of the same type replaces an earlier one. Returns null
 * when an attribute's length runs past the buffer.
 */
export function parseAttributes(buf: Buffer, offset: number, le: boolean = HOST_LE): Map<number, Buffer> | null {
  const attrs = new Map<number, Buffer>();
  let off = offset;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = u16(buf, off, le);
    // The top two bits of nla_type are NLA_F_NESTED / NLA_F_NET_BYTEORDER.
    const type = u16(buf, off + 2, le) & 0x3fff;
    if (len < NLA_HDRLEN || off + len > buf.length) return null;
    attrs.set(type, buf.subarray(off + NLA_HDRLEN, off + len));
    off += (len + 3) & ~3;
  }
  return attrs;
}

function addressText(family: 4 | 6, raw: Buffer): string | null {
  const width = family === 4 ? 4 : 16;
  if (raw.length !== width) return null;
  let value = 0n;
  for (const byte of raw) value = (value << 8n) | BigInt(byte);
  return formatIp({ family, value });
}

/**
 * The address family (first byte of ifaddrmsg and rtmsg alike) and the
 * attributes after a fixed header of `headerLen` bytes; null if the payload
 * is malformed or not IPv4/IPv6.
 */
function familyAndAttributes(
  payload: Buffer,
  headerLen: number,
  le: boolean,
): { family: 4 | 6; attrs: Map<number, Buffer> } | null {
  if (payload.length < headerLen) return null;
  const familyCode = payload.readUInt8(0);
  const family = familyCode === AF_INET ? 4 : familyCode === AF_INET6 ? 6 : null;
  if (family === null) return null;
  const attrs = parseAttributes(payload, headerLen, le);
  return attrs === null ? null : { family, attrs };
}

/** Decode an ifaddrmsg payload (no nlmsghdr); null if malformed or not IPv4/IPv6. */
export function parseIfAddrMessage(payload: Buffer, le: boolean = HOST_LE): IfAddrMessage | null {
  const parsed = familyAndAttributes(payload, IFADDRMSG_LEN, le);
  if (parsed === null) return null;
  const { family, attrs } = parsed;
  // IFA_LOCAL is the address of this end. IFA_ADDRESS is the same for a
  // broadcast interface, but the peer's address on a point-to-point link;
  // IPv6 sends IFA_LOCAL only in that peer case.
  const raw = attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS);
  if (raw === undefined) return null;
  const address = addressText(family, raw);
  if (address === null) return null;
  const extFlags = attrs.get(IFA_FLAGS);
  const flags = extFlags !== undefined && extFlags.length >= 4 ? u32(extFlags, 0, le) : payload.readUInt8(2);
  const labelRaw = attrs.get(IFA_LABEL);
  const label = labelRaw === undefined ? null : labelRaw.toString('latin1').replace(/\0.*$/s, '');
  // struct ifa_cacheinfo { __u32 ifa_prefered; __u32 ifa_valid; __u32 cstamp; __u32 tstamp; }
  const cache = attrs.get(IFA_CACHEINFO);
  const hasCache = cache !== undefined && cache.length >= 8;
  return {
    family,
    prefixLen: payload.readUInt8(1),
    flags,
    scope: payload.readUInt8(3),
    ifindex: u32(payload, 4, le),
    address,
    label,
    preferredLifetime: hasCache ? u32(cache, 0, le) : LIFETIME_FOREVER,
    validLifetime: hasCache ? u32(cache, 4, le) : LIFETIME_FOREVER,
  };
}

/** Decode an ifinfomsg payload's index and IFLA_IFNAME; null if malformed. */
export function parseIfInfoMessage(payload: Buffer, le: boolean = HOST_LE): { index: number; name: string } | null {
  if (payload.length < IFINFOMSG_LEN) return null;
  const attrs = parseAttributes(payload, IFINFOMSG_LEN, le);
  const name = attrs?.get(IFLA_IFNAME);
  if (name === undefined) return null;
  const index = le ? payload.readInt32LE(4) : payload.readInt32BE(4);
  return { index, name: name.toString('latin1').replace(/\0.*$/s, '') };
}

/** One RTM_NEWROUTE / RTM_DELROUTE payload, decoded (the fields default-route detection needs). */
export interface RouteMessage {
  readonly family: 4 | 6;
  readonly dstLen: number;
  /** RTA_TABLE when present (ids above 255 only travel there), else rtm_table. */
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  /** RTN_* route type. */
  readonly type: number;
  /** RTM_F_* flags. */
  readonly flags: number;
  /** RTA_GATEWAY as text; null for a route without a gateway. */
  readonly gateway: string | null;
  /** RTA_OIF; null when absent (e.g. a multipath route). */
  readonly oif: number | null;
}

/** Decode an rtmsg payload (no nlmsghdr); null if malformed or not IPv4/IPv6. */
export function parseRouteMessage(payload: Buffer, le: boolean = HOST_LE): RouteMessage | null {
  // struct rtmsg { u8 family, dst_len, src_len, tos, table, protocol, scope, type; u32 flags; }
  const parsed = familyAndAttributes(payload, RTMSG_LEN, le);
  if (parsed === null) return null;
  const { family, attrs } = parsed;
  const tableAttr = attrs.get(RTA_TABLE);
  const gatewayRaw = attrs.get(RTA_GATEWAY);
  const oifRaw = attrs.get(RTA_OIF);
  return {
    family,
    dstLen: payload.readUInt8(1),
    table: tableAttr !== undefined && tableAttr.length >= 4 ? u32(tableAttr, 0, le) : payload.readUInt8(4),
    protocol: payload.readUInt8(5),
    scope: payload.readUInt8(6),
    type: payload.readUInt8(7),
    flags: u32(payload, 8, le),
    gateway: gatewayRaw === undefined ? null : addressText(family, gatewayRaw),
    oif: oifRaw !== undefined && oifRaw.length >= 4 ? u32(oifRaw, 0, le) : null,
  };
}

/**
 * A default route of the main table (0.0.0.0/0 or ::/0, unicast): the kind
 * whose coming, going or change means the host may be on another network.
 * Everything else the route groups carry is noise here: local and broadcast
 * routes (table local), multicast and unreachable routes, cloned entries.
 */
export function isDefaultRoute(r: RouteMessage): boolean {
  return r.dstLen === 0 && r.table === RT_TABLE_MAIN && r.type === RTN_UNICAST && (r.flags & RTM_F_CLONED) === 0;
}

/** The interface name for an address: the link's name, else the IPv4 label without its alias suffix. */
export function toLocalAddress(msg: IfAddrMessage, names: ReadonlyMap<number, string>): LocalAddress {
  const ifname = names.get(msg.ifindex) ?? msg.label?.split(':')[0] ?? `if${msg.ifindex}`;
  return {
    address: msg.address,
    family: msg.family,
    ifindex: msg.ifindex,
    ifname,
    prefixLen: msg.prefixLen,
    flags: msg.flags,
    validLifetime: msg.validLifetime,
    preferredLifetime: msg.preferredLifetime,
  };
}

export interface NetlinkSourceOptions {
  /** SO_RCVBUF of the notification socket (default 1 MiB): bursts beyond it are lost (ENOBUFS). */
  readonly recvBufferSize?: number;
}

function openSocket(recvBufferSize: number): NetlinkSocket {
  return createNetlink(Protocol.ROUTE, { ref: false, recvBufferSize, sendBufferSize: 65536 });
}

export class NetlinkAddressSource implements AddressSource {
  readonly kind = 'netlink' as const;
  readonly #events: NetlinkSocket;
  readonly #query: NetlinkSocket;
  readonly #names = new Map<number, string>();
  readonly #relay = new EventRelay(() => this.close());
  /** Notifications are handled one after another, name lookups included, to keep their order. */
  #chain: Promise<void> = Promise.resolve();

  private constructor(events: NetlinkSocket, query: NetlinkSocket) {
    this.#events = events;
    this.#query = query;
    events.on('message', (msgs) => {
      for (const msg of msgs) this.#chain = this.#chain.then(() => this.#handle(msg));
    });
    events.on('error', (err) => {
      if (err.code === 'ENOBUFS') {
        // The kernel dropped notifications: re-read everything and report the
        // difference. (netlink 0.3.0's native receive loop aborts the process
        // on ENOBUFS before this runs; the large SO_RCVBUF below makes an
        // overrun unlikely, and this path is ready for a fixed package.)
        this.#chain = this.#chain.then(() => this.#resync());
      } else {
        this.#relay.fail(err);
      }
    });
    events.on('close', () => this.#relay.fail(new Error('netlink socket closed')));
    query.on('error', (err) => this.#relay.fail(err));
  }

  /** Open both sockets, join the address groups and check that dumps work. Rejects when netlink is unusable. */
  static async open(opts: NetlinkSourceOptions = {}): Promise<NetlinkAddressSource> {
    const events = openSocket(opts.recvBufferSize ?? 1 << 20);
    let query: NetlinkSocket;
    try {
      query = openSocket(1 << 20);
    } catch (err) {
      events.close();
      throw err;
    }
    const source = new NetlinkAddressSource(events, query);
    try {
      for (const group of [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE]) {
        events.addMembership(group);
      }
      await source.#loadNames();
    } catch (err) {
      await source.close();
      throw err;
    }
    return source;
  }

  async list(): Promise<LocalAddress[]> {
    this.#relay.listing();
    const list = await this.#dumpAddresses();
    this.#relay.listed(list);
    return list;
  }

  async subscribe(onEvent: (e: AddressEvent) => void, onFailure: (err: Error) => void): Promise<void> {
    this.#relay.subscribe(onEvent, onFailure, () => this.#events.ref(true));
  }

  /**
   * Route notifications arrive on the events socket with the address ones,
   * from open() on; the listener hears those that follow its registration.
   * (The kernel does not announce every IPv4 route it drops with an
   * interface or address; the address events show those moves.)
   */
  onDefaultRouteChange(listener: () => void): void {
    this.#relay.onRouteChange(listener);
  }

  async close(): Promise<void> {
    if (!this.#relay.close()) return;
    this.#events.close();
    this.#query.close();
  }

  async #handle(msg: NetlinkMessage): Promise<void> {
    if (this.#relay.closed) return;
    try {
      switch (msg.type) {
        case RTM_NEWLINK:
        case RTM_DELLINK: {
          const link = parseIfInfoMessage(msg.data);
          if (link === null) return;
          if (msg.type === RTM_NEWLINK) this.#names.set(link.index, link.name);
          else this.#names.delete(link.index);
          return;
        }
        case RTM_NEWADDR:
        case RTM_DELADDR: {
          const parsed = parseIfAddrMessage(msg.data);
          if (parsed === null) return;
          if (!this.#names.has(parsed.ifindex) && msg.type === RTM_NEWADDR) await this.#loadNames();
          this.#relay.deliver({ kind: msg.type === RTM_NEWADDR ? 'added' : 'removed', address: toLocalAddress(parsed, this.#names) });
          return;
        }
        case RTM_NEWROUTE:
        case RTM_DELROUTE: {
          // Route messages never touch the address state: they only wake the route listeners.
          const route = parseRouteMessage(msg.data);
          if (route !== null && isDefaultRoute(route)) this.#relay.routeChanged();
          return;
        }
        default:
          return;
      }
    } catch (err) {
      this.#relay.fail(err);
    }
  }

  async #resync(): Promise<void> {
    if (this.#relay.closed) return;
    try {
      const fresh = snapshotOf(await this.#dumpAddresses());
      for (const e of this.#relay.difference(fresh)) this.#relay.deliver(e);
      // Route notifications were dropped with the rest: one of them may have been a default route's.
      this.#relay.routeChanged();
    } catch (err) {
      this.#relay.fail(err);
    }
  }

  async #dump(type: number, header: Buffer): Promise<NetlinkMessage[]> {
    for (let attempt = 1; ; attempt++) {
      const [msgs] = await this.#query.request(type, header, { flags: FlagsGet.DUMP, timeout: REQUEST_TIMEOUT_MS });
      if (!msgs.some((m) => (m.flags & NLM_F_DUMP_INTR) !== 0) || attempt === DUMP_ATTEMPTS) return msgs;
    }
  }

  async #loadNames(): Promise<void> {
    // struct ifinfomsg, all zero: every family, every link.
    const msgs = await this.#dump(RTM_GETLINK, Buffer.alloc(IFINFOMSG_LEN));
    for (const m of msgs) {
      if (m.type !== RTM_NEWLINK) continue;
      const link = parseIfInfoMessage(m.data);
      if (link !== null) this.#names.set(link.index, link.name);
    }
  }

  async #dumpAddresses(): Promise<LocalAddress[]> {
    await this.#loadNames();
    // struct ifaddrmsg, all zero: AF_UNSPEC, every interface.
    const msgs = await this.#dump(RTM_GETADDR, Buffer.alloc(IFADDRMSG_LEN));
    const out: LocalAddress[] = [];
    for (const m of msgs) {
      if (m.type !== RTM_NEWADDR) continue;
      const parsed = parseIfAddrMessage(m.data);
      if (parsed !== null) out.push(toLocalAddress(parsed, this.#names));
    }
    return out;
  }
}

/** Open the rtnetlink address source; rejects when netlink cannot be used here. */
export function openNetlinkSource(opts: NetlinkSourceOptions = {}): Promise<NetlinkAddressSource> {
  return NetlinkAddressSource.open(opts);
}
