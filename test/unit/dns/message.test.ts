import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Opcode, RRClass, RRType, Rcode } from '../../../src/dns/constants.js';
import { MalformedMessageError } from '../../../src/dns/errors.js';
import {
  appendAdditional,
  decodeMessage,
  emptyMessage,
  encodeMessage,
  encodeRecord,
  encodingLength,
  optRecord,
  recordLength,
  typeCode,
  writeRecord,
  type DecodedMessage,
  type Message,
  type ResourceRecord,
} from '../../../src/dns/message.js';
import { encodeName } from '../../../src/dns/names.js';
import { fixtureBytes } from '../../helpers/fixtures.js';
import { KEY_DATA, SIG_DATA, TSIG_DATA, WITH_DATA } from './samples.js';

// Compiled to dist/test/unit/dns/: the fixtures stay in the source tree.

/** Deterministic PRNG (mulberry32) so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function stripDecoded(d: DecodedMessage): Message {
  const m: Partial<DecodedMessage> = { ...d };
  delete m.raw;
  delete m.spans;
  return m as Message;
}

function assertMalformed(fn: () => unknown, reason: string, id?: number): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MalformedMessageError, `expected MalformedMessageError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_DNS_MALFORMED');
    assert.equal(err.reason, reason, err.message);
    assert.equal(err.id, id);
    return true;
  });
}

/** Empty rdata (the RFC 2136 delete and prerequisite forms). */
const EMPTY_TYPES = ['A', 'AAAA', 'NS', 'CNAME', 'PTR', 'TXT', 'SOA', 'SRV', 'KEY', 'SIG', 'TSIG', 'ANY'] as const;

const CLASSES: Array<[string, number]> = [
  ['IN', RRClass.IN],
  ['CH', RRClass.CH],
  ['NONE', RRClass.NONE],
  ['ANY', RRClass.ANY],
];

function messageWith(rr: ResourceRecord, section: 'answers' | 'authorities' | 'additionals'): Message {
  const m = emptyMessage(0x1234, Opcode.UPDATE);
  m.questions.push({ name: 'example.', type: RRType.SOA, class: RRClass.IN });
  m[section].push(rr);
  return m;
}

/**
 * Lengths without encoding: encodingLength is the encoded size, and each
 * RR's recordLength is what encodeRecord and writeRecord (at an offset,
 * after other bytes) produce — the same octets the message holds.
 */
function checkLengths(m: Message, bytes: Buffer): void {
  assert.equal(encodingLength(m), bytes.length);
  const d = decodeMessage(bytes);
  const sections = ['answers', 'authorities', 'additionals'] as const;
  for (const section of sections) {
    m[section].forEach((rr, i) => {
      const span = d.spans[section][i];
      const alone = encodeRecord(rr);
      assert.equal(recordLength(rr), alone.length);
      const offset = 13;
      const buf = Buffer.alloc(offset + alone.length, 0xee);
      assert.equal(writeRecord(rr, buf, offset), alone.length);
      assert.deepEqual(buf.subarray(offset), alone);
      // The OPT's TTL carries the extended rcode in the message, so only its length is compared.
      if (rr.type !== 'OPT') assert.deepEqual(bytes.subarray(span.start, span.end), alone);
      assert.equal(span.end - span.start, alone.length);
    });
  }
}

/** Round trip both ways: value → bytes → value, and bytes → value → the same bytes. */
function roundTrip(m: Message): DecodedMessage {
  const bytes = encodeMessage(m);
  checkLengths(m, bytes);
  const d = decodeMessage(bytes);
  assert.deepEqual(stripDecoded(d), m);
  assert.deepEqual(encodeMessage(d), bytes);
  assert.equal(d.raw, bytes);
  return d;
}

