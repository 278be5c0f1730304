import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode, RRClass } from '../../../src/dns/constants.js';
import {
  decodeMessage,
  emptyMessage,
  encodeMessage,
  encodingLength,
  type DecodedMessage,
  type Message,
  type ResourceRecord,
} from '../../../src/dns/message.js';
import { encodeRData } from '../../../src/dns/rdata.js';

const ZONE = 'dyn.example.';

function reply(records: ResourceRecord[], additionals: ResourceRecord[] = []): Message {
  const m = emptyMessage(0x1234, Opcode.UPDATE);
  m.qr = true;
  m.questions = [{ name: ZONE, type: 6, class: RRClass.IN }];
  m.answers = records;
  m.additionals = additionals;
  return m;
}

function a(name: string, address: string): ResourceRecord {
  return { name, type: 'A', class: RRClass.IN, ttl: 60, data: address };
}

/** Same message apart from what decoding adds (raw bytes, spans). */
function sameMessage(d: DecodedMessage, m: Message): void {
  const rest: Partial<DecodedMessage> = { ...d };
  delete rest.raw;
  delete rest.spans;
  assert.deepEqual(rest, m);
}

/**
 * Every name the message holds where a name may be compressed, walked label
 * by label: each pointer must lead strictly backwards, to a label written
 * after the header, and the name it starts must already have been seen.
 */
function assertBackwardPointers(raw: Buffer, nameOffsets: number[]): number {
  let pointers = 0;
  for (const start of nameOffsets) {
    let pos = start;
    for (;;) {
      const len = raw[pos];
      if (len === 0) break;
      if ((len & 0xc0) === 0xc0) {
        const target = raw.readUInt16BE(pos) & 0x3fff;
        assert.ok(target < start, `pointer at ${pos} leads to ${target}, not before the name at ${start}`);
        assert.ok(target >= 12, `pointer at ${pos} leads into the header`);
        assert.equal(raw[target] & 0xc0, 0, `pointer at ${pos} leads to another pointer`);
        pointers++;
        break;
      }
      pos += len + 1;
    }
  }
  return pointers;
}

function ownerOffsets(d: DecodedMessage): number[] {
  const { questions, answers, authorities, additionals } = d.spans;
  return [...questions, ...answers, ...authorities, ...additionals].map((s) => s.start);
}

