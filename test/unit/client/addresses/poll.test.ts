import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir, type NetworkInterfaceInfo } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';

import { openAddressSource } from '../../../../src/client/addresses/index.js';
import { fromNetworkInterfaces, parseIpv4Routes, parseIpv6Routes, PollAddressSource } from '../../../../src/client/addresses/poll.js';
import { LIFETIME_FOREVER, type AddressEvent, type AddressSource } from '../../../../src/client/addresses/source.js';
import { logSink } from '../../../helpers/log-sink.js';

function v4(address: string, cidr: string): NetworkInterfaceInfo {
  return { address, netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr };
}
function v6(address: string, cidr: string, scopeid = 0): NetworkInterfaceInfo {
  return { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr, scopeid };
}
const indexes: Record<string, number> = { lo: 1, eth0: 2, eth1: 3 };
const ifindexOf = (name: string): number => indexes[name] ?? 0;

describe('fromNetworkInterfaces', () => {
  it('flattens the table: canonical text, prefix from cidr, alias labels folded, no lifetimes', () => {
    const list = fromNetworkInterfaces(
      {
        eth0: [v4('192.0.2.1', '192.0.2.1/24'), v6('2001:DB8:0:0::1', '2001:DB8::1/64'), v6('fe80::1', 'fe80::1/64', 2)],
        'eth0:1': [v4('192.0.2.2', '192.0.2.2/24')],
        eth9: [v4('203.0.113.9', '203.0.113.9/30')],
      },
      ifindexOf,
    );
    assert.deepEqual(
      list.map((a) => [a.ifname, a.ifindex, a.address, a.family, a.prefixLen]),
      [
        ['eth0', 2, '192.0.2.1', 4, 24],
        ['eth0', 2, '2001:db8::1', 6, 64],
        ['eth0', 2, 'fe80::1', 6, 64],
        ['eth0', 2, '192.0.2.2', 4, 24],
        ['eth9', 0, '203.0.113.9', 4, 30],
      ],
    );
    for (const a of list) {
      assert.equal(a.flags, 0);
      assert.equal(a.validLifetime, LIFETIME_FOREVER);
      assert.equal(a.preferredLifetime, LIFETIME_FOREVER);
    }
  });
});

describe('PollAddressSource', () => {
  it('reports what changed since the listing', async () => {
    let table: NodeJS.Dict<NetworkInterfaceInfo[]> = { eth0: [v4('192.0.2.1', '192.0.2.1/24')] };
    const source = new PollAddressSource({ intervalMs: 3_600_000, readInterfaces: () => table, ifindexOf });
    assert.equal(source.kind, 'poll');
    assert.deepEqual((await source.list()).map((a) => a.address), ['192.0.2.1']);
    const events: AddressEvent[] = [];
    await source.subscribe((e) => events.push(e), (err) => assert.fail(err));
    try {
      source.pollOnce();
      assert.equal(events.length, 0, 'nothing changed');
      table = {
        eth0: [v6('2001:db8::1', '2001:db8::1/64')],
        eth1: [v6('2001:db8::1', '2001:db8::1/64')],
      };
      source.pollOnce();
      assert.deepEqual(
        events.map((e) => `${e.kind} ${e.address.ifname} ${e.address.address}`),
        ['removed eth0 192.0.2.1', 'added eth0 2001:db8::1', 'added eth1 2001:db8::1'],
      );
      events.length = 0;
      source.pollOnce();
      assert.equal(events.length, 0);
    } finally {
      await source.close();
    }
  });

  it('reports a failing interface read once, and stops', async () => {
    const source = new PollAddressSource({
      intervalMs: 3_600_000,
      readInterfaces: () => {
        throw new Error('getifaddrs failed');
      },
    });
    const failures: Error[] = [];
    await source.subscribe(() => assert.fail('no events expected'), (err) => failures.push(err));
    source.pollOnce();
    source.pollOnce();
    await new Promise((r) => setImmediate(r));
    assert.equal(failures.length, 1);
    await assert.rejects(source.subscribe(() => undefined, () => undefined));
  });

  it('rejects a non-positive interval', () => {
    assert.throws(() => new PollAddressSource({ intervalMs: 0 }), RangeError);
  });
});

