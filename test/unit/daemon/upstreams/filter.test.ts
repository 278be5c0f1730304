import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Cidr } from '../../../../src/net/address.js';
import type { AddrRecord } from '../../../../src/daemon/records.js';
import { filterChange, filterRecords, maxTtlSeconds } from '../../../../src/daemon/upstreams/filter.js';

function cidr(s: string): Cidr {
  const c = Cidr.parse(s);
  assert.ok(c, s);
  return c;
}

const a = (address: string, ttl: number, name = 'h.dyn.example.'): AddrRecord => ({
  name,
  type: address.includes(':') ? 'AAAA' : 'A',
  address,
  ttl,
});

describe('record filter', () => {
  const f = { recordTtl: 600_500, excludeNets: [cidr('10.0.0.0/8'), cidr('fd00::/8')] };

  it('turns record-ttl milliseconds into whole seconds', () => {
    assert.equal(maxTtlSeconds(f), 600);
  });

  it('clamps TTLs above record-ttl and keeps lower ones', () => {
    const out = filterRecords([a('192.0.2.1', 3600), a('192.0.2.2', 60)], f);
    assert.deepEqual(
      out.map((r) => r.ttl),
      [600, 60],
    );
  });

  it('drops records inside exclude-nets, v4 and v6', () => {
    const out = filterRecords([a('10.1.2.3', 60), a('192.0.2.1', 60), a('fd12::1', 60), a('2001:db8::1', 60)], f);
    assert.deepEqual(
      out.map((r) => r.address),
      ['192.0.2.1', '2001:db8::1'],
    );
  });

  it('filters additions but passes removals and delete-names whole (an address excluded after it was published must still go)', () => {
    const c = filterChange(
      {
        add: [a('10.0.0.1', 60)],
        remove: [a('10.0.0.2', 60)],
        removeNames: [{ name: 'x.dyn.example.', addresses: [a('10.0.0.1', 60), a('192.0.2.9', 9000)] }],
      },
      f,
    );
    assert.equal(c.add.length, 0);
    assert.deepEqual(c.remove, [a('10.0.0.2', 60)]);
    assert.equal(c.removeNames.length, 1);
    assert.deepEqual(c.removeNames[0].addresses, [a('10.0.0.1', 60), a('192.0.2.9', 9000)]);
  });
});
