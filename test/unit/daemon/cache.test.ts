import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecordCache } from '../../../src/daemon/cache.js';
import type { AddrRecord } from '../../../src/daemon/records.js';

const a = (name: string, address: string, ttl = 120): AddrRecord => ({ name, type: 'A', address, ttl });
const aaaa = (name: string, address: string, ttl = 120): AddrRecord => ({ name, type: 'AAAA', address, ttl });

describe('RecordCache', () => {
  it('upsert: new, then refreshed with the new TTL and expiry; TTL is not part of identity', () => {
    const c = new RecordCache();
    const r = a('host.example.org.', '192.0.2.1', 120);
    assert.equal(c.has(r), false);
    assert.equal(c.upsert(r, 1000), 'new');
    assert.equal(c.upsert({ ...r, ttl: 60 }, 2000), 'refreshed');
    assert.equal(c.size, 1);
    assert.deepEqual(c.get({ name: r.name, type: 'A', address: r.address }), { record: { ...r, ttl: 60 }, expiresAt: 2000 });
    assert.equal(c.has(aaaa('host.example.org.', '2001:db8::1')), false);
    assert.equal(c.has(a('other.example.org.', '192.0.2.1')), false);
  });

  it('remove drops one record and reports whether it was there', () => {
    const c = new RecordCache();
    c.upsert(a('h.z.', '192.0.2.1'), 10);
    c.upsert(a('h.z.', '192.0.2.2'), 10);
    assert.equal(c.remove(a('h.z.', '192.0.2.1')), true);
    assert.equal(c.remove(a('h.z.', '192.0.2.1')), false);
    assert.deepEqual(c.recordsOf('h.z.'), [a('h.z.', '192.0.2.2')]);
    assert.equal(c.remove(a('h.z.', '192.0.2.2')), true);
    assert.deepEqual(c.recordsOf('h.z.'), []);
    assert.equal(c.size, 0);
    assert.equal(c.nextExpiry(), undefined);
  });

  it('removeName drops every record of one name, any case, and leaves the others', () => {
    const c = new RecordCache();
    c.upsert(a('h.z.', '192.0.2.1'), 10);
    c.upsert(aaaa('h.z.', '2001:db8::1'), 20);
    c.upsert(a('other.z.', '192.0.2.9'), 5);
    const gone = c.removeName('H.Z');
    assert.deepEqual(new Set(gone), new Set([a('h.z.', '192.0.2.1'), aaaa('h.z.', '2001:db8::1')]));
    assert.equal(c.size, 1);
    assert.deepEqual(c.recordsOf('h.z.'), []);
    assert.deepEqual(c.recordsOf('other.z.'), [a('other.z.', '192.0.2.9')]);
    assert.deepEqual(c.removeName('h.z.'), []);
    assert.deepEqual(c.expireDue(100), [a('other.z.', '192.0.2.9')]);
  });

  it('expireDue pops everything with expiresAt <= now, earliest first, and unindexes it', () => {
    const c = new RecordCache();
    c.upsert(a('x.z.', '192.0.2.3'), 300);
    c.upsert(a('x.z.', '192.0.2.1'), 100);
    c.upsert(a('y.z.', '192.0.2.2'), 200);
    assert.deepEqual(c.expireDue(99), []);
    assert.deepEqual(c.expireDue(200), [a('x.z.', '192.0.2.1'), a('y.z.', '192.0.2.2')]);
    assert.deepEqual(c.recordsOf('y.z.'), []);
    assert.deepEqual(c.recordsOf('x.z.'), [a('x.z.', '192.0.2.3')]);
    assert.deepEqual(c.all(), [{ record: a('x.z.', '192.0.2.3'), expiresAt: 300 }]);
    assert.equal(c.nextExpiry(), 300);
  });

  it('recordsOf costs O(records of that name): 100k names, lookups stay fast', () => {
    const c = new RecordCache();
    for (let i = 0; i < 100_000; i++) c.upsert(a(`h${i}.z.`, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`), i);
    const t0 = performance.now();
    for (let i = 0; i < 100_000; i++) assert.equal(c.recordsOf(`h${i}.z.`).length, 1);
    assert.ok(performance.now() - t0 < 2000);
  });
});