/** /proc/net/route as the kernel writes it: a header, tab-separated hex fields, trailing blanks. */
const ROUTE4_HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';
function route4(iface: string, dest: string, gateway: string, flags: string, mask: string, metric = '0'): string {
  return `${[iface, dest, gateway, flags, '0', '0', metric, mask, '0', '0', '0'].join('\t')}   `;
}
/** One /proc/net/ipv6_route line: dest plen src plen next_hop metric refcnt use flags iface. */
function route6(dest: string, plen: string, nextHop: string, flags: string, iface: string): string {
  return [dest, plen, '0'.repeat(32), '00', nextHop, '00000400', '00000001', '00000000', flags, iface.padStart(8)].join(' ');
}
const ZERO6 = '0'.repeat(32);
const GW6 = 'fe800000000000000000000000000001';

describe('parseIpv4Routes', () => {
  it('finds the default routes that are up, gateway kept as the file shows it', () => {
    const text = [
      ROUTE4_HEADER,
      route4('eth0', '00000000', '010200C0', '0003', '00000000'),
      route4('eth0', '000200C0', '00000000', '0001', '00FFFFFF'),
      route4('wlan0', '00000000', '00000000', '0001', '00000000'),
      // A default with mask /0 but flagged down, a rejecting one, a /1 half of a VPN's split default.
      route4('eth1', '00000000', '01020304', '0002', '00000000'),
      route4('*', '00000000', '00000000', '0201', '00000000'),
      route4('tun0', '00000000', '00000000', '0001', '00000080'),
      '',
    ].join('\n');
    assert.deepEqual(parseIpv4Routes(text), [
      { family: 4, iface: 'eth0', gateway: '010200c0' },
      { family: 4, iface: 'wlan0', gateway: '00000000' },
    ]);
  });

  it('reads a header-only or empty file as no routes', () => {
    assert.deepEqual(parseIpv4Routes(`${ROUTE4_HEADER}\n`), []);
    assert.deepEqual(parseIpv4Routes(''), []);
  });
});

describe('parseIpv6Routes', () => {
  it('finds ::/0 routes that are up, leaving out the kernel reject route and other prefixes', () => {
    const text = [
      route6('fd000000000000000000000000000000', '40', ZERO6, '00000001', 'eth0'),
      route6(ZERO6, '00', GW6, '00000003', 'eth0'),
      route6('00000000000000000000000000000001', '80', ZERO6, '80200001', 'lo'),
      route6(ZERO6, '00', ZERO6, '00200200', 'lo'),
      route6('ff000000000000000000000000000000', '08', ZERO6, '00000001', 'eth0'),
      '',
    ].join('\n');
    assert.deepEqual(parseIpv6Routes(text), [{ family: 6, iface: 'eth0', gateway: GW6 }]);
  });
});

