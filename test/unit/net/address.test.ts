import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Cidr, HOST_PREFIX, formatHostPort, formatIp, inNets, isCanonicalIPv4, normalizeIp, parseIp, plainAddress, prefixKey } from '../../../src/net/address.js';

function cidr(s: string): Cidr {
  const c = Cidr.parse(s);
  assert.ok(c, `${s} should parse`);
  return c;
}

describe('Cidr', () => {
  it('clears host bits like Go net.ParseCIDR', () => {
    assert.equal(cidr('127.0.0.1/8').toString(), '127.0.0.0/8');
    assert.equal(cidr('fe80::1/10').toString(), 'fe80::/10');
    assert.equal(cidr('2001:DB8:0:0:1::/48').toString(), '2001:db8::/48');
  });

  it('treats a bare address as a host prefix', () => {
    assert.equal(cidr('192.0.2.1').toString(), '192.0.2.1/32');
    assert.equal(cidr('::1').toString(), '::1/128');
  });

  const table: [string, string, boolean][] = [
    ['10.0.0.0/8', '10.255.1.2', true],
    ['10.0.0.0/8', '11.0.0.1', false],
    ['0.0.0.0/0', '203.0.113.9', true],
    ['fd00::/8', 'fd12:3456::1', true],
    ['fd00::/8', 'fe80::1', false],
    ['::/0', '2001:db8::1', true],
    ['::1/128', '::1', true],
    ['::1/128', '::2', false],
    ['127.0.0.0/8', '::ffff:127.0.0.1', true], // dual-stack socket view of an IPv4 peer
    ['127.0.0.0/8', '::ffff:10.0.0.1', false],
    ['::ffff:0:0/96', '192.0.2.1', true],
    ['2001:db8::/32', '192.0.2.1', false],
    ['10.0.0.0/8', 'not-an-address', false],
    ['2001:db8::/32', '2001:db8::192.0.2.1', true],
  ];
  for (const [net, addr, expect] of table) {
    it(`${net} ${expect ? 'contains' : 'does not contain'} ${addr}`, () => {
      assert.equal(cidr(net).contains(addr), expect);
    });
  }

  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0/8', '10.0.0.0/', '10.0.0.0/08', 'fe80::1%eth0/64', '1:2:3:4:5:6:7:8:9/64', '1::2::3/64', 'example.org/24', '256.0.0.0/8', '010.0.0.0/8']) {
    it(`rejects ${bad}`, () => {
      assert.equal(Cidr.parse(bad), null);
    });
  }

  it('inNets and address normalisation', () => {
    const nets = [cidr('10.0.0.0/8'), cidr('fd00::/8')];
    assert.equal(inNets('10.1.1.1', nets), true);
    assert.equal(inNets('192.168.1.1', nets), false);
    assert.equal(normalizeIp('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
    assert.equal(normalizeIp('2001:db8:0:1:0:0:0:1'), '2001:db8:0:1::1');
    assert.equal(normalizeIp('::ffff:1.2.3.4'), '::ffff:102:304');
    assert.equal(parseIp('1.2.3'), null);
  });
});

describe('source keys, socket addresses and host:port', () => {
  it('prefixKey groups an address by the prefix lengths asked for', () => {
    assert.equal(prefixKey('192.0.2.77', HOST_PREFIX), '192.0.2.77');
    assert.equal(prefixKey('192.0.2.77', { v4: 24, v6: 56 }), '192.0.2.0/24');
    assert.equal(prefixKey('2001:db8:1:2::1', HOST_PREFIX), '2001:db8:1:2::/64');
    assert.equal(prefixKey('2001:DB8:1:2:ffff::9', HOST_PREFIX), prefixKey('2001:db8:1:2::1', HOST_PREFIX));
    assert.notEqual(prefixKey('2001:db8:1:3::1', HOST_PREFIX), prefixKey('2001:db8:1:2::1', HOST_PREFIX));
    assert.equal(prefixKey('2001:db8:1:23ff::9', { v4: 24, v6: 56 }), '2001:db8:1:2300::/56');
    assert.equal(prefixKey('::1', { v4: 32, v6: 128 }), '::1');
  });

  it('prefixKey counts an IPv4-mapped address as its IPv4 address; text that is no address is its own key', () => {
    assert.equal(prefixKey('::ffff:192.0.2.1', HOST_PREFIX), '192.0.2.1');
    assert.equal(prefixKey('::ffff:192.0.2.1', { v4: 24, v6: 56 }), '192.0.2.0/24');
    assert.equal(prefixKey('', HOST_PREFIX), '');
    assert.equal(prefixKey('fe80::1%eth0', HOST_PREFIX), 'fe80::1%eth0');
  });

  it('plainAddress shows an IPv4 peer of a dual-stack socket as IPv4', () => {
    assert.equal(plainAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(plainAddress('::FFFF:7f00:1'), '127.0.0.1');
    assert.equal(plainAddress('2001:db8::1'), '2001:db8::1');
    assert.equal(plainAddress('192.0.2.1'), '192.0.2.1');
    assert.equal(plainAddress(undefined), '');
  });

  it('formatHostPort brackets IPv6 hosts only', () => {
    assert.equal(formatHostPort('192.0.2.1', 53), '192.0.2.1:53');
    assert.equal(formatHostPort('2001:db8::1', 5353), '[2001:db8::1]:5353');
    assert.equal(formatHostPort('ns.example', 53), 'ns.example:53');
  });
});

describe('parseIp memo', () => {
  it('stays correct past its bound, for addresses and garbage alike', () => {
    for (let i = 0; i < 10_000; i++) {
      const v4 = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      assert.deepEqual(parseIp(v4), { family: 4, value: BigInt(((10 << 24) >>> 0) + i) });
      assert.equal(parseIp(`not-an-address-${i}`), null);
    }
    assert.equal(prefixKey('192.0.2.7', HOST_PREFIX), '192.0.2.7');
    assert.equal(prefixKey('::ffff:192.0.2.7', HOST_PREFIX), '192.0.2.7');
    assert.equal(prefixKey('2001:db8::7', HOST_PREFIX), '2001:db8::/64');
  });
});

describe('parseIp of dotted decimal', () => {
  it('gives the value ip-address gives, at the edges and in between', async () => {
    const { Address4 } = await import('ip-address');
    for (const s of ['0.0.0.0', '255.255.255.255', '127.1.2.3', '128.0.0.1', '10.200.3.44', '192.168.0.1', '1.0.0.0']) {
      assert.deepEqual(parseIp(s), { family: 4, value: new Address4(s).bigInt() }, s);
    }
    for (const s of ['256.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', ' 1.2.3.4']) assert.equal(parseIp(s), null, s);
  });
});

describe('isCanonicalIPv4', () => {
  it('holds exactly for the dotted decimal formatIp writes', () => {
    const cases = ['0.0.0.0', '192.0.2.1', '255.255.255.255', '10.0.0.010', '01.2.3.4', '256.1.1.1', '1.2.3', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4/32', '::ffff:1.2.3.4', '', '1..2.3'];
    for (const s of cases) {
      const ip = parseIp(s);
      assert.equal(isCanonicalIPv4(s), ip !== null && ip.family === 4 && formatIp(ip) === s, s);
    }
    assert.equal(isCanonicalIPv4('192.0.2.1'), true);
    assert.equal(isCanonicalIPv4('10.0.0.010'), false);
  });
});