describe('message: round trip of every record type and class', () => {
  for (const rr of WITH_DATA) {
    const label = rr.type === 'UNKNOWN' ? `TYPE${rr.code}` : rr.type;
    const classes = rr.type === 'OPT' ? [['payload', rr.class] as [string, number]] : CLASSES;
    for (const [cname, cls] of classes) {
      it(`${label} in class ${cname}`, () => {
        const section = rr.type === 'OPT' || rr.type === 'SIG' || rr.type === 'TSIG' ? 'additionals' : 'authorities';
        roundTrip(messageWith({ ...rr, class: cls }, section));
      });
    }
  }

  for (const type of EMPTY_TYPES) {
    for (const [cname, cls] of CLASSES) {
      it(`${type} with empty rdata in class ${cname}`, () => {
        const rr = { name: 'del.example.', type, class: cls, ttl: 0, data: null } as ResourceRecord;
        const d = roundTrip(messageWith(rr, 'authorities'));
        const span = d.spans.authorities[0];
        assert.equal(span.end, span.rdataStart);
        assert.equal(d.raw.readUInt16BE(span.rdataStart - 2), 0);
        assert.equal(d.raw.readUInt16BE(span.rdataStart - 10), RRType[type]);
        assert.equal(d.raw.readUInt16BE(span.rdataStart - 8), cls);
      });
    }
  }

  it('unknown types with empty rdata decode as UNKNOWN with an empty buffer', () => {
    const rr: ResourceRecord = { name: 'x.', type: 'UNKNOWN', code: 999, class: RRClass.NONE, ttl: 0, data: Buffer.alloc(0) };
    roundTrip(messageWith(rr, 'authorities'));
  });

  it('encoding leaves the caller\'s records untouched', () => {
    const m = messageWith({ name: 't.', type: 'TXT', class: RRClass.IN, ttl: 0, data: ['x', 'y'] }, 'answers');
    const copy = structuredClone(m);
    encodeMessage(m);
    assert.deepEqual(m, copy);
  });

  it('appendAdditional adds one RR at the end and counts it in ARCOUNT', () => {
    const m = messageWith({ name: 'a.example.', type: 'A', class: RRClass.IN, ttl: 1, data: '192.0.2.1' }, 'additionals');
    const key: ResourceRecord = { name: 'Host.example.', type: 'KEY', class: RRClass.IN, ttl: 0, data: KEY_DATA };
    const appended = appendAdditional(encodeMessage(m), key);
    assert.deepEqual(appended, encodeMessage({ ...m, additionals: [...m.additionals, key] }));
  });

  it('refuses a TXT string over 255 octets', () => {
    assert.throws(
      () => encodeRecord({ name: 't.', type: 'TXT', class: RRClass.IN, ttl: 0, data: ['x'.repeat(256)] }),
      RangeError,
    );
  });

  it('keeps the case of owner names and names in rdata byte-exactly', () => {
    const d = roundTrip(
      messageWith({ name: 'MiXeD.Example.', type: 'CNAME', class: RRClass.IN, ttl: 1, data: 'TaRgEt.Example.' }, 'answers'),
    );
    assert.equal(d.answers[0].name, 'MiXeD.Example.');
  });

  it('typeCode maps names to numbers', () => {
    assert.equal(typeCode(WITH_DATA[0]), 1);
    assert.equal(typeCode({ name: '.', type: 'UNKNOWN', code: 4321, class: 1, ttl: 0, data: Buffer.alloc(0) }), 4321);
    assert.equal(typeCode({ name: '.', type: 'ANY', class: 255, ttl: 0, data: null }), 255);
  });

  it('encodeRecord writes owner, type, class, TTL, rdlength and rdata', () => {
    const wire = encodeRecord({ name: 'a.b.', type: 'A', class: RRClass.NONE, ttl: 0xfffffffe, data: '10.0.0.1' });
    assert.deepEqual(
      wire,
      Buffer.concat([encodeName('a.b.'), Buffer.from([0, 1, 0, 254, 0xff, 0xff, 0xff, 0xfe, 0, 4, 10, 0, 0, 1])]),
    );
  });

  it('TSIG time signed uses all 48 bits and the SIG fields are in RFC 2535 order', () => {
    const d = roundTrip(messageWith({ name: 'k.', type: 'TSIG', class: RRClass.ANY, ttl: 0, data: TSIG_DATA }, 'additionals'));
    const rdata = d.raw.subarray(d.spans.additionals[0].rdataStart);
    const algLen = encodeName('hmac-sha256.').length;
    assert.deepEqual(rdata.subarray(algLen, algLen + 6), Buffer.from([0x00, 0x01, 0x23, 0x45, 0x67, 0x89]));
    const s = roundTrip(messageWith({ name: '.', type: 'SIG', class: RRClass.ANY, ttl: 0, data: SIG_DATA }, 'additionals'));
    const sig = s.raw.subarray(s.spans.additionals[0].rdataStart);
    assert.deepEqual(
      sig.subarray(0, 18),
      Buffer.from([0, 0, 13, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xf0, 0x65, 0x53, 0xf1, 0x00, 0x30, 0x39]),
    );
  });
});

