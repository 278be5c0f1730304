import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidNameError, MalformedMessageError } from '../../../src/dns/errors.js';
import { RDATA, decodeRData, encodeRData, opaqueRData, type RDataCodec, type RDataType, type RDataTypes } from '../../../src/dns/rdata.js';
import { TSIG_DATA, WITH_DATA } from './samples.js';

function isMalformed(reason: string): (err: unknown) => boolean {
  return (err) => err instanceof MalformedMessageError && err.code === 'ERR_DNS_MALFORMED' && err.reason === reason;
}

/** More values beyond the shared samples: edge cases of each codec. */
const EXTRA: Partial<{ [K in RDataType]: Array<RDataTypes[K]> }> = {
  A: ['0.0.0.0', '255.255.255.255'],
  AAAA: ['::', '::ffff:c000:201', '2001:db8:0:1:1:1:1:1'],
  NS: ['.'],
  CNAME: ['sp\\032ace.Example.'],
  TXT: [[], ['é', 'x'.repeat(255)]],
  SRV: [{ priority: 0, weight: 0, port: 0, target: '.' }],
  KEY: [{ flags: 256, protocol: 3, algorithm: 15, publicKey: Buffer.alloc(0) }],
  TSIG: [{ ...TSIG_DATA, error: 18, mac: Buffer.alloc(0), otherData: Buffer.alloc(0) }],
};

/** Every type with a codec and its values: the shared samples, then the extras. */
function samples(): Map<RDataType, unknown[]> {
  const out = new Map<RDataType, unknown[]>((Object.keys(RDATA) as RDataType[]).map((t) => [t, [...(EXTRA[t] ?? [])]]));
  for (const rr of WITH_DATA) {
    if (rr.type !== 'OPT' && rr.type !== 'UNKNOWN' && rr.type !== 'ANY' && rr.data !== null) out.get(rr.type)?.unshift(rr.data);
  }
  return out;
}

/** encodingLength, encode at offset 0 and at an offset, decode back: all agree. */
function checkCodec<T>(codec: RDataCodec<T>, value: T): void {
  const len = codec.encodingLength(value);
  const alone = Buffer.alloc(len);
  assert.equal(codec.encode(value, alone, 0), len);
  const offset = 7;
  const inside = Buffer.alloc(offset + len + 3, 0xee);
  assert.equal(codec.encode(value, inside, offset), len);
  assert.deepEqual(inside.subarray(offset, offset + len), alone);
  assert.deepEqual(inside.subarray(0, offset), Buffer.alloc(offset, 0xee), 'nothing written before the offset');
  assert.deepEqual(inside.subarray(offset + len), Buffer.alloc(3, 0xee), 'nothing written after the rdata');
  assert.deepEqual(codec.decode(inside, offset, len, 1), value);
  assert.deepEqual(codec.decode(alone, 0, len), value);
}

describe('rdata: every codec of the table', () => {
  for (const [type, values] of samples()) {
    it(`${type}: encodingLength equals the octets encode writes, at offset 0 and inside a message`, () => {
      assert.ok(values.length > 0);
      for (const value of values) checkCodec(RDATA[type] as RDataCodec<unknown>, value);
    });
  }

  it('OPT and unknown types keep their rdata as octets', () => {
    checkCodec(opaqueRData, Buffer.from([0, 10, 0, 2, 1, 2]));
    checkCodec(opaqueRData, Buffer.alloc(0));
  });

  it('encoding leaves the caller\'s values untouched', () => {
    const txt = ['x', 'y'];
    encodeRData('TXT', txt);
    assert.deepEqual(txt, ['x', 'y']);
  });

  it('names in rdata may be compressed on decode (RFC 1035 §4.1.4)', () => {
    // "example." at 0, then CNAME rdata "www" + pointer to 0.
    const msg = Buffer.from([7, ...Buffer.from('example'), 0, 3, ...Buffer.from('www'), 0xc0, 0]);
    assert.equal(RDATA.CNAME.decode(msg, 9, 6), 'www.example.');
  });
});

describe('rdata: KEY', () => {
  it('round-trips', () => {
    const k = { flags: 0x0201, protocol: 3, algorithm: 14, publicKey: Buffer.from([9, 8, 7]) };
    const wire = encodeRData('KEY', k);
    assert.deepEqual(wire, Buffer.from([0x02, 0x01, 3, 14, 9, 8, 7]));
    assert.deepEqual(decodeRData('KEY', wire), k);
  });

  it('allows an empty public key but not fewer than 4 bytes', () => {
    assert.deepEqual(decodeRData('KEY', Buffer.from([1, 0, 3, 15])).publicKey, Buffer.alloc(0));
    assert.throws(() => decodeRData('KEY', Buffer.from([1, 0, 3])), isMalformed('bad-rdata'));
    assert.throws(() => decodeRData('KEY', Buffer.alloc(0)), MalformedMessageError);
  });
});

describe('rdata: addresses', () => {
  it('IPv6 text is lower-case with the leftmost run of two or more zero groups shortened', () => {
    const cases: Array<[string, string]> = [
      ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      // Leftmost, not longest (RFC 5952 §4.2.3 would give 2001:0:0:1::1): the form stored addresses use.
      ['2001:0:0:1:0:0:0:1', '2001::1:0:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
      ['2001:db8::0:1', '2001:db8::1'],
    ];
    for (const [input, text] of cases) {
      const wire = encodeRData('AAAA', input);
      assert.equal(decodeRData('AAAA', wire), text, input);
      assert.deepEqual(encodeRData('AAAA', text), wire, text);
    }
  });

  it('refuses text that is not an address', () => {
    for (const bad of ['1.2.3', '1.2.3.256', '1.2.3.4.5', '', 'a.b.c.d', '::1']) {
      assert.throws(() => encodeRData('A', bad), RangeError, bad);
    }
    for (const bad of ['', ':', ':::', '1::2::3', '12345::', 'g::', 'fe80::1%eth0', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2:3:4:5:6:7:8', '1.2.3.4::', '192.0.2.1']) {
      assert.throws(() => encodeRData('AAAA', bad), RangeError, bad);
    }
  });

  it('an address rdata of the wrong size is malformed', () => {
    assert.throws(() => decodeRData('A', Buffer.alloc(16)), isMalformed('bad-rdata'));
    assert.throws(() => decodeRData('AAAA', Buffer.alloc(4)), isMalformed('bad-rdata'));
  });
});

describe('rdata: refusals', () => {
  it('a TXT string over 255 octets', () => {
    assert.throws(() => encodeRData('TXT', ['é'.repeat(128)]), RangeError);
  });

  it('a name that cannot be put on the wire, already when measuring', () => {
    assert.throws(() => RDATA.PTR.encodingLength('a..b.'), InvalidNameError);
    assert.throws(() => encodeRData('SRV', { priority: 0, weight: 0, port: 0, target: `${'x'.repeat(64)}.` }), InvalidNameError);
  });

  it('a name that does not end where its rdata does', () => {
    const wire = Buffer.from([1, 0x61, 0, 0]);
    assert.throws(() => decodeRData('NS', wire), isMalformed('bad-rdata'));
    assert.throws(() => decodeRData('SRV', Buffer.concat([Buffer.alloc(6), wire])), isMalformed('bad-rdata'));
    assert.throws(() => decodeRData('SOA', Buffer.concat([wire.subarray(0, 3), wire.subarray(0, 3), Buffer.alloc(21)])), isMalformed('bad-rdata'));
  });
});