describe('PollAddressSource default routes', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'nsregc-routes-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;

  /** A poll source over temp route files, subscribed, with a counting route listener. */
  async function routed(v4: string[], v6: string[] | null): Promise<{
    source: PollAddressSource;
    calls: () => number;
    write4: (lines: string[]) => void;
    write6: (lines: string[] | null) => void;
  }> {
    n++;
    const p4 = path.join(dir, `route-${n}`);
    const p6 = path.join(dir, `ipv6_route-${n}`);
    const write4 = (lines: string[]): void => writeFileSync(p4, [ROUTE4_HEADER, ...lines, ''].join('\n'));
    const write6 = (lines: string[] | null): void => {
      if (lines === null) rmSync(p6, { force: true });
      else writeFileSync(p6, [...lines, ''].join('\n'));
    };
    write4(v4);
    write6(v6);
    const source = new PollAddressSource({
      intervalMs: 3_600_000,
      readInterfaces: () => ({}),
      ipv4RoutesPath: p4,
      ipv6RoutesPath: p6,
    });
    let count = 0;
    source.onDefaultRouteChange(() => count++);
    await source.subscribe(() => assert.fail('no address events expected'), (err) => assert.fail(err));
    return { source, calls: () => count, write4, write6 };
  }

  const def4 = (iface: string, gw: string): string => route4(iface, '00000000', gw, '0003', '00000000');
  const def6 = (iface: string, gw: string): string => route6(ZERO6, '00', gw, '00000003', iface);

  it('tells the listener when a default route appears, changes gateway or interface, or goes away', async () => {
    const { source, calls, write4, write6 } = await routed([], null);
    try {
      source.pollOnce();
      assert.equal(calls(), 0, 'nothing changed since the listener was added');
      write4([def4('eth0', '010200C0')]);
      source.pollOnce();
      assert.equal(calls(), 1, 'IPv4 default appeared');
      source.pollOnce();
      assert.equal(calls(), 1, 'the same routes again');
      write4([def4('eth0', '020200C0')]);
      source.pollOnce();
      assert.equal(calls(), 2, 'gateway changed');
      write4([def4('wlan0', '020200C0')]);
      source.pollOnce();
      assert.equal(calls(), 3, 'interface changed');
      write6([def6('wlan0', GW6)]);
      source.pollOnce();
      assert.equal(calls(), 4, 'IPv6 default appeared');
      write4([]);
      source.pollOnce();
      assert.equal(calls(), 5, 'IPv4 default went away');
      write6(null);
      source.pollOnce();
      assert.equal(calls(), 6, 'a missing ipv6_route reads as no routes');
    } finally {
      await source.close();
    }
  });

  it('ignores non-default routes, metrics and order', async () => {
    const { source, calls, write4, write6 } = await routed([def4('eth0', '010200C0')], [def6('eth0', GW6)]);
    try {
      write4([route4('eth0', '006433C6', '00000000', '0001', '00FFFFFF'), def4('eth0', '010200C0')]);
      write6([route6('20010db8000000000000000000000000', '40', ZERO6, '00000001', 'eth0'), def6('eth0', GW6)]);
      source.pollOnce();
      write4([route4('eth0', '00000000', '010200C0', '0003', '00000000', '600')]);
      source.pollOnce();
      assert.equal(calls(), 0);
    } finally {
      await source.close();
    }
  });

  it('treats unreadable route files as no routes, not as a failure', async () => {
    const { source, calls, write4 } = await routed([def4('eth0', '010200C0')], null);
    try {
      unlinkSync(path.join(dir, `route-${n}`));
      source.pollOnce();
      assert.equal(calls(), 1, 'the default route is gone');
      write4([def4('eth0', '010200C0')]);
      source.pollOnce();
      assert.equal(calls(), 2);
    } finally {
      await source.close();
    }
  });

  it('tells nobody once closed', async () => {
    const { source, calls, write4 } = await routed([], null);
    await source.close();
    write4([def4('eth0', '010200C0')]);
    source.pollOnce();
    assert.equal(calls(), 0);
  });
});

describe('openAddressSource', () => {
  it('falls back to polling and says why, with the interval', async () => {
    const { logger, lines } = logSink();
    const source = await openAddressSource(logger, {
      openNetlink: () => Promise.reject(Object.assign(new Error('socket: operation not permitted'), { code: 'EPERM' })),
      poll: { intervalMs: 15_000 },
    });
    try {
      assert.equal(source.kind, 'poll');
      const warn = lines.find((l) => l.level === 40);
      assert.ok(warn, JSON.stringify(lines));
      assert.equal(
        warn.msg,
        'netlink unavailable (EPERM: socket: operation not permitted); falling back to polling the interface list every 15s',
      );
      assert.equal(warn['source'], 'poll');
    } finally {
      await source.close();
    }
  });

  it('uses rtnetlink when it opens (real kernel)', async () => {
    const { logger, lines } = logSink();
    const source: AddressSource = await openAddressSource(logger);
    try {
      assert.equal(source.kind, 'netlink');
      assert.ok(!lines.some((l) => l.level >= 40), JSON.stringify(lines));
      const list = await source.list();
      assert.ok(list.some((a) => a.address === '127.0.0.1' && a.ifname === 'lo'), JSON.stringify(list));
    } finally {
      await source.close();
    }
  });

  it('polls when told to', async () => {
    const { logger } = logSink();
    const source = await openAddressSource(logger, { forcePoll: true });
    assert.equal(source.kind, 'poll');
    await source.close();
  });
});