describe('message: header', () => {
  for (let opcode = 0; opcode < 16; opcode++) {
    it(`opcode ${opcode}${opcode === Opcode.UPDATE ? ' (UPDATE)' : ''} round-trips`, () => {
      const m = emptyMessage(opcode * 4099, opcode);
      const bytes = encodeMessage(m);
      assert.equal((bytes.readUInt16BE(2) >> 11) & 0xf, opcode);
      roundTrip(m);
    });
  }

  const flags = ['qr', 'aa', 'tc', 'rd', 'ra', 'ad', 'cd'] as const;
  const bits: Record<(typeof flags)[number], number> = { qr: 0x8000, aa: 0x400, tc: 0x200, rd: 0x100, ra: 0x80, ad: 0x20, cd: 0x10 };
  for (const flag of flags) {
    it(`flag ${flag} is its own bit`, () => {
      const m = { ...emptyMessage(1, Opcode.QUERY), [flag]: true };
      assert.equal(encodeMessage(m).readUInt16BE(2), bits[flag]);
      roundTrip(m);
    });
  }

  it('all flags, opcode and rcode together', () => {
    const m: Message = { ...emptyMessage(0xffff, Opcode.UPDATE), qr: true, aa: true, tc: true, rd: true, ra: true, ad: true, cd: true, rcode: 9 };
    assert.equal(encodeMessage(m).readUInt16BE(2), 0x8000 | (5 << 11) | 0x400 | 0x200 | 0x100 | 0x80 | 0x20 | 0x10 | 9);
    roundTrip(m);
  });

  for (let rcode = 0; rcode <= 10; rcode++) {
    it(`rcode ${rcode} in the header`, () => {
      const m = { ...emptyMessage(7, Opcode.UPDATE), qr: true, rcode };
      assert.equal(encodeMessage(m).readUInt16BE(2) & 0xf, rcode);
      roundTrip(m);
    });
  }

  for (const rcode of [Rcode.BADSIG, Rcode.BADKEY, Rcode.BADTIME, 0xfff]) {
    it(`extended rcode ${rcode} through OPT (RFC 6891 §6.1.3)`, () => {
      const m = { ...emptyMessage(7, Opcode.QUERY), qr: true, rcode, additionals: [optRecord(1232)] };
      const bytes = encodeMessage(m);
      assert.equal(bytes.readUInt16BE(2) & 0xf, rcode & 0xf);
      const d = decodeMessage(bytes);
      assert.equal(d.rcode, rcode);
      const opt = d.additionals[0];
      assert.equal(opt.type, 'OPT');
      assert.equal(opt.ttl >>> 24, rcode >> 4);
      assert.deepEqual(encodeMessage(d), bytes);
    });
  }

  it('refuses an extended rcode without OPT', () => {
    assert.throws(() => encodeMessage({ ...emptyMessage(7, 0), rcode: Rcode.BADSIG }), RangeError);
  });
});

