import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode, RRClass, RRType } from '../../../src/dns/constants.js';
import { decodeMessage, encodeMessage, type Message, type ResourceRecord } from '../../../src/dns/message.js';
import {
  addRecord,
  buildUpdate,
  deleteName,
  deleteRecord,
  deleteRRset,
  prereqNameInUse,
  prereqNameNotInUse,
  prereqRRsetExists,
  prereqRRsetNotExists,
} from '../../../src/dns/update.js';

/** Encodes, decodes and checks that the decoded values and the re-encoding are unchanged. */
function roundTrip(m: Message): { bytes: Buffer; decoded: Message } {
  const bytes = encodeMessage(m);
  const d = decodeMessage(bytes);
  const decoded: Message = {
    id: d.id,
    qr: d.qr,
    opcode: d.opcode,
    aa: d.aa,
    tc: d.tc,
    rd: d.rd,
    ra: d.ra,
    ad: d.ad,
    cd: d.cd,
    rcode: d.rcode,
    questions: d.questions,
    answers: d.answers,
    authorities: d.authorities,
    additionals: d.additionals,
  };
  assert.deepEqual(decoded, m);
  assert.deepEqual(encodeMessage(d), bytes);
  return { bytes, decoded };
}

/** Type, class, TTL and rdlength of the first RR of the update section, read from the wire. */
function updateRRWire(bytes: Buffer): { type: number; cls: number; ttl: number; rdlength: number } {
  const d = decodeMessage(bytes);
  const span = d.spans.authorities[0];
  const p = span.rdataStart - 10;
  return {
    type: bytes.readUInt16BE(p),
    cls: bytes.readUInt16BE(p + 2),
    ttl: bytes.readUInt32BE(p + 4),
    rdlength: bytes.readUInt16BE(p + 8),
  };
}

const A: ResourceRecord = { name: 'host.zone.example', type: 'A', class: RRClass.IN, ttl: 300, data: '192.0.2.7' };