describe('name compression (RFC 1035 §4.1.4)', () => {
  it('replies are compressed by default and decode to the same message; requests are not', () => {
    const m = reply([
      a(`host.${ZONE}`, '192.0.2.1'),
      a(`host.${ZONE}`, '192.0.2.2'),
      { name: ZONE, type: 'NS', class: RRClass.IN, ttl: 60, data: `ns.${ZONE}` },
      { name: `alias.${ZONE}`, type: 'CNAME', class: RRClass.IN, ttl: 60, data: `host.${ZONE}` },
      { name: '1.2.0.192.in-addr.arpa.', type: 'PTR', class: RRClass.IN, ttl: 60, data: `host.${ZONE}` },
      {
        name: ZONE,
        type: 'SOA',
        class: RRClass.IN,
        ttl: 60,
        data: { mname: `ns.${ZONE}`, rname: `hostmaster.${ZONE}`, serial: 7, refresh: 1, retry: 2, expire: 3, minimum: 4 },
      },
      { name: `host.${ZONE}`, type: 'TXT', class: RRClass.IN, ttl: 60, data: ['x'] },
    ]);
    const compressed = encodeMessage(m);
    assert.ok(compressed.length < encodingLength(m), `${compressed.length} octets, uncompressed ${encodingLength(m)}`);
    const d = decodeMessage(compressed);
    sameMessage(d, m);
    assert.ok(assertBackwardPointers(compressed, ownerOffsets(d)) >= 6);
    // The names in NS, CNAME, PTR and SOA rdata are compressed too.
    for (const span of d.spans.answers.slice(2, 6)) {
      assert.ok(assertBackwardPointers(compressed, [span.rdataStart]) === 1, `rdata at ${span.rdataStart}`);
    }
    const uncompressed = encodeMessage(m, { compress: false });
    assert.equal(uncompressed.length, encodingLength(m));
    sameMessage(decodeMessage(uncompressed), m);
    const request = { ...m, qr: false };
    assert.equal(encodeMessage(request).length, encodingLength(request));
    const compressedRequest = encodeMessage(request, { compress: true });
    assert.equal(compressedRequest.length, compressed.length);
    sameMessage(decodeMessage(compressedRequest), request);
  });

  it('never compresses SRV targets (RFC 2782), KEY/SIG/TSIG names (RFC 2931 §3, RFC 8945 §4.2) or unknown types', () => {
    const srv = { priority: 0, weight: 0, port: 53, target: `host.${ZONE}` };
    const sig = {
      typeCovered: 0,
      algorithm: 13,
      labels: 0,
      originalTtl: 0,
      expiration: 2,
      inception: 1,
      keyTag: 9,
      signerName: `host.${ZONE}`,
      signature: Buffer.alloc(64, 1),
    };
    const tsig = { algorithm: `host.${ZONE}`, timeSigned: 1, fudge: 300, mac: Buffer.alloc(32, 2), originalId: 1, error: 0, otherData: Buffer.alloc(0) };
    const unknown = Buffer.from([4, ...Buffer.from('host'), 3, ...Buffer.from('dyn'), 7, ...Buffer.from('example'), 0]);
    const m = reply(
      [a(`host.${ZONE}`, '192.0.2.1'), { name: `_x._tcp.${ZONE}`, type: 'SRV', class: RRClass.IN, ttl: 0, data: srv }],
      [
        { name: `host.${ZONE}`, type: 'SIG', class: RRClass.ANY, ttl: 0, data: sig },
        { name: `host.${ZONE}`, type: 'TSIG', class: RRClass.ANY, ttl: 0, data: tsig },
        { name: `host.${ZONE}`, type: 'UNKNOWN', code: 65280, class: RRClass.IN, ttl: 0, data: unknown },
      ],
    );
    const raw = encodeMessage(m);
    const d = decodeMessage(raw);
    sameMessage(d, m);
    const rdata = (s: { rdataStart: number; end: number }): Buffer => raw.subarray(s.rdataStart, s.end);
    assert.deepEqual(rdata(d.spans.answers[1]), encodeRData('SRV', srv));
    assert.deepEqual(rdata(d.spans.additionals[0]), encodeRData('SIG', sig));
    assert.deepEqual(rdata(d.spans.additionals[1]), encodeRData('TSIG', tsig));
    assert.deepEqual(rdata(d.spans.additionals[2]), unknown);
    // Their owners are compressed all the same.
    assert.equal(assertBackwardPointers(raw, ownerOffsets(d)), 5);
  });

  it('keeps the case of every name: only byte-identical suffixes are shared', () => {
    const m = reply([a(`Host.${ZONE}`, '192.0.2.1'), a(`host.${ZONE}`, '192.0.2.2'), a(`HOST.DYN.EXAMPLE.`, '192.0.2.3')]);
    sameMessage(decodeMessage(encodeMessage(m)), m);
  });

  it('points only at offsets a pointer can hold: names first written beyond 16 KiB are repeated in full or against earlier suffixes', () => {
    const records: ResourceRecord[] = [];
    for (let i = 0; i < 1500; i++) records.push(a(`h${i}.${ZONE}`, '192.0.2.1'));
    for (let i = 0; i < 1500; i++) records.push(a(`h${i}.${ZONE}`, '192.0.2.2'));
    const m = reply(records);
    const raw = encodeMessage(m);
    const d = decodeMessage(raw);
    sameMessage(d, m);
    assertBackwardPointers(raw, ownerOffsets(d));
    assert.ok(d.spans.answers[1499].start > 0x4000);
  });

  it('a 3,899-record echo of one name fits a TCP frame with room to spare', () => {
    const owner = `claimed.${ZONE}`;
    const records = Array.from({ length: 3899 }, (_, i) => a(owner, `10.0.${i >> 8}.${i & 255}`));
    const m = reply(records);
    assert.ok(encodingLength(m) > 65535, 'uncompressed, it would not fit');
    const raw = encodeMessage(m);
    // Header, question, one owner in full, then 3,898 owners of 2 octets: 16 octets a record.
    assert.equal(raw.length, 12 + (ZONE.length + 1 + 4) + (owner.length - ZONE.length + 2 + 10 + 4) + 3898 * 16);
    assert.ok(raw.length < 63_000);
    sameMessage(decodeMessage(raw), m);
  });
});
