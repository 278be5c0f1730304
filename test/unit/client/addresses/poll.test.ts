import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, it } from 'node:test';

import { openAddressSource } from '../../../../src/client/addresses/index.js';
import { fromNetworkInterfaces, PollAddressSource } from '../../../../src/client/addresses/poll.js';
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