describe('message: decoding BIND and Go fixtures', () => {
  it('decodes the compressed nsupdate UPDATE with the right values and spans', () => {
    const raw = fixtureBytes('nsupdate-sig0/update.bin');
    const d = decodeMessage(raw);
    assert.equal(d.id, 0xb39c);
    assert.equal(d.opcode, Opcode.UPDATE);
    assert.equal(d.qr, false);
    assert.equal(d.rcode, 0);
    assert.deepEqual(d.questions, [{ name: 'dynamic.example.org.', type: RRType.SOA, class: RRClass.IN }]);
    assert.deepEqual(d.answers, []);
    assert.deepEqual(d.authorities, [
      { name: 'echo.dynamic.example.org.', type: 'A', class: RRClass.IN, ttl: 300, data: '192.0.2.20' },
    ]);
    assert.equal(d.additionals.length, 1);
    const sig = d.additionals[0];
    assert.equal(sig.type, 'SIG');
    assert.equal(sig.name, '.');
    assert.equal(sig.class, RRClass.ANY);
    assert.ok(sig.type === 'SIG' && sig.data !== null);
    assert.equal(sig.data.typeCovered, 0);
    assert.equal(sig.data.algorithm, 14);
    assert.equal(sig.data.keyTag, 32065);
    assert.equal(sig.data.signerName, 'echo.dynamic.example.org.');
    assert.equal(sig.data.signature.length, 96);
    assert.equal(sig.data.expiration - sig.data.inception, 600);

    assert.deepEqual(d.spans.questions, [{ start: 12, rdataStart: 37, end: 37 }]);
    // "echo" + pointer to offset 12.
    const upd = d.spans.authorities[0];
    assert.equal(upd.start, 37);
    assert.deepEqual(raw.subarray(upd.start, upd.start + 7), Buffer.from([4, 0x65, 0x63, 0x68, 0x6f, 0xc0, 0x0c]));
    assert.deepEqual(raw.subarray(upd.rdataStart, upd.end), Buffer.from([192, 0, 2, 20]));
    const s = d.spans.additionals[0];
    assert.equal(s.start, upd.end);
    assert.equal(s.end, raw.length);
    assert.equal(raw.readUInt16BE(s.rdataStart - 2), s.end - s.rdataStart);
    assert.equal(raw[s.start], 0);
    assert.equal(raw.readUInt16BE(s.start + 1), RRType.SIG);
  });

  it('decodes the uncompressed Go nsregc UPDATE and re-encodes it byte for byte', () => {
    const raw = fixtureBytes('go-nsregc/update.bin');
    const d = decodeMessage(raw);
    assert.equal(d.id, 0xbf08);
    assert.equal(d.opcode, Opcode.UPDATE);
    assert.deepEqual(d.authorities, [
      { name: 'foxtrot.dynamic.example.org.', type: 'A', class: RRClass.IN, ttl: 3600, data: '192.0.2.30' },
    ]);
    const [key, sig] = d.additionals;
    assert.ok(key?.type === 'KEY' && key.data !== null);
    assert.equal(key.name, 'foxtrot.dynamic.example.org.');
    assert.equal(key.ttl, 2592000);
    assert.equal(key.data.flags, 256);
    assert.equal(key.data.algorithm, 14);
    assert.equal(key.data.publicKey.length, 96);
    assert.ok(sig?.type === 'SIG' && sig.data !== null);
    assert.equal(sig.data.signerName, 'foxtrot.dynamic.example.org.');
    assert.deepEqual(encodeMessage(d), raw);
    assert.equal(encodingLength(d), raw.length);
    for (const section of ['questions', 'answers', 'authorities', 'additionals'] as const) {
      let expectStart = section === 'questions' ? 12 : undefined;
      for (const span of d.spans[section]) {
        if (expectStart !== undefined) assert.equal(span.start, expectStart);
        expectStart = span.end;
      }
    }
    assert.equal(d.spans.additionals[1].end, raw.length);
    assert.equal(d.spans.additionals[0].end, d.spans.additionals[1].start);
    const ks = d.spans.additionals[0];
    assert.deepEqual(raw.subarray(ks.rdataStart, ks.rdataStart + 4), Buffer.from([1, 0, 3, 14]));
  });
});

