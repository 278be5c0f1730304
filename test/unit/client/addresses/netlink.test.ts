import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  AF_INET,
  AF_INET6,
  IFA_ADDRESS,
  IFA_CACHEINFO,
  IFA_FLAGS,
  IFA_LABEL,
  IFA_LOCAL,
  IFLA_IFNAME,
  isDefaultRoute,
  parseAttributes,
  parseIfAddrMessage,
  parseIfInfoMessage,
  parseRouteMessage,
  RT_TABLE_MAIN,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_TABLE,
  RTM_F_CLONED,
  RTN_UNICAST,
  toLocalAddress,
  type RouteMessage,
} from '../../../../src/client/addresses/netlink.js';
import { IFA_F_PERMANENT, IFA_F_SECONDARY } from '../../../../src/client/addresses/policy.js';
import { LIFETIME_FOREVER } from '../../../../src/client/addresses/source.js';

/** Byte builders for netlink payloads, in either byte order (netlink uses the host's). */
function u16(v: number, le: boolean): Buffer {
  const b = Buffer.alloc(2);
  if (le) b.writeUInt16LE(v);
  else b.writeUInt16BE(v);
  return b;
}
function u32(v: number, le: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(v);
  else b.writeUInt32BE(v);
  return b;
}
/** struct rtattr + payload + padding to 4 bytes. */
function attr(type: number, data: Buffer, le = true): Buffer {
  const len = 4 + data.length;
  return Buffer.concat([u16(len, le), u16(type, le), data, Buffer.alloc((4 - (len % 4)) % 4)]);
}
/** struct ifaddrmsg. */
function ifaddrmsg(family: number, prefixLen: number, flags: number, scope: number, index: number, le = true): Buffer {
  return Buffer.concat([Buffer.from([family, prefixLen, flags, scope]), u32(index, le)]);
}
function cacheinfo(preferred: number, valid: number, le = true): Buffer {
  return Buffer.concat([u32(preferred, le), u32(valid, le), u32(1234, le), u32(5678, le)]);
}
/** struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, then u32 flags. */
function rtmsg(
  f: { family: number; dstLen: number; table: number; type: number; protocol?: number; scope?: number; flags?: number },
  le = true,
): Buffer {
  return Buffer.concat([
    Buffer.from([f.family, f.dstLen, 0, 0, f.table, f.protocol ?? 3, f.scope ?? 0, f.type]),
    u32(f.flags ?? 0, le),
  ]);
}
const v4 = (s: string): Buffer => Buffer.from(s.split('.').map(Number));
const cstr = (s: string): Buffer => Buffer.from(`${s}\0`, 'latin1');

