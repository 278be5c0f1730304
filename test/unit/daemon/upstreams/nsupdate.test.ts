import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RRClass } from '../../../../src/dns/constants.js';
import { encodeMessage, type ResourceRecord } from '../../../../src/dns/message.js';
import { signTsig, type TsigKey } from '../../../../src/dns/tsig.js';
import { addRecord, buildUpdate } from '../../../../src/dns/update.js';
import type { AddrRecord } from '../../../../src/daemon/records.js';
import {
  forwardUpdates,
  MAX_TCP_UPDATE,
  MAX_UDP_UPDATE,
  reverseUpdates,
  splitUpdate,
  tsigOverhead,
} from '../../../../src/daemon/upstreams/nsupdate.js';

const key: TsigKey = { name: 'nsregd-key.', algorithm: 'hmac-sha256.', secret: Buffer.alloc(32, 7) };
const ZONE = 'dyn.example.';

function rec(i: number): AddrRecord {
  return { name: `host-${i}.${ZONE}`, type: 'A', address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, ttl: 300 };
}

function signedSize(zone: string, updates: ResourceRecord[]): number {
  return signTsig(encodeMessage(buildUpdate({ id: 1, zone, updates })), key, 1_700_000_000).message.length;
}

describe('tsigOverhead', () => {
  it('is exactly what signing adds', () => {
    const msg = encodeMessage(buildUpdate({ id: 9, zone: ZONE, updates: [addRecord({ name: 'a.dyn.example.', type: 'A', class: 1, ttl: 1, data: '192.0.2.1' })] }));
    assert.equal(signTsig(msg, key, 1_700_000_000).message.length - msg.length, tsigOverhead(key));
    const sha1 = { ...key, algorithm: 'hmac-sha1.' };
    assert.equal(signTsig(msg, sha1, 1).message.length - msg.length, tsigOverhead(sha1));
  });
});

describe('splitUpdate', () => {
  const updates = Array.from({ length: 2000 }, (_, i) => addRecord({ name: rec(i).name, type: 'A', class: 1, ttl: 300, data: rec(i).address }));

  for (const limit of [MAX_UDP_UPDATE, MAX_TCP_UPDATE]) {
    it(`splits 2,000 records into messages of at most ${limit} octets, in order, none lost`, () => {
      const groups = splitUpdate(ZONE, updates, limit, tsigOverhead(key));
      assert.ok(groups.length > 1, 'expected several messages');
      for (const g of groups) assert.ok(signedSize(ZONE, g) <= limit, `message of ${signedSize(ZONE, g)} octets`);
      assert.deepEqual(groups.flat(), updates);
      // Greedy packing: adding the next group's first RR would have overflowed.
      for (let i = 0; i + 1 < groups.length; i++) {
        assert.ok(signedSize(ZONE, [...groups[i], groups[i + 1][0]]) > limit);
      }
    });
  }

  it('keeps one message when everything fits', () => {
    assert.equal(splitUpdate(ZONE, updates.slice(0, 3), MAX_UDP_UPDATE, tsigOverhead(key)).length, 1);
    assert.deepEqual(splitUpdate(ZONE, [], MAX_UDP_UPDATE, 0), []);
  });

  it('gives an RR too large for the limit a message of its own', () => {
    const big = addRecord({ name: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${ZONE}`, type: 'A', class: 1, ttl: 1, data: '192.0.2.1' });
    const groups = splitUpdate(ZONE, [updates[0], big, updates[1]], 250, tsigOverhead(key));
    assert.deepEqual(groups, [[updates[0]], [big], [updates[1]]]);
  });
});

describe('forwardUpdates', () => {
  it('maps removed names, removals and additions to the RFC 2136 forms, deletions first', () => {
    const rrs = forwardUpdates({
      add: [rec(1)],
      remove: [rec(2)],
      removeNames: [{ name: 'gone.dyn.example.', addresses: [] }],
    });
    assert.deepEqual(rrs, [
      { name: 'gone.dyn.example.', type: 'A', class: RRClass.ANY, ttl: 0, data: null },
      { name: 'gone.dyn.example.', type: 'AAAA', class: RRClass.ANY, ttl: 0, data: null },
      { name: rec(2).name, type: 'A', class: RRClass.NONE, ttl: 0, data: rec(2).address },
      { name: rec(1).name, type: 'A', class: RRClass.IN, ttl: 300, data: rec(1).address },
    ]);
  });

  it('never deletes every RRset of a name (type ANY): only the A and AAAA RRsets nsregd manages', () => {
    const rrs = forwardUpdates({ add: [], remove: [], removeNames: [{ name: 'x.dyn.example.', addresses: [rec(1)] }] });
    assert.ok(rrs.every((rr) => rr.type === 'A' || rr.type === 'AAAA'), JSON.stringify(rrs));
    assert.deepEqual(rrs.map((rr) => rr.type).sort(), ['A', 'AAAA']);
  });
});

describe('reverseUpdates', () => {
  const zones = ['2.0.192.in-addr.arpa.', '8.b.d.0.1.0.0.2.ip6.arpa.'];
  const v4: AddrRecord = { name: 'h.dyn.example.', type: 'A', address: '192.0.2.10', ttl: 120 };
  const v6: AddrRecord = { name: 'h.dyn.example.', type: 'AAAA', address: '2001:db8::10', ttl: 90 };
  const outside: AddrRecord = { name: 'h.dyn.example.', type: 'A', address: '198.51.100.1', ttl: 90 };

  it('adds PTRs in the zone holding each address, same TTL, target the forward name', () => {
    const m = reverseUpdates({ add: [v4, v6, outside], remove: [], removeNames: [] }, zones);
    assert.deepEqual([...m.keys()], zones);
    assert.deepEqual(m.get(zones[0]), [{ name: '10.2.0.192.in-addr.arpa.', type: 'PTR', class: RRClass.IN, ttl: 120, data: 'h.dyn.example.' }]);
    assert.equal(m.get(zones[1])![0].name, '0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.');
  });

  it('removes PTRs of removed records and of every address of a removed name, before additions', () => {
    const other: AddrRecord = { ...v4, address: '192.0.2.11' };
    const m = reverseUpdates({ add: [other], remove: [v6], removeNames: [{ name: v4.name, addresses: [v4] }] }, zones);
    assert.deepEqual(m.get(zones[0]), [
      { name: '10.2.0.192.in-addr.arpa.', type: 'PTR', class: RRClass.NONE, ttl: 0, data: 'h.dyn.example.' },
      { name: '11.2.0.192.in-addr.arpa.', type: 'PTR', class: RRClass.IN, ttl: 120, data: 'h.dyn.example.' },
    ]);
    assert.deepEqual(m.get(zones[1])!.map((r) => r.class), [RRClass.NONE]);
  });

  it('is empty without reverse zones', () => {
    assert.equal(reverseUpdates({ add: [v4], remove: [], removeNames: [] }, []).size, 0);
  });
});