/** A header with the given counts. */
function header(id: number, qd: number, an: number, ns: number, ar: number, flags = 0): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  h.writeUInt16BE(flags, 2);
  h.writeUInt16BE(qd, 4);
  h.writeUInt16BE(an, 6);
  h.writeUInt16BE(ns, 8);
  h.writeUInt16BE(ar, 10);
  return h;
}

const Q = Buffer.concat([encodeName('example.'), Buffer.from([0, 6, 0, 1])]);
const rrFixed = (type: number, rdlength: number): Buffer => {
  const b = Buffer.alloc(10);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(1, 2);
  b.writeUInt32BE(300, 4);
  b.writeUInt16BE(rdlength, 8);
  return b;
};

describe('message: malformed input', () => {
  const ID = 0xabcd;
  const cases: Array<{ what: string; bytes: Buffer; reason: string; id?: number }> = [
    { what: 'empty input', bytes: Buffer.alloc(0), reason: 'truncated-header' },
    { what: '1-byte header', bytes: Buffer.from([0xab]), reason: 'truncated-header' },
    { what: '11-byte header', bytes: header(ID, 0, 0, 0, 0).subarray(0, 11), reason: 'truncated-header', id: ID },
    {
      what: 'question name without terminator',
      bytes: Buffer.concat([header(ID, 1, 0, 0, 0), Buffer.from([7]), Buffer.from('example')]),
      reason: 'truncated-question',
      id: ID,
    },
    {
      what: 'question without type/class',
      bytes: Buffer.concat([header(ID, 1, 0, 0, 0), encodeName('example.'), Buffer.from([0, 6])]),
      reason: 'truncated-question',
      id: ID,
    },
    {
      what: 'RR fixed part cut off',
      bytes: Buffer.concat([header(ID, 0, 1, 0, 0), encodeName('example.'), rrFixed(1, 4).subarray(0, 8)]),
      reason: 'truncated-rr',
      id: ID,
    },
    {
      what: 'RR owner name cut off',
      bytes: Buffer.concat([header(ID, 0, 1, 0, 0), Buffer.from([20]), Buffer.alloc(12, 0x61)]),
      reason: 'truncated-rr',
      id: ID,
    },
    { what: 'QDCOUNT 1 with no data', bytes: header(ID, 1, 0, 0, 0), reason: 'count-overrun', id: ID },
    { what: 'ARCOUNT 1 with no data', bytes: header(ID, 0, 0, 0, 1), reason: 'count-overrun', id: ID },
    { what: 'all counts 65535', bytes: header(ID, 0xffff, 0xffff, 0xffff, 0xffff), reason: 'count-overrun', id: ID },
    {
      what: 'ANCOUNT 65535 with one record',
      bytes: Buffer.concat([header(ID, 0, 0xffff, 0, 0), encodeRecord({ name: 'a.', type: 'A', class: 1, ttl: 0, data: '1.2.3.4' })]),
      reason: 'count-overrun',
      id: ID,
    },
    {
      what: 'counts pass the size estimate but records run out',
      bytes: Buffer.concat([header(ID, 0, 2, 0, 0), encodeRecord({ name: 'a.', type: 'UNKNOWN', code: 99, class: 1, ttl: 0, data: Buffer.alloc(11) })]),
      reason: 'count-overrun',
      id: ID,
    },
    {
      what: 'label length 64',
      bytes: Buffer.concat([header(ID, 1, 0, 0, 0), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]),
      reason: 'label-too-long',
      id: ID,
    },
    {
      what: 'name over 255 octets',
      bytes: Buffer.concat([
        header(ID, 1, 0, 0, 0),
        ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x61)])),
        Buffer.from([0, 0, 1, 0, 1]),
      ]),
      reason: 'name-too-long',
      id: ID,
    },
    {
      what: 'compression loop',
      bytes: Buffer.concat([header(ID, 2, 0, 0, 0), Q, Buffer.from([1, 0x61, 0xc0, 25, 0, 1, 0, 1])]),
      reason: 'pointer-loop',
      id: ID,
    },
    {
      what: 'forward pointer',
      bytes: Buffer.concat([header(ID, 2, 0, 0, 0), Buffer.from([0xc0, 18, 0, 6, 0, 1]), Q]),
      reason: 'forward-pointer',
      id: ID,
    },
    {
      what: 'pointer past the end',
      bytes: Buffer.concat([header(ID, 1, 0, 0, 0), Buffer.from([0xc3, 0xff, 0, 6, 0, 1])]),
      reason: 'forward-pointer',
      id: ID,
    },
    {
      what: 'rdata length overrunning the message',
      bytes: Buffer.concat([header(ID, 0, 1, 0, 0), encodeName('a.'), rrFixed(1, 4), Buffer.from([1, 2, 3])]),
      reason: 'rdata-overrun',
      id: ID,
    },
    {
      what: 'A with 3-byte rdata',
      bytes: Buffer.concat([header(ID, 0, 1, 0, 0), encodeName('a.'), rrFixed(1, 3), Buffer.from([1, 2, 3])]),
      reason: 'bad-rdata',
      id: ID,
    },
    {
      what: 'AAAA with 4-byte rdata',
      bytes: Buffer.concat([header(ID, 0, 1, 0, 0), encodeName('a.'), rrFixed(28, 4), Buffer.from([1, 2, 3, 4])]),
      reason: 'bad-rdata',
      id: ID,
    },
    {
      what: 'CNAME whose name runs past its rdata',
      bytes: Buffer.concat([header(ID, 0, 1, 0, 0), encodeName('a.'), rrFixed(5, 2), encodeName('b.'), Buffer.alloc(0)]),
      reason: 'bad-rdata',
      id: ID,
    },
    {
      what: 'TXT string overrunning its rdata',
      bytes: Buffer.concat([header(ID, 0, 1, 0, 0), encodeName('a.'), rrFixed(16, 3), Buffer.from([5, 0x61, 0x62])]),
      reason: 'bad-rdata',
      id: ID,
    },
    {
      what: 'SIG rdata too short',
      bytes: Buffer.concat([header(ID, 0, 0, 0, 1), encodeName('.'), rrFixed(24, 18), Buffer.alloc(18)]),
      reason: 'bad-rdata',
      id: ID,
    },
    {
      what: 'KEY rdata too short',
      bytes: Buffer.concat([header(ID, 0, 0, 0, 1), encodeName('.'), rrFixed(25, 3), Buffer.alloc(3)]),
      reason: 'bad-rdata',
      id: ID,
    },
    {
      what: 'TSIG MAC size overrunning its rdata',
      bytes: Buffer.concat([
        header(ID, 0, 0, 0, 1),
        encodeName('k.'),
        rrFixed(250, 1 + 10 + 6),
        encodeName('.'),
        Buffer.from([0, 0, 0, 0, 0, 0, 1, 44, 0, 200]),
        Buffer.alloc(6),
      ]),
      reason: 'bad-rdata',
      id: ID,
    },
    {
      what: 'type ANY with rdata',
      bytes: Buffer.concat([header(ID, 0, 0, 1, 0), encodeName('a.'), rrFixed(255, 1), Buffer.from([0])]),
      reason: 'bad-rdata',
      id: ID,
    },
    {
      what: 'trailing garbage',
      bytes: Buffer.concat([header(ID, 1, 0, 0, 0), Q, Buffer.from([0xde, 0xad])]),
      reason: 'trailing-data',
      id: ID,
    },
    {
      what: 'trailing garbage after the nsupdate fixture',
      bytes: Buffer.concat([fixtureBytes('nsupdate-sig0/update.bin'), Buffer.from([0])]),
      reason: 'trailing-data',
      id: 0xb39c,
    },
  ];
  for (const c of cases) {
    it(`${c.what} → ${c.reason}`, () => {
      assertMalformed(() => decodeMessage(c.bytes), c.reason, c.id);
    });
  }

  it('an absurd count is refused without walking the data', () => {
    const big = Buffer.concat([header(ID, 0xffff, 0xffff, 0xffff, 0xffff), Buffer.alloc(60_000)]);
    const start = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++) assertMalformed(() => decodeMessage(big), 'count-overrun', ID);
    assert.ok(process.hrtime.bigint() - start < 2_000_000_000n);
  });

  it('the header-only ID of a 2-byte input is reported', () => {
    assertMalformed(() => decodeMessage(Buffer.from([0x12, 0x34])), 'truncated-header', 0x1234);
  });
});

