import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RRClass } from '../../../../src/dns/constants.js';
import type { ResourceRecord } from '../../../../src/dns/message.js';
import { ZoneHistory } from '../../../../src/daemon/zoneserver/history.js';

const A = (name: string, address: string, ttl = 60): ResourceRecord => ({ name, type: 'A', class: RRClass.IN, ttl, data: address });
const NS: ResourceRecord = { name: 'z.', type: 'NS', class: RRClass.IN, ttl: 3600, data: 'ns.z.' };

describe('ZoneHistory (IXFR differences)', () => {
  it('records what was deleted and added between observed serials, chained from any known serial', () => {
    const h = new ZoneHistory({ differences: 10, records: 100 });
    assert.equal(h.observe([NS, A('a.z.', '192.0.2.1')], 10), 'ok');
    assert.deepEqual(h.since(10), []);
    assert.equal(h.since(9), undefined, 'before the first observation: unknown');
    h.observe([NS, A('a.z.', '192.0.2.1'), A('b.z.', '192.0.2.2')], 11);
    // A TTL change is a deletion and an addition.
    h.observe([NS, A('a.z.', '192.0.2.1', 30), A('b.z.', '192.0.2.2')], 13);
    assert.deepEqual(h.since(10), [
      { from: 10, to: 11, deleted: [], added: [A('b.z.', '192.0.2.2')] },
      { from: 11, to: 13, deleted: [A('a.z.', '192.0.2.1')], added: [A('a.z.', '192.0.2.1', 30)] },
    ]);
    assert.deepEqual(h.since(11)?.map((d) => [d.from, d.to]), [[11, 13]]);
    assert.deepEqual(h.since(13), []);
    assert.equal(h.since(12), undefined, 'a serial never observed');
  });

  it('a serial that moved without a change is an empty difference; a change under the same serial is stale', () => {
    const h = new ZoneHistory({ differences: 10, records: 100 });
    h.observe([NS], 1);
    assert.equal(h.observe([NS], 1), 'ok');
    assert.equal(h.observe([NS, A('a.z.', '192.0.2.1')], 1), 'stale');
    assert.deepEqual(h.since(1), [], 'nothing recorded for the stale observation');
    assert.equal(h.observe([NS], 2), 'ok');
    assert.deepEqual(h.since(1), [{ from: 1, to: 2, deleted: [], added: [] }]);
  });

  it('is bounded: the oldest differences go beyond the count or the record total', () => {
    const h = new ZoneHistory({ differences: 3, records: 4 });
    h.observe([], 0);
    for (let s = 1; s <= 5; s++) h.observe([A(`h${s}.z.`, '192.0.2.1')], s);
    // Each step deletes one and adds one (2 records): the total of 4 keeps two.
    assert.equal(h.since(2), undefined);
    assert.deepEqual(h.since(3)?.map((d) => d.to), [4, 5]);
    const many = new ZoneHistory({ differences: 3, records: 1000 });
    many.observe([], 0);
    for (let s = 1; s <= 5; s++) many.observe([A(`h${s}.z.`, '192.0.2.1')], s);
    assert.equal(many.since(1), undefined);
    assert.deepEqual(many.since(2)?.map((d) => d.to), [3, 4, 5]);
  });

  it('survives a restart through save()/restore() (JSON): the next observation records what changed meanwhile', () => {
    const h = new ZoneHistory({ differences: 10, records: 100 });
    assert.equal(h.save(), undefined);
    h.observe([NS, A('a.z.', '192.0.2.1')], 10);
    h.observe([NS, A('a.z.', '192.0.2.1'), A('b.z.', '192.0.2.2')], 11);
    const back = ZoneHistory.restore(JSON.parse(JSON.stringify(h.save())), { differences: 10, records: 100 });
    assert.equal(back.serial, 11);
    assert.deepEqual(back.since(10), h.since(10));
    // The new process serves another version, at a serial past the old one's.
    back.observe([NS, A('b.z.', '192.0.2.2')], 1011);
    assert.deepEqual(back.since(10)?.map((d) => [d.from, d.to, d.deleted.length, d.added.length]), [
      [10, 11, 0, 1],
      [11, 1011, 1, 0],
    ]);
  });

  it('restores nothing from a damaged file, and drops differences that do not lead to the saved version', () => {
    for (const bad of [null, 'x', { serial: -1, published: [], differences: [] }, { serial: 1, published: [{}], differences: [] }, { serial: 1, published: [], differences: [{ from: 'a' }] }]) {
      assert.equal(ZoneHistory.restore(bad, { differences: 10, records: 100 }).serial, undefined, JSON.stringify(bad));
    }
    const broken = ZoneHistory.restore({ serial: 5, published: [NS], differences: [{ from: 1, to: 2, deleted: [], added: [] }] }, { differences: 10, records: 100 });
    assert.equal(broken.serial, 5);
    assert.equal(broken.since(1), undefined);
    assert.deepEqual(broken.since(5), []);
  });
});
