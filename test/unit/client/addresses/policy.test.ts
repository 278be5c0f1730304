import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Cidr } from '../../../../src/net/address.js';
import { CLIENT_DEFAULTS } from '../../../../src/config/client.js';
import {
  AddressSet,
  IFA_F_DADFAILED,
  IFA_F_DEPRECATED,
  IFA_F_NODAD,
  IFA_F_PERMANENT,
  IFA_F_SECONDARY,
  IFA_F_TEMPORARY,
  isUsable,
  registrableAddresses,
  ttlFor,
  unusableReason,
  type AddressPolicy,
  type UnusableReason,
} from '../../../../src/client/addresses/policy.js';
import { diffSnapshots, LIFETIME_FOREVER, snapshotOf, type LocalAddress } from '../../../../src/client/addresses/source.js';
import { localAddress } from '../../../helpers/local-address.js';

const defaults: AddressPolicy = {
  interfaces: [],
  excludeSubnets: CLIENT_DEFAULTS['exclude-subnets'].map((c) => Cidr.parse(c) as Cidr),
};

function addr(address: string, over: Partial<LocalAddress> = {}): LocalAddress {
  return localAddress(address, IFA_F_PERMANENT, over);
}

describe('unusableReason / isUsable', () => {
  const table: [string, LocalAddress, AddressPolicy, UnusableReason | null][] = [
    ['plain IPv4', addr('192.0.2.1'), defaults, null],
    ['IPv4 secondary (0x01) is kept — FIX', addr('192.0.2.2', { flags: IFA_F_PERMANENT | IFA_F_SECONDARY }), defaults, null],
    ['IPv6 temporary (0x01) is dropped', addr('2001:db8::1', { flags: IFA_F_TEMPORARY, validLifetime: 600 }), defaults, 'temporary'],
    ['plain IPv6', addr('2001:db8::2', { flags: IFA_F_PERMANENT | IFA_F_NODAD }), defaults, null],
    ['IPv6 deprecated flag', addr('2001:db8::3', { flags: IFA_F_DEPRECATED }), defaults, 'deprecated'],
    ['IPv4 deprecated flag', addr('192.0.2.3', { flags: IFA_F_DEPRECATED }), defaults, 'deprecated'],
    ['preferred lifetime 0 without the flag', addr('2001:db8::4', { flags: 0, preferredLifetime: 0 }), defaults, 'deprecated'],
    ['IPv4 preferred lifetime 0', addr('192.0.2.4', { flags: 0, preferredLifetime: 0 }), defaults, 'deprecated'],
    ['failed DAD', addr('2001:db8::5', { flags: IFA_F_DADFAILED }), defaults, 'dad-failed'],
    ['loopback v4 excluded by default', addr('127.0.0.1', { ifname: 'lo' }), defaults, 'excluded'],
    ['127.1.2.3 in 127.0.0.0/8', addr('127.1.2.3', { ifname: 'lo' }), defaults, 'excluded'],
    ['loopback v6 excluded by default', addr('::1', { ifname: 'lo' }), defaults, 'excluded'],
    ['link-local v6 excluded', addr('fe80::1'), defaults, 'excluded'],
    ['link-local v4 excluded', addr('169.254.7.7'), defaults, 'excluded'],
    ['custom exclusion', addr('10.1.2.3'), { interfaces: [], excludeSubnets: [Cidr.parse('10.0.0.0/8') as Cidr] }, 'excluded'],
    ['no exclusions at all', addr('127.0.0.1', { ifname: 'lo' }), { interfaces: [], excludeSubnets: [] }, null],
    ['watched interface', addr('192.0.2.5', { ifname: 'eth0' }), { ...defaults, interfaces: ['eth0', 'wlan0'] }, null],
    ['unwatched interface', addr('192.0.2.6', { ifname: 'eth1' }), { ...defaults, interfaces: ['eth0'] }, 'interface'],
  ];
  for (const [name, a, policy, want] of table) {
    it(name, () => {
      assert.equal(unusableReason(a, policy), want);
      assert.equal(isUsable(a, policy), want === null);
    });
  }
});

describe('ttlFor', () => {
  const table: [string, number, number, number][] = [
    ['shorter valid lifetime wins', 600, 3600, 600],
    ['equal', 3600, 3600, 3600],
    ['longer lifetime capped at addr-ttl', 86400, 3600, 3600],
    ['infinite → addr-ttl', LIFETIME_FOREVER, 3600, 3600],
    ['zero (unknown) → addr-ttl', 0, 3600, 3600],
    ['one second', 1, 3600, 1],
  ];
  for (const [name, valid, addrTtl, want] of table) {
    it(name, () => assert.equal(ttlFor({ validLifetime: valid }, addrTtl), want));
  }
});

describe('registrableAddresses', () => {
  it('filters, deduplicates (longest TTL), and appends extra addresses', () => {
    const list = [
      addr('127.0.0.1', { ifname: 'lo' }),
      addr('2001:db8::1', { validLifetime: 300 }),
      addr('2001:db8::1', { ifindex: 3, ifname: 'eth1', validLifetime: 900 }),
      addr('2001:db8::2', { flags: IFA_F_TEMPORARY }),
      addr('192.0.2.2', { flags: IFA_F_SECONDARY }),
    ];
    assert.deepEqual(registrableAddresses(list, defaults, 3600, ['198.51.100.1', '192.0.2.2']), [
      { address: '2001:db8::1', family: 6, ttl: 900 },
      { address: '192.0.2.2', family: 4, ttl: 3600 },
      { address: '198.51.100.1', family: 4, ttl: 3600 },
    ]);
  });
});