/** decodeMessage must either return or throw MalformedMessageError. */
function decodeOrMalformed(bytes: Buffer): 'ok' | 'malformed' {
  try {
    decodeMessage(bytes);
    return 'ok';
  } catch (err) {
    if (err instanceof MalformedMessageError && err.code === 'ERR_DNS_MALFORMED') return 'malformed';
    assert.fail(`non-malformed exception for ${bytes.toString('hex')}: ${String(err)}`);
  }
}

describe('message: fuzzing', () => {
  it('20,000 random inputs only ever decode or throw MalformedMessageError', () => {
    const rand = prng(0x5eed);
    const seen = { ok: 0, malformed: 0 };
    const start = Date.now();
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(rand() * 200);
      const bytes = Buffer.alloc(len);
      for (let j = 0; j < len; j++) bytes[j] = Math.floor(rand() * 256);
      // Half the cases get small counts, so the section walkers are reached, not just the count check.
      if (len >= 12 && i % 2 === 0) {
        for (let k = 4; k < 12; k += 2) bytes.writeUInt16BE(Math.floor(rand() * 3), k);
      }
      seen[decodeOrMalformed(bytes)]++;
    }
    assert.ok(seen.malformed > 0);
    assert.ok(seen.ok > 0, 'some random inputs are valid messages (e.g. all counts 0)');
    assert.ok(Date.now() - start < 20_000);
  });

  const fixtures = ['nsupdate-sig0/update.bin', 'go-nsregc/update.bin'];
  for (const f of fixtures) {
    it(`every single-byte change and every truncation of ${f} decodes or is malformed`, () => {
      const raw = fixtureBytes(f);
      const seen = { ok: 0, malformed: 0 };
      for (let i = 0; i < raw.length; i++) {
        for (const v of [0x00, 0xff, 0xc0, 0x3f, 0x40, raw[i] ^ 0x01, raw[i] ^ 0x80]) {
          const m = Buffer.from(raw);
          m[i] = v;
          seen[decodeOrMalformed(m)]++;
        }
        seen[decodeOrMalformed(raw.subarray(0, i))]++;
      }
      assert.ok(seen.ok > 0 && seen.malformed > 0);
    });

    it(`10,000 random multi-byte mutations of ${f} decode or are malformed`, () => {
      const raw = fixtureBytes(f);
      const rand = prng(f.length * 7919);
      for (let i = 0; i < 10_000; i++) {
        const m = Buffer.from(raw);
        const n = 1 + Math.floor(rand() * 4);
        for (let k = 0; k < n; k++) m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
        const cut = rand() < 0.2 ? Math.floor(rand() * m.length) : m.length;
        decodeOrMalformed(m.subarray(0, cut));
      }
    });
  }
});