describe('parseIfAddrMessage', () => {
  it('decodes an IPv4 address with label, lifetimes and the 8-bit flags', () => {
    const payload = Buffer.concat([
      ifaddrmsg(AF_INET, 24, IFA_F_SECONDARY, 0, 3),
      attr(IFA_ADDRESS, v4('192.0.2.11')),
      attr(IFA_LOCAL, v4('192.0.2.11')),
      attr(IFA_LABEL, cstr('eth0:1')),
      attr(IFA_CACHEINFO, cacheinfo(50, 100)),
    ]);
    assert.deepEqual(parseIfAddrMessage(payload, true), {
      family: 4,
      prefixLen: 24,
      flags: IFA_F_SECONDARY,
      scope: 0,
      ifindex: 3,
      address: '192.0.2.11',
      label: 'eth0:1',
      preferredLifetime: 50,
      validLifetime: 100,
    });
  });

  it('takes IFA_LOCAL, not the peer in IFA_ADDRESS, on an IPv4 point-to-point link', () => {
    const payload = Buffer.concat([
      ifaddrmsg(AF_INET, 32, 0x80, 0, 7),
      attr(IFA_ADDRESS, v4('198.51.100.1')),
      attr(IFA_LOCAL, v4('10.64.0.2')),
    ]);
    assert.equal(parseIfAddrMessage(payload, true)?.address, '10.64.0.2');
  });

  it('decodes an IPv6 address from IFA_ADDRESS, canonical text, IFA_FLAGS overriding ifa_flags', () => {
    const raw = Buffer.from('20010db8000000000000000000000010', 'hex');
    const payload = Buffer.concat([
      // ifa_flags holds only the low 8 bits; IFA_FLAGS adds IFA_F_MANAGETEMPADDR (0x100).
      ifaddrmsg(AF_INET6, 64, 0x80, 0, 4),
      attr(IFA_ADDRESS, raw),
      attr(IFA_CACHEINFO, cacheinfo(LIFETIME_FOREVER, LIFETIME_FOREVER)),
      attr(IFA_FLAGS, u32(0x180, true)),
    ]);
    const m = parseIfAddrMessage(payload, true);
    assert.equal(m?.address, '2001:db8::10');
    assert.equal(m?.family, 6);
    assert.equal(m?.flags, 0x180);
    assert.equal(m?.label, null);
    assert.equal(m?.validLifetime, LIFETIME_FOREVER);
  });

  it('reads big-endian hosts the same way when told the byte order', () => {
    const payload = Buffer.concat([
      ifaddrmsg(AF_INET6, 64, 0, 0, 0x01020304, false),
      attr(IFA_ADDRESS, Buffer.from('fe800000000000000000000000000001', 'hex'), false),
      attr(IFA_CACHEINFO, cacheinfo(0, 7200, false), false),
      attr(IFA_FLAGS, u32(0x20, false), false),
    ]);
    const m = parseIfAddrMessage(payload, false);
    assert.equal(m?.ifindex, 0x01020304);
    assert.equal(m?.address, 'fe80::1');
    assert.equal(m?.preferredLifetime, 0);
    assert.equal(m?.validLifetime, 7200);
    assert.equal(m?.flags, 0x20);
  });

  it('treats a missing IFA_CACHEINFO as forever', () => {
    const payload = Buffer.concat([ifaddrmsg(AF_INET, 8, IFA_F_PERMANENT, 254, 1), attr(IFA_LOCAL, v4('127.0.0.1'))]);
    const m = parseIfAddrMessage(payload, true);
    assert.equal(m?.validLifetime, LIFETIME_FOREVER);
    assert.equal(m?.preferredLifetime, LIFETIME_FOREVER);
    assert.equal(m?.scope, 254);
  });

  const bad: [string, Buffer][] = [
    ['shorter than ifaddrmsg', Buffer.from([AF_INET, 24, 0, 0])],
    ['not IPv4/IPv6 (AF_PACKET)', Buffer.concat([ifaddrmsg(17, 0, 0, 0, 1), attr(IFA_ADDRESS, v4('192.0.2.1'))])],
    ['no address attribute', Buffer.concat([ifaddrmsg(AF_INET, 24, 0, 0, 1), attr(IFA_LABEL, cstr('eth0'))])],
    ['IPv4 address of the wrong width', Buffer.concat([ifaddrmsg(AF_INET, 24, 0, 0, 1), attr(IFA_LOCAL, Buffer.alloc(16))])],
    ['IPv6 address of the wrong width', Buffer.concat([ifaddrmsg(AF_INET6, 64, 0, 0, 1), attr(IFA_ADDRESS, v4('192.0.2.1'))])],
    [
      'attribute running past the end',
      Buffer.concat([ifaddrmsg(AF_INET, 24, 0, 0, 1), attr(IFA_LOCAL, v4('192.0.2.1')).subarray(0, 6)]),
    ],
  ];
  for (const [name, payload] of bad) {
    it(`rejects: ${name}`, () => assert.equal(parseIfAddrMessage(payload, true), null));
  }
});

describe('parseAttributes', () => {
  it('walks padded attributes, strips the NESTED/BYTEORDER bits, keeps the last duplicate', () => {
    const buf = Buffer.concat([
      Buffer.alloc(4),
      attr(1, Buffer.from([1])),
      attr(0x8000 | 2, Buffer.from([2, 2])),
      attr(1, Buffer.from([3, 3, 3])),
    ]);
    const attrs = parseAttributes(buf, 4, true);
    assert.deepEqual(attrs?.get(1), Buffer.from([3, 3, 3]));
    assert.deepEqual(attrs?.get(2), Buffer.from([2, 2]));
    assert.equal(attrs?.size, 2);
  });

  it('rejects a length below the header size', () => {
    assert.equal(parseAttributes(Buffer.concat([u16(2, true), u16(1, true)]), 0, true), null);
  });
});

