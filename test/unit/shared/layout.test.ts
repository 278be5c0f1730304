/**
 * The shared store's keys and value codecs: every value round-trips, and
 * every malformed key or value (as a hostile etcd could hold it) is refused
 * with a reason instead of decoding.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Algorithm } from '../../../src/dns/constants.js';
import { generateKeyPair, keyTag, publicKeyToRData } from '../../../src/dns/keys.js';
import type { AddrRecord } from '../../../src/daemon/records.js';
import { decodeRData, encodeRData } from '../../../src/dns/rdata.js';
import type { StoredChange, StoredClaim } from '../../../src/daemon/shared/contract.js';
import {
  DEADLINES_PREFIX,
  LayoutError,
  MAX_CHANGE_RECORDS,
  MAX_DEADLINES_BYTES,
  MAX_TTL,
  MAX_VALUE_BYTES,
  SERIAL_KEY,
  changeKey,
  claimKey,
  deadlinesKey,
  decodeChange,
  decodeClaim,
  decodeDeadlines,
  decodeLeader,
  decodeRecord,
  decodeResult,
  encodeChange,
  encodeClaim,
  encodeDeadlines,
  encodeLeader,
  encodeRecord,
  encodeResult,
  isCanonicalAddress,
  parseZoneKey,
  recordPath,
  recordSlot,
  recordsOfNamePrefix,
  resultKey,
  slotRecord,
  splitZoneKey,
  zoneNamespacePrefix,
  type Decoded,
} from '../../../src/daemon/shared/layout.js';

function value<T>(d: Decoded<T>): T {
  assert.ok(d.ok, d.ok ? '' : `expected a value, got: ${d.reason}`);
  return d.value;
}

function refused<T>(d: Decoded<T>, reason?: RegExp): void {
  assert.equal(d.ok, false, `expected a refusal, got ${JSON.stringify(d)}`);
  if (reason !== undefined && !d.ok) assert.match(d.reason, reason);
}

const rec = (name: string, type: 'A' | 'AAAA', address: string, ttl = 300): AddrRecord => ({ name, type, address, ttl });

describe('layout keys', () => {
  it('builds the zone namespace from the canonical zone, percent-encoded', () => {
    assert.equal(zoneNamespacePrefix('/nsregd', 'Example.TEST'), '/nsregd/v1/zones/example.test./');
    assert.equal(zoneNamespacePrefix('/p', 'a\\/b.test.'), '/p/v1/zones/a%2Fb.test./');
    assert.throws(() => zoneNamespacePrefix('/p', '.'), LayoutError);
    assert.throws(() => zoneNamespacePrefix('/p', 'a..b'), LayoutError);
  });

  it('splits a full key into zone and relative key', () => {
    assert.deepEqual(splitZoneKey('/p', '/p/v1/zones/example.test./keys/h.example.test.'), { zone: 'example.test.', key: 'keys/h.example.test.' });
    assert.equal(splitZoneKey('/p', '/q/v1/zones/example.test./serial'), undefined);
    assert.equal(splitZoneKey('/p', '/p/v1/zones/Example.test./serial'), undefined, 'zone not canonical');
    assert.equal(splitZoneKey('/p', '/p/v1/zones/example.test.'), undefined, 'no relative key');
    assert.equal(splitZoneKey('/p', '/p/v1/zones//serial'), undefined);
  });

  it('round-trips every kind of key', () => {
    const cases: Array<[string, ReturnType<typeof parseZoneKey>]> = [
      [claimKey('h.example.test.'), { kind: 'claim', name: 'h.example.test.' }],
      [deadlinesKey('h.example.test.'), { kind: 'deadlines', name: 'h.example.test.' }],
      [deadlinesKey('a/b.example.test.'), { kind: 'deadlines', name: 'a/b.example.test.' }],
      [claimKey('a/b.example.test.'), { kind: 'claim', name: 'a/b.example.test.' }],
      [claimKey('a\\.b.example.test.'), { kind: 'claim', name: 'a\\.b.example.test.' }],
      [recordPath(rec('h.example.test.', 'A', '192.0.2.1')), { kind: 'record', name: 'h.example.test.', type: 'A', address: '192.0.2.1' }],
      [recordPath(rec('h.example.test.', 'AAAA', '2001:db8::1')), { kind: 'record', name: 'h.example.test.', type: 'AAAA', address: '2001:db8::1' }],
      [changeKey('0f6c1c9e-1b9a-4a51-a0b5-0f3f4c1a2b3c'), { kind: 'change', id: '0f6c1c9e-1b9a-4a51-a0b5-0f3f4c1a2b3c' }],
      [resultKey('n1.42'), { kind: 'result', id: 'n1.42' }],
      ['serial', { kind: 'serial' }],
      ['leader', { kind: 'leader' }],
    ];
    for (const [key, expected] of cases) assert.deepEqual(parseZoneKey(key), expected, key);
    assert.equal(claimKey('a/b.example.test.'), 'keys/a%2Fb.example.test.');
    assert.equal(claimKey('a\\.b.example.test.'), 'keys/a%5C.b.example.test.');
    assert.ok(recordPath(rec('h.example.test.', 'A', '192.0.2.1')).startsWith(recordsOfNamePrefix('h.example.test.')));
    assert.equal(deadlinesKey('a/b.example.test.'), 'until/a%2Fb.example.test.');
  });

  it('sorts the deadlines after every other key of a zone namespace (a mirror without them reads one range)', () => {
    const others = [claimKey('z.example.test.'), recordPath(rec('z.example.test.', 'A', '192.0.2.1')), changeKey('zz'), resultKey('zz'), SERIAL_KEY, 'leader'];
    for (const k of others) assert.ok(Buffer.compare(Buffer.from(k), Buffer.from(DEADLINES_PREFIX)) < 0, k);
  });

  it('takes an IPv4 address as canonical exactly when the A codec writes it so', () => {
    for (const address of ['0.0.0.0', '192.0.2.1', '255.255.255.255', '10.0.0.10', '1.2.3.4', '192.0.2.01', '256.0.0.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.4 ', '', 'a.b.c.d', '1..2.3', '-1.2.3.4', '1.2.3.249', '1.2.3.250', '1.2.3.199', '1.2.3.00']) {
      let codec: boolean;
      try {
        codec = decodeRData('A', encodeRData('A', address)) === address;
      } catch {
        codec = false;
      }
      assert.equal(isCanonicalAddress('A', address), codec, address);
    }
  });

  it('names a record by <type>/<address> within its name', () => {
    assert.equal(recordSlot(rec('h.example.test.', 'AAAA', '2001:db8::1')), 'AAAA/2001:db8::1');
    assert.deepEqual(slotRecord('h.example.test.', 'AAAA/2001:db8::1', 60), rec('h.example.test.', 'AAAA', '2001:db8::1', 60));
    for (const slot of ['', 'A', 'A/', '/192.0.2.1', 'MX/192.0.2.1', 'A/192.0.2.01', 'A/2001:db8::1', 'AAAA/2001:DB8::1', 'A/192.0.2.1/x']) {
      assert.equal(slotRecord('h.example.test.', slot, 0), undefined, slot);
    }
  });

  it('refuses to build keys for what would not parse back', () => {
    assert.throws(() => claimKey('H.example.test.'), LayoutError);
    assert.throws(() => claimKey('h.example.test'), LayoutError);
    assert.throws(() => claimKey('.'), LayoutError);
    assert.throws(() => recordPath(rec('h.example.test.', 'A', '192.0.2.01')), LayoutError);
    assert.throws(() => recordPath(rec('h.example.test.', 'AAAA', '2001:DB8::1')), LayoutError);
    assert.throws(() => recordPath(rec('h.example.test.', 'A', '2001:db8::1')), LayoutError);
    assert.throws(() => recordPath({ name: 'h.example.test.', type: 'MX' as 'A', address: '192.0.2.1' }), LayoutError);
    assert.throws(() => changeKey('a/b'), LayoutError);
    assert.throws(() => changeKey(''), LayoutError);
    assert.throws(() => resultKey('x'.repeat(129)), LayoutError);
  });

  it('parses nothing that is not exactly a layout key', () => {
    for (const key of [
      '',
      'keys/',
      'keys/H.example.test.',
      'keys/h.example.test',
      'keys/h.example.test./x',
      'keys/%E0%A4%A',
      'keys/%68.example.test.',
      'keys/.',
      'until/',
      'until/h.example.test',
      'until/h.example.test./A',
      'recs/h.example.test./A',
      'recs/h.example.test./MX/192.0.2.1',
      'recs/h.example.test./A/192.0.2.01',
      'recs/h.example.test./A/2001:db8::1',
      'recs/h.example.test./AAAA/2001:DB8::1',
      'recs/h.example.test./AAAA/2001:0db8::1',
      'recs/h.example.test./A/192.0.2.1/x',
      'changes/a b',
      'changes/',
      'results/a/b',
      'serial/x',
      'Leader',
      'other/x',
    ]) {
      assert.equal(parseZoneKey(key), undefined, key);
    }
  });
});

function claimOf(algorithm: number): StoredClaim {
  const rdata = publicKeyToRData(generateKeyPair(algorithm).publicKey, algorithm);
  return { rdata, keyTag: keyTag(rdata) };
}

describe('claim codec', () => {
  it('round-trips a claim', () => {
    for (const algorithm of [Algorithm.ED25519, Algorithm.ECDSAP256SHA256]) {
      const c = claimOf(algorithm);
      const back = value(decodeClaim(Buffer.from(encodeClaim(c))));
      assert.deepEqual(back, c);
    }
  });

  it('refuses malformed claims', () => {
    const good = JSON.parse(encodeClaim(claimOf(Algorithm.ED25519))) as Record<string, unknown>;
    const variant = (patch: Record<string, unknown>): string => JSON.stringify({ ...good, ...patch });
    const without = (field: string): string => JSON.stringify(Object.fromEntries(Object.entries(good).filter(([k]) => k !== field)));
    refused(decodeClaim('not json'), /JSON/);
    refused(decodeClaim('[]'), /claim object/);
    refused(decodeClaim('null'), /claim object/);
    refused(decodeClaim(without('tag')), /claim object/);
    refused(decodeClaim(variant({ extra: 1 })), /claim object/);
    refused(decodeClaim(variant({ flags: 65536 })), /range/);
    refused(decodeClaim(variant({ flags: -1 })), /range/);
    refused(decodeClaim(variant({ protocol: 256 })), /range/);
    refused(decodeClaim(variant({ algorithm: 1.5 })), /range/);
    refused(decodeClaim(variant({ algorithm: '15' })), /range/);
    refused(decodeClaim(variant({ key: '' })), /public key/);
    refused(decodeClaim(variant({ key: 42 })), /public key/);
    refused(decodeClaim(variant({ key: 'not base64!' })), /base64/);
    refused(decodeClaim(variant({ key: Buffer.alloc(4096, 1).toString('base64') })), /bytes/);
    refused(decodeClaim(variant({ tag: 70000 })), /tag/);
    refused(decodeClaim(variant({ tag: ((good.tag as number) + 1) % 65536 })), /key tag/);
    // Deadlines are under until/, not in the claim.
    refused(decodeClaim(variant({ expiry: 1_800_000_000_000 })), /claim object/);
    refused(decodeClaim(variant({ signed: 1_800_000_000_000 })), /claim object/);
    refused(decodeClaim(`{"pad":"${'x'.repeat(MAX_VALUE_BYTES)}"}`), /bytes/);
  });

  it('refuses a key outside the claim cost bounds (RSA below 2048 bits)', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const rdata = publicKeyToRData(publicKey, Algorithm.RSASHA256);
    const text = JSON.stringify({ flags: 256, protocol: 3, algorithm: 8, key: rdata.publicKey.toString('base64'), tag: keyTag(rdata) });
    refused(decodeClaim(text), /RSA modulus/);
    assert.throws(() => encodeClaim({ rdata, keyTag: keyTag(rdata) }), LayoutError);
  });

  it('refuses to encode a claim whose key tag is wrong', () => {
    const c = claimOf(Algorithm.ED25519);
    assert.throws(() => encodeClaim({ ...c, keyTag: (c.keyTag + 1) % 65536 }), LayoutError);
  });
});

describe('record codec', () => {
  it('round-trips a record at the ends of the TTL range', () => {
    for (const ttl of [0, 300, MAX_TTL]) {
      assert.deepEqual(value(decodeRecord(encodeRecord({ ttl }))), { ttl });
    }
  });

  it('refuses malformed records', () => {
    refused(decodeRecord('{'), /JSON/);
    refused(decodeRecord('{}'), /record object/);
    refused(decodeRecord('{"ttl":300,"x":0}'), /record object/);
    // Deadlines are under until/, not in the record.
    refused(decodeRecord('{"ttl":300,"expiresAt":1}'), /record object/);
    refused(decodeRecord(`{"ttl":${MAX_TTL + 1}}`), /TTL/);
    refused(decodeRecord('{"ttl":-1}'), /TTL/);
    refused(decodeRecord('{"ttl":1.5}'), /TTL/);
    refused(decodeRecord('{"ttl":"300"}'), /TTL/);
    refused(decodeRecord(Buffer.alloc(MAX_VALUE_BYTES + 1, 0x20)), /bytes/);
    assert.throws(() => encodeRecord({ ttl: -5 }), LayoutError);
    assert.throws(() => encodeRecord({ ttl: Number.NaN }), LayoutError);
  });
});

describe('deadlines codec', () => {
  it('round-trips deadlines, with and without the newest inception', () => {
    const records = new Map([
      ['A/192.0.2.1', 1_800_000_000_123],
      ['AAAA/2001:db8::1', -5],
    ]);
    for (const d of [{ expiry: 1_800_000_000_000, records }, { expiry: 0, signedAt: 1_700_000_000_000, records: new Map<string, number>() }]) {
      assert.deepEqual(value(decodeDeadlines(Buffer.from(encodeDeadlines(d)))), d);
    }
  });

  it('holds the deadlines of a name at the record bound, and no more', () => {
    const full = new Map(Array.from({ length: MAX_CHANGE_RECORDS }, (_, i) => [`AAAA/2001:db8:ffff:ffff:ffff:ffff:${((i >> 8) + 1).toString(16)}:${((i & 255) + 1).toString(16)}`, 8.64e15]));
    assert.equal(value(decodeDeadlines(encodeDeadlines({ expiry: 8.64e15, signedAt: 8.64e15, records: full }))).records.size, MAX_CHANGE_RECORDS);
    const over = new Map([...full, ['A/192.0.2.1', 1]]);
    assert.throws(() => encodeDeadlines({ expiry: 1, records: over }), LayoutError);
  });

  it('refuses malformed deadlines', () => {
    refused(decodeDeadlines('nope'), /JSON/);
    refused(decodeDeadlines('[]'), /deadlines object/);
    refused(decodeDeadlines('{"expiry":1}'), /deadlines object/);
    refused(decodeDeadlines('{"expiry":1,"recs":{},"x":0}'), /deadlines object/);
    refused(decodeDeadlines('{"expiry":"1","recs":{}}'), /expiry/);
    refused(decodeDeadlines('{"expiry":1e300,"recs":{}}'), /expiry/);
    refused(decodeDeadlines('{"expiry":1,"signed":null,"recs":{}}'), /signed/);
    refused(decodeDeadlines('{"expiry":1,"recs":[]}'), /recs/);
    refused(decodeDeadlines('{"expiry":1,"recs":{"A/192.0.2.01":1}}'), /canonical/);
    refused(decodeDeadlines('{"expiry":1,"recs":{"MX/192.0.2.1":1}}'), /canonical/);
    refused(decodeDeadlines('{"expiry":1,"recs":{"__proto__":1}}'), /canonical/);
    refused(decodeDeadlines('{"expiry":1,"recs":{"A/192.0.2.1":"1"}}'), /not a time/);
    refused(decodeDeadlines(`{"expiry":1,"recs":{},"pad":"${'x'.repeat(MAX_DEADLINES_BYTES)}"}`), /bytes/);
    const many = Object.fromEntries(Array.from({ length: MAX_CHANGE_RECORDS + 1 }, (_, i) => [`A/10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 1]));
    refused(decodeDeadlines(JSON.stringify({ expiry: 1, recs: many })), /more than/);
    assert.throws(() => encodeDeadlines({ expiry: Number.NaN, records: new Map() }), LayoutError);
    assert.throws(() => encodeDeadlines({ expiry: 1, records: new Map([['A/1.2.3.4.5', 1]]) }), LayoutError);
  });
});

describe('change codec', () => {
  const change: StoredChange = {
    by: 'daemon-1',
    at: 1_800_000_000_000,
    change: {
      add: [rec('a.example.test.', 'A', '192.0.2.1'), rec('a.example.test.', 'AAAA', '2001:db8::1', 60)],
      remove: [rec('b.example.test.', 'A', '192.0.2.2')],
      removeNames: [
        { name: 'c.example.test.', addresses: [rec('c.example.test.', 'A', '192.0.2.3')] },
        { name: 'd.example.test.', addresses: [] },
      ],
    },
  };

  it('round-trips a change, compactly', () => {
    const text = encodeChange(change);
    assert.deepEqual(value(decodeChange(Buffer.from(text))), change);
    assert.ok(!text.includes('\n') && !text.includes(': '));
  });

  it('refuses malformed changes', () => {
    const good = JSON.parse(encodeChange(change)) as Record<string, unknown>;
    const variant = (patch: Record<string, unknown>): string => JSON.stringify({ ...good, ...patch });
    refused(decodeChange('"x"'), /change object/);
    refused(decodeChange(variant({ extra: true })), /change object/);
    refused(decodeChange(variant({ by: '' })), /instance id/);
    refused(decodeChange(variant({ by: 7 })), /instance id/);
    refused(decodeChange(variant({ at: Infinity })), /at is not/); // JSON turns Infinity into null
    refused(decodeChange(variant({ add: {} })), /add or remove/);
    refused(decodeChange(variant({ add: [['a.example.test.', 'A', '192.0.2.1']] })), /add or remove/);
    refused(decodeChange(variant({ add: [['A.example.test.', 'A', '192.0.2.1', 1]] })), /add or remove/);
    refused(decodeChange(variant({ add: [['a.example.test.', 'TXT', '192.0.2.1', 1]] })), /add or remove/);
    refused(decodeChange(variant({ add: [['a.example.test.', 'A', '192.0.2.300', 1]] })), /add or remove/);
    refused(decodeChange(variant({ remove: [['a.example.test.', 'AAAA', '2001:db8:0:0::1', 1]] })), /add or remove/);
    refused(decodeChange(variant({ remove: [['a.example.test.', 'A', '192.0.2.1', -1]] })), /add or remove/);
    refused(decodeChange(variant({ removeNames: 'c' })), /removeNames/);
    refused(decodeChange(variant({ removeNames: [['c.example.test.']] })), /removeNames/);
    refused(decodeChange(variant({ removeNames: [['c.example.test', []]] })), /canonical name/);
    refused(decodeChange(variant({ removeNames: [['c.example.test.', [['c', 'A', '192.0.2.1', 1]]]] })), /addresses/);
  });

  it('caps the records of one change, over all its lists', () => {
    const many = (n: number): AddrRecord[] => Array.from({ length: n }, (_, i) => rec(`h${i}.example.test.`, 'A', `10.0.${i >> 8}.${i & 255}`));
    const half = MAX_CHANGE_RECORDS / 2;
    const full: StoredChange = { by: 'd', at: 0, change: { add: many(half), remove: many(half), removeNames: [] } };
    assert.equal(value(decodeChange(encodeChange(full))).change.add.length, half);
    const over = { by: 'd', at: 0, add: many(half).map((r) => [r.name, r.type, r.address, r.ttl]), remove: [], removeNames: [] as unknown[] };
    over.removeNames = [['x.example.test.', many(half + 1).map((r) => [r.name, r.type, r.address, r.ttl])]];
    refused(decodeChange(JSON.stringify(over)), /removeNames/);
    assert.throws(() => encodeChange({ ...full, change: { ...full.change, add: many(half + 1) } }), LayoutError);
  });
});

describe('result and leader codecs', () => {
  it('round-trips results', () => {
    assert.deepEqual(value(decodeResult(encodeResult({ ok: true }))), { ok: true });
    assert.deepEqual(value(decodeResult(encodeResult({ ok: false, reason: 'upstream 1: REFUSED' }))), { ok: false, reason: 'upstream 1: REFUSED' });
  });

  it('refuses malformed results', () => {
    refused(decodeResult('{}'), /result object/);
    refused(decodeResult('{"ok":"yes"}'), /result object/);
    refused(decodeResult('{"ok":true,"why":"x"}'), /result object/);
    refused(decodeResult('{"ok":false,"reason":5}'), /reason/);
    refused(decodeResult(JSON.stringify({ ok: false, reason: 'x'.repeat(513) })), /reason/);
    assert.throws(() => encodeResult({ ok: false, reason: 'x'.repeat(513) }), LayoutError);
  });

  it('round-trips the leader value and refuses what is no instance id', () => {
    assert.equal(value(decodeLeader(Buffer.from(encodeLeader('host-1/4711')))), 'host-1/4711');
    refused(decodeLeader(''), /instance id/);
    refused(decodeLeader('a\nb'), /instance id/);
    refused(decodeLeader(Buffer.from([0xff, 0xfe])), /instance id/);
    refused(decodeLeader('x'.repeat(513)), /instance id/);
    refused(decodeLeader(Buffer.alloc(MAX_VALUE_BYTES + 1, 0x61)), /bytes/);
    assert.throws(() => encodeLeader(''), LayoutError);
  });
});