describe('AddressSet', () => {
  it('reports new once, and treats repeats and lifetime-only changes as unchanged', () => {
    const set = new AddressSet(defaults);
    const a = addr('2001:db8::1', { validLifetime: 600, preferredLifetime: 300 });
    assert.equal(set.apply({ kind: 'added', address: a }), 'new');
    assert.equal(set.apply({ kind: 'added', address: a }), 'unchanged');
    assert.equal(set.apply({ kind: 'added', address: { ...a, validLifetime: 500, preferredLifetime: 200 } }), 'unchanged');
    assert.equal(set.size, 1);
    assert.equal(set.instances().length, 1);
    assert.equal(set.instances()[0]?.validLifetime, 500, 'the latest report is kept');
  });

  it('an address removed from one interface but still on another is not gone', () => {
    const set = new AddressSet(defaults);
    const eth0 = addr('2001:db8::1');
    const eth1 = addr('2001:db8::1', { ifindex: 3, ifname: 'eth1' });
    assert.equal(set.apply({ kind: 'added', address: eth0 }), 'new');
    assert.equal(set.apply({ kind: 'added', address: eth1 }), 'unchanged', 'deduplicated');
    assert.equal(set.size, 1);
    assert.equal(set.apply({ kind: 'removed', address: eth0 }), 'unchanged');
    assert.ok(set.has('2001:db8::1'));
    assert.equal(set.apply({ kind: 'removed', address: eth1 }), 'gone');
    assert.ok(!set.has('2001:db8::1'));
    assert.equal(set.apply({ kind: 'removed', address: eth1 }), 'unchanged', 'a repeated removal is noise');
  });

  it('still on an unwatched interface counts as present', () => {
    const set = new AddressSet({ ...defaults, interfaces: ['eth0'] });
    const eth0 = addr('192.0.2.1');
    const eth1 = addr('192.0.2.1', { ifindex: 3, ifname: 'eth1' });
    assert.equal(set.apply({ kind: 'added', address: eth1 }), 'unchanged', 'unwatched: never announced');
    assert.equal(set.apply({ kind: 'added', address: eth0 }), 'new');
    assert.equal(set.apply({ kind: 'removed', address: eth0 }), 'unchanged');
    assert.equal(set.isUsable('192.0.2.1'), false);
    assert.equal(set.apply({ kind: 'removed', address: eth1 }), 'gone');
  });

  it('never reports unusable addresses, nor their removal', () => {
    const set = new AddressSet(defaults);
    const temp = addr('2001:db8::9', { flags: IFA_F_TEMPORARY });
    const lo = addr('127.0.0.1', { ifindex: 1, ifname: 'lo' });
    assert.deepEqual(set.load([temp, lo]), []);
    assert.equal(set.apply({ kind: 'removed', address: temp }), 'unchanged');
    assert.equal(set.apply({ kind: 'removed', address: lo }), 'unchanged');
  });

  it('deprecation is left to expire; becoming preferred again is new; removal after deprecation is gone', () => {
    const set = new AddressSet(defaults);
    const a = addr('2001:db8::1', { flags: 0, validLifetime: 600, preferredLifetime: 300 });
    assert.equal(set.apply({ kind: 'added', address: a }), 'new');
    const deprecated = { ...a, flags: IFA_F_DEPRECATED, preferredLifetime: 0 };
    assert.equal(set.apply({ kind: 'added', address: deprecated }), 'unchanged');
    assert.equal(set.isUsable(a.address), false);
    assert.equal(set.apply({ kind: 'added', address: a }), 'new');
    assert.equal(set.apply({ kind: 'added', address: deprecated }), 'unchanged');
    assert.equal(set.apply({ kind: 'removed', address: deprecated }), 'gone');
  });

  it('an IPv4 secondary is new, and gone when removed', () => {
    const set = new AddressSet(defaults);
    const primary = addr('192.0.2.1');
    const secondary = addr('192.0.2.2', { flags: IFA_F_PERMANENT | IFA_F_SECONDARY });
    assert.deepEqual(set.load([primary, secondary]), ['192.0.2.1', '192.0.2.2']);
    assert.equal(set.apply({ kind: 'removed', address: secondary }), 'gone');
  });

  it('the same IPv4 address with two prefixes on one interface is two instances', () => {
    const set = new AddressSet(defaults);
    const a24 = addr('192.0.2.1', { prefixLen: 24 });
    const a16 = addr('192.0.2.1', { prefixLen: 16 });
    assert.deepEqual(set.load([a24, a16]), ['192.0.2.1']);
    assert.equal(set.apply({ kind: 'removed', address: a24 }), 'unchanged');
    assert.equal(set.apply({ kind: 'removed', address: a16 }), 'gone');
  });
});

describe('diffSnapshots', () => {
  it('reports removals, additions and flag changes, not lifetime changes', () => {
    const a = addr('192.0.2.1', { validLifetime: 100 });
    const b = addr('192.0.2.2');
    const c = addr('2001:db8::3', { flags: 0 });
    const before = snapshotOf([a, b, c]);
    const after = snapshotOf([{ ...a, validLifetime: 90 }, { ...c, flags: IFA_F_DEPRECATED }, addr('192.0.2.4')]);
    assert.deepEqual(
      diffSnapshots(before, after).map((e) => `${e.kind} ${e.address.address}`),
      ['removed 192.0.2.2', 'added 2001:db8::3', 'added 192.0.2.4'],
    );
  });
});
