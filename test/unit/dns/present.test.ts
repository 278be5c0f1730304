import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode, RRClass, RRType } from '../../../src/dns/constants.js';
import { emptyMessage, encodeMessage, optRecord, type ResourceRecord } from '../../../src/dns/message.js';
import { formatRecord, formatWire } from '../../../src/dns/present.js';
import { addRecord, buildUpdate, deleteName } from '../../../src/dns/update.js';

describe('present: records', () => {
  const cases: Array<[ResourceRecord, string]> = [
    [{ name: 'a.example.', type: 'AAAA', class: RRClass.IN, ttl: 300, data: '2001:db8::1' }, 'a.example.\t300\tIN\tAAAA\t2001:db8::1'],
    [{ name: 't.', type: 'TXT', class: RRClass.IN, ttl: 5, data: ['a "b"', 'c\\d'] }, 't.\t5\tIN\tTXT\t"a \\"b\\"" "c\\\\d"'],
    [
      { name: 'z.', type: 'SOA', class: RRClass.IN, ttl: 1, data: { mname: 'ns.z.', rname: 'h.z.', serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5 } },
      'z.\t1\tIN\tSOA\tns.z. h.z. 1 2 3 4 5',
    ],
    [{ name: '_s._tcp.z.', type: 'SRV', class: RRClass.IN, ttl: 1, data: { priority: 1, weight: 2, port: 3, target: 't.z.' } }, '_s._tcp.z.\t1\tIN\tSRV\t1 2 3 t.z.'],
    [{ name: 'k.', type: 'KEY', class: RRClass.IN, ttl: 0, data: { flags: 256, protocol: 3, algorithm: 15, publicKey: Buffer.from([1, 2, 3]) } }, 'k.\t0\tIN\tKEY\t256 3 15 AQID'],
    [{ name: 'del.', type: 'A', class: RRClass.ANY, ttl: 0, data: null }, 'del.\t0\tANY\tA'],
    [{ name: 'x.', type: 'UNKNOWN', code: 65280, class: RRClass.IN, ttl: 7, data: Buffer.from([1, 2, 3]) }, 'x.\t7\tIN\tTYPE65280\t\\# 3 010203'],
    [optRecord(1232), '; EDNS: udp=1232 version=0 flags=0'],
  ];
  for (const [rr, text] of cases) {
    it(`${rr.type}${rr.data === null ? ' with empty rdata' : ''}`, () => {
      assert.equal(formatRecord(rr), text);
    });
  }
});

describe('present: formatWire (what --print shows)', () => {
  it('an UPDATE with RFC 2136 section names', () => {
    const m = buildUpdate({
      id: 7,
      zone: 'example.',
      updates: [addRecord({ name: 'a.example.', type: 'A', class: RRClass.IN, ttl: 300, data: '192.0.2.1' }), deleteName('b.example.')],
    });
    assert.equal(
      formatWire(encodeMessage(m)),
      [
        ';; opcode: UPDATE, status: NOERROR, id: 7',
        ';; flags: ; ZONE: 1, PREREQUISITE: 0, UPDATE: 2, ADDITIONAL: 0',
        '',
        ';; ZONE SECTION:',
        ';example.\t\tIN\tSOA',
        '',
        ';; UPDATE SECTION:',
        'a.example.\t300\tIN\tA\t192.0.2.1',
        'b.example.\t0\tANY\tANY',
      ].join('\n'),
    );
  });

  it('a query with dig\'s section names and its flags', () => {
    const m = { ...emptyMessage(9, Opcode.QUERY), qr: true, rd: true };
    m.questions.push({ name: 'x.', type: RRType.TXT, class: RRClass.IN });
    assert.match(formatWire(encodeMessage(m)), /^;; opcode: QUERY, status: NOERROR, id: 9\n;; flags: qr rd; QUESTION: 1, ANSWER: 0, AUTHORITY: 0, ADDITIONAL: 0\n\n;; QUESTION SECTION:\n;x\.\t\tIN\tTXT$/);
  });

  it('bytes that do not decode: why, and the bytes in hex', () => {
    assert.equal(formatWire(Buffer.from([1, 2, 3])), ';; undecodable message: message of 3 octets is shorter than a header\n;; 3 octets: 010203');
  });
});