describe('parseIfInfoMessage', () => {
  it('reads the index and IFLA_IFNAME', () => {
    const ifinfomsg = Buffer.concat([Buffer.from([0, 0]), u16(1, true), u32(5, true), u32(0x1003, true), u32(0, true)]);
    const payload = Buffer.concat([ifinfomsg, attr(4, u32(1500, true)), attr(IFLA_IFNAME, cstr('veth0'))]);
    assert.deepEqual(parseIfInfoMessage(payload, true), { index: 5, name: 'veth0' });
  });

  it('returns null without a name', () => {
    assert.equal(parseIfInfoMessage(Buffer.alloc(16), true), null);
  });
});

describe('toLocalAddress', () => {
  const base = {
    family: 4 as const,
    prefixLen: 24,
    flags: 0,
    scope: 0,
    ifindex: 7,
    address: '192.0.2.1',
    label: null,
    validLifetime: 10,
    preferredLifetime: 5,
  };
  it('names the interface from the link table first', () => {
    assert.equal(toLocalAddress({ ...base, label: 'eth0:1' }, new Map([[7, 'eth0']])).ifname, 'eth0');
  });
  it('falls back to the IPv4 label without its alias suffix, then to the index', () => {
    assert.equal(toLocalAddress({ ...base, label: 'eth0:1' }, new Map()).ifname, 'eth0');
    assert.equal(toLocalAddress(base, new Map()).ifname, 'if7');
  });
  it('carries flags and lifetimes through', () => {
    const a = toLocalAddress(base, new Map([[7, 'eth0']]));
    assert.deepEqual(a, {
      address: '192.0.2.1',
      family: 4,
      ifindex: 7,
      ifname: 'eth0',
      prefixLen: 24,
      flags: 0,
      validLifetime: 10,
      preferredLifetime: 5,
    });
  });
});

/** RT_TABLE_COMPAT: the header's table when the real id (above 255) is in RTA_TABLE. */
const RT_TABLE_COMPAT = 252;
/** The rtmsg of a main-table IPv4 default route. */
const mainDefault4 = (): Buffer => rtmsg({ family: AF_INET, dstLen: 0, table: RT_TABLE_MAIN, type: RTN_UNICAST });