describe('update builders (RFC 2136)', () => {
  it('buildUpdate: opcode 5, zone section is one SOA question of class IN (§2.3)', () => {
    const m = buildUpdate({ id: 0x4242, zone: 'zone.example' });
    assert.equal(m.opcode, Opcode.UPDATE);
    assert.equal(m.id, 0x4242);
    assert.equal(m.qr, false);
    assert.deepEqual(m.questions, [{ name: 'zone.example.', type: RRType.SOA, class: RRClass.IN }]);
    const { bytes } = roundTrip(m);
    assert.equal((bytes.readUInt16BE(2) >> 11) & 0xf, 5);
    assert.deepEqual([4, 6, 8, 10].map((o) => bytes.readUInt16BE(o)), [1, 0, 0, 0]);
  });

  it('puts prerequisites in the answer slot, updates in the authority slot, extras in the additional slot (§2)', () => {
    const extra: ResourceRecord = {
      name: 'host.zone.example.',
      type: 'KEY',
      class: RRClass.IN,
      ttl: 0,
      data: { flags: 512, protocol: 3, algorithm: 15, publicKey: Buffer.alloc(32, 7) },
    };
    const m = buildUpdate({
      id: 1,
      zone: 'zone.example.',
      prerequisites: [prereqNameNotInUse('host.zone.example')],
      updates: [addRecord(A)],
      additionals: [extra],
    });
    const { bytes } = roundTrip(m);
    assert.deepEqual([4, 6, 8, 10].map((o) => bytes.readUInt16BE(o)), [1, 1, 1, 1]);
  });

  it('addRecord: class IN, TTL and rdata as given (§2.5.1)', () => {
    const rr = addRecord({ ...A, class: RRClass.CH });
    assert.deepEqual(rr, { ...A, name: 'host.zone.example.', class: RRClass.IN });
    const { bytes } = roundTrip(buildUpdate({ id: 2, zone: 'zone.example', updates: [rr] }));
    assert.deepEqual(updateRRWire(bytes), { type: RRType.A, cls: RRClass.IN, ttl: 300, rdlength: 4 });
  });

  it('deleteRecord: class NONE, TTL 0, rdata kept (§2.5.4)', () => {
    const records: ResourceRecord[] = [
      A,
      { name: 'host.zone.example.', type: 'AAAA', class: RRClass.IN, ttl: 300, data: '2001:db8::7' },
      { name: 'host.zone.example.', type: 'TXT', class: RRClass.IN, ttl: 300, data: ['hello'] },
    ];
    for (const r of records) {
      const rr = deleteRecord(r);
      assert.equal(rr.class, RRClass.NONE);
      assert.equal(rr.ttl, 0);
      assert.deepEqual(rr.data, r.data);
      const { bytes } = roundTrip(buildUpdate({ id: 3, zone: 'zone.example', updates: [rr] }));
      const w = updateRRWire(bytes);
      assert.equal(w.cls, 254);
      assert.equal(w.ttl, 0);
      assert.ok(w.rdlength > 0);
    }
  });

  it('deleteRRset: class ANY, TTL 0, empty rdata (§2.5.2)', () => {
    const rr = deleteRRset('host.zone.example', 'AAAA');
    assert.deepEqual(rr, { name: 'host.zone.example.', type: 'AAAA', class: RRClass.ANY, ttl: 0, data: null });
    const { bytes } = roundTrip(buildUpdate({ id: 4, zone: 'zone.example', updates: [rr] }));
    assert.deepEqual(updateRRWire(bytes), { type: RRType.AAAA, cls: 255, ttl: 0, rdlength: 0 });
  });

  it('deleteName: type ANY, class ANY, TTL 0, empty rdata (§2.5.3)', () => {
    const rr = deleteName('host.zone.example');
    assert.deepEqual(rr, { name: 'host.zone.example.', type: 'ANY', class: RRClass.ANY, ttl: 0, data: null });
    const { bytes } = roundTrip(buildUpdate({ id: 5, zone: 'zone.example', updates: [rr] }));
    assert.deepEqual(updateRRWire(bytes), { type: 255, cls: 255, ttl: 0, rdlength: 0 });
  });

  it('prerequisites have the §2.4 forms', () => {
    const cases: Array<[ResourceRecord, number, number]> = [
      [prereqRRsetExists('h.zone.example', 'A'), RRType.A, RRClass.ANY],
      [prereqRRsetNotExists('h.zone.example', 'A'), RRType.A, RRClass.NONE],
      [prereqNameInUse('h.zone.example'), RRType.ANY, RRClass.ANY],
      [prereqNameNotInUse('h.zone.example'), RRType.ANY, RRClass.NONE],
    ];
    for (const [rr, type, cls] of cases) {
      assert.equal(rr.name, 'h.zone.example.');
      assert.equal(rr.class, cls);
      assert.equal(rr.ttl, 0);
      assert.equal(rr.data, null);
      const { bytes } = roundTrip(buildUpdate({ id: 6, zone: 'zone.example', prerequisites: [rr] }));
      const d = decodeMessage(bytes);
      const span = d.spans.answers[0];
      assert.equal(span.rdataStart, span.end);
      assert.equal(bytes.readUInt16BE(span.rdataStart - 10), type);
      assert.equal(bytes.readUInt16BE(span.rdataStart - 8), cls);
      assert.equal(bytes.readUInt32BE(span.rdataStart - 6), 0);
    }
  });

  it('a mixed update round-trips through the codec in order', () => {
    const m = buildUpdate({
      id: 0xffff,
      zone: 'Zone.Example.',
      prerequisites: [prereqRRsetExists('host.zone.example', 'A')],
      updates: [
        deleteName('old.zone.example'),
        deleteRRset('host.zone.example', 'A'),
        deleteRecord(A),
        addRecord(A),
        addRecord({ name: 'host.zone.example', type: 'AAAA', class: RRClass.IN, ttl: 60, data: '2001:db8::1' }),
      ],
    });
    const { decoded } = roundTrip(m);
    assert.deepEqual(
      decoded.authorities.map((rr) => [rr.type, rr.class]),
      [
        ['ANY', 255],
        ['A', 255],
        ['A', 254],
        ['A', 1],
        ['AAAA', 1],
      ],
    );
    assert.equal(decoded.questions[0].name, 'Zone.Example.');
  });
});