describe('parseRouteMessage', () => {
  it('decodes an IPv4 default route: gateway, output interface, table from the header', () => {
    const payload = Buffer.concat([
      rtmsg({ family: AF_INET, dstLen: 0, table: RT_TABLE_MAIN, type: RTN_UNICAST, protocol: 4 }),
      attr(RTA_GATEWAY, v4('192.0.2.1')),
      attr(RTA_OIF, u32(3, true)),
    ]);
    const r = parseRouteMessage(payload, true);
    assert.deepEqual(r, {
      family: 4,
      dstLen: 0,
      table: RT_TABLE_MAIN,
      protocol: 4,
      scope: 0,
      type: RTN_UNICAST,
      flags: 0,
      gateway: '192.0.2.1',
      oif: 3,
    });
    assert.ok(r !== null && isDefaultRoute(r));
  });

  it('decodes an IPv6 default route, RTA_TABLE overriding the header table', () => {
    const payload = Buffer.concat([
      rtmsg({ family: AF_INET6, dstLen: 0, table: RT_TABLE_COMPAT, type: RTN_UNICAST }),
      attr(RTA_TABLE, u32(RT_TABLE_MAIN, true)),
      attr(RTA_GATEWAY, Buffer.from('fe800000000000000000000000000001', 'hex')),
      attr(RTA_OIF, u32(2, true)),
    ]);
    const r = parseRouteMessage(payload, true);
    assert.equal(r?.family, 6);
    assert.equal(r?.table, RT_TABLE_MAIN);
    assert.equal(r?.gateway, 'fe80::1');
    assert.equal(r?.oif, 2);
    assert.ok(r !== null && isDefaultRoute(r));
  });

  it('reads a table id above 255 from RTA_TABLE (big-endian host too)', () => {
    const payload = Buffer.concat([
      rtmsg({ family: AF_INET, dstLen: 0, table: RT_TABLE_COMPAT, type: RTN_UNICAST, flags: 0x01020304 }, false),
      attr(RTA_TABLE, u32(51820, false), false),
      attr(RTA_OIF, u32(0x0a0b0c0d, false), false),
    ]);
    const r = parseRouteMessage(payload, false);
    assert.equal(r?.table, 51820);
    assert.equal(r?.flags, 0x01020304);
    assert.equal(r?.oif, 0x0a0b0c0d);
    assert.equal(r?.gateway, null);
    assert.ok(r !== null && !isDefaultRoute(r), 'a default route of another table is policy routing, not the main default');
  });

  it('leaves gateway and interface null when absent (a device route without gateway)', () => {
    const r = parseRouteMessage(rtmsg({ family: AF_INET, dstLen: 0, table: RT_TABLE_MAIN, type: RTN_UNICAST, scope: 253 }), true);
    assert.equal(r?.gateway, null);
    assert.equal(r?.oif, null);
    assert.equal(r?.scope, 253);
    assert.ok(r !== null && isDefaultRoute(r));
  });

  const bad: [string, Buffer][] = [
    ['shorter than rtmsg', Buffer.from([AF_INET, 0, 0, 0, RT_TABLE_MAIN, 3, 0, RTN_UNICAST])],
    ['not IPv4/IPv6 (AF_MPLS)', rtmsg({ family: 28, dstLen: 0, table: RT_TABLE_MAIN, type: RTN_UNICAST })],
    [
      'attribute running past the end',
      Buffer.concat([mainDefault4(), attr(RTA_OIF, u32(2, true)).subarray(0, 6)]),
    ],
  ];
  for (const [name, payload] of bad) {
    it(`rejects: ${name}`, () => assert.equal(parseRouteMessage(payload, true), null));
  }

  it('gives a null gateway for one of the wrong width', () => {
    const payload = Buffer.concat([mainDefault4(), attr(RTA_GATEWAY, Buffer.alloc(16))]);
    assert.equal(parseRouteMessage(payload, true)?.gateway, null);
  });
});

describe('isDefaultRoute', () => {
  const main: RouteMessage = {
    family: 4,
    dstLen: 0,
    table: RT_TABLE_MAIN,
    protocol: 3,
    scope: 0,
    type: RTN_UNICAST,
    flags: 0,
    gateway: '192.0.2.1',
    oif: 2,
  };
  it('accepts a unicast /0 of the main table, either family', () => {
    assert.ok(isDefaultRoute(main));
    assert.ok(isDefaultRoute({ ...main, family: 6, gateway: 'fe80::1' }));
  });
  // Table 255 is RT_TABLE_LOCAL; types 2, 3, 5, 7 are RTN_LOCAL, RTN_BROADCAST, RTN_MULTICAST, RTN_UNREACHABLE.
  const noise: [string, RouteMessage][] = [
    ['a prefix route (198.51.100.0/24)', { ...main, dstLen: 24, gateway: null }],
    ['a local-table host route', { ...main, dstLen: 32, table: 255, type: 2 }],
    ['a local-table broadcast route', { ...main, dstLen: 32, table: 255, type: 3 }],
    ['IPv6 multicast (ff00::/8)', { ...main, family: 6, dstLen: 8, table: 255, type: 5 }],
    ['an unreachable default', { ...main, type: 7, gateway: null }],
    ['a cloned entry', { ...main, flags: RTM_F_CLONED }],
    ['a default route of another table', { ...main, table: 100 }],
  ];
  for (const [name, r] of noise) {
    it(`ignores ${name}`, () => assert.equal(isDefaultRoute(r), false));
  }
});
