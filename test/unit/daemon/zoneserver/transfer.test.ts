/**
 * Zone transfers from the zone server's answer path (serve()): access
 * control, TSIG, AXFR framing and splitting, IXFR answered with the whole
 * zone or the SOA alone. Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Opcode, RRClass, RRType, Rcode } from '../../../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage, type ResourceRecord } from '../../../../src/dns/message.js';
import { signTsig, verifyTsigResponse, type TsigKey } from '../../../../src/dns/tsig.js';
import { Cidr } from '../../../../src/net/address.js';
import type { Authority } from '../../../../src/daemon/zoneserver/authority.js';
import { serve } from '../../../../src/daemon/zoneserver/listener.js';

const ZONE = 'zone.example.';
const KEY: TsigKey = { name: 'xfr.example.', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 7) };
const SERIAL = 1000;
const soaAt = (serial: number): ResourceRecord => ({
  name: ZONE,
  type: 'SOA',
  class: RRClass.IN,
  ttl: 60,
  data: { mname: `ns.${ZONE}`, rname: `h.${ZONE}`, serial, refresh: 60, retry: 60, expire: 604800, minimum: 60 },
});
const soa = soaAt(SERIAL);

function authority(names: number, transfer: Authority['transfer']): Authority {
  const records: ResourceRecord[] = [{ name: ZONE, type: 'NS', class: RRClass.IN, ttl: 3600, data: `ns.${ZONE}` }];
  for (let i = 0; i < names; i++) records.push({ name: `host-${i}.${ZONE}`, type: 'A', class: RRClass.IN, ttl: 60, data: `10.0.${i >> 8}.${i & 0xff}` });
  return {
    apex: ZONE,
    soa: () => soa,
    glue: () => [],
    lookup: (name) => (name === ZONE ? { records: [soa, ...records.slice(0, 1)], exists: true } : { records: [], exists: false }),
    records: () => records,
    transfer,
  };
}

const POLICY = { keys: [KEY], nets: [Cidr.parse('192.0.2.0/24') as Cidr] };
const NOW = 1_800_000_000;

function request(type: number, opts: { serial?: number } = {}): Buffer {
  const q = emptyMessage(0x4242, Opcode.QUERY);
  q.questions.push({ name: ZONE, type, class: RRClass.IN });
  if (opts.serial !== undefined) q.authorities.push(soaAt(opts.serial));
  return encodeMessage(q);
}

function messages(reply: Buffer | Iterable<Buffer> | null): Buffer[] {
  assert.ok(reply !== null);
  return Buffer.isBuffer(reply) ? [reply] : [...reply];
}

const answersOf = (ms: Buffer[]): ResourceRecord[] => ms.flatMap((m) => decodeMessage(m).answers);

describe('zone transfers (serve())', () => {
  it('nobody may transfer without a policy, or from elsewhere unsigned: REFUSED', () => {
    for (const [a, remote] of [
      [authority(3, undefined), '192.0.2.1'],
      [authority(3, { keys: [], nets: [] }), '192.0.2.1'],
      [authority(3, POLICY), '198.51.100.1'],
    ] as const) {
      const [reply] = messages(serve(request(RRType.AXFR), [a], 'tcp', { remote, now: NOW }));
      const m = decodeMessage(reply);
      assert.equal(m.rcode, Rcode.REFUSED);
      assert.equal(m.answers.length, 0);
    }
  });

  it('AXFR from an allowed network: SOA first and last, every record once, each message within 65535 octets', () => {
    const ms = messages(serve(request(RRType.AXFR), [authority(5000, POLICY)], 'tcp', { remote: '192.0.2.9', now: NOW }));
    assert.ok(ms.length >= 2, `${ms.length} messages`);
    assert.ok(ms.every((m) => m.length <= 65535));
    const answers = answersOf(ms);
    assert.equal(answers.length, 5000 + 1 + 2);
    assert.equal(answers[0]?.type, 'SOA');
    assert.equal(answers.at(-1)?.type, 'SOA');
    assert.equal(answers.filter((rr) => rr.type === 'SOA').length, 2);
    assert.equal(new Set(answers.map((rr) => `${rr.name} ${rr.type}`)).size, 5000 + 2);
    const first = decodeMessage(ms[0]);
    assert.ok(first.qr && first.aa && first.id === 0x4242 && first.questions.length === 1);
    assert.ok(ms.slice(1).every((m) => decodeMessage(m).questions.length === 0));
    // Name compression: 5,000 owners under one zone take far less than their full length.
    const total = ms.reduce((n, m) => n + m.length, 0);
    assert.ok(total < 5000 * 30, `${total} octets`);
  });

  it('AXFR signed with a listed key from anywhere: every message TSIG-signed, the first verifiable on the request MAC', () => {
    const req = signTsig(request(RRType.AXFR), KEY, NOW);
    const ms = messages(serve(req.message, [authority(3000, POLICY)], 'tcp', { remote: '203.0.113.5', now: NOW }));
    assert.ok(ms.length >= 2);
    for (const m of ms) assert.equal(decodeMessage(m).additionals.at(-1)?.type, 'TSIG');
    assert.equal(verifyTsigResponse(decodeMessage(ms[0]), KEY, req.mac, NOW).error, 0);
  });

  it('an unknown key or a wrong secret: NOTAUTH with BADKEY/BADSIG in an unsigned TSIG; a stale time: BADTIME, signed', () => {
    for (const [key, now, error] of [
      [{ ...KEY, name: 'other.example.' }, NOW, Rcode.BADKEY],
      [{ ...KEY, secret: Buffer.alloc(32, 8) }, NOW, Rcode.BADSIG],
      [KEY, NOW + 1000, Rcode.BADTIME],
    ] as const) {
      const req = signTsig(request(RRType.AXFR), key, NOW);
      const [reply] = messages(serve(req.message, [authority(3, POLICY)], 'tcp', { remote: '192.0.2.9', now }));
      const m = decodeMessage(reply);
      assert.equal(m.rcode, Rcode.NOTAUTH);
      assert.equal(m.answers.length, 0);
      const t = m.additionals.at(-1);
      assert.ok(t?.type === 'TSIG' && t.data !== null);
      assert.equal(t.data.error, error);
      assert.equal(t.data.mac.length, error === Rcode.BADTIME ? 32 : 0);
    }
  });

  it('a signed ordinary query is answered signed', () => {
    const q = emptyMessage(9, Opcode.QUERY);
    q.questions.push({ name: ZONE, type: RRType.SOA, class: RRClass.IN });
    const req = signTsig(encodeMessage(q), KEY, NOW);
    const [reply] = messages(serve(req.message, [authority(3, POLICY)], 'udp', { remote: '203.0.113.5', now: NOW }));
    const m = decodeMessage(reply);
    assert.equal(m.answers[0]?.type, 'SOA');
    assert.equal(verifyTsigResponse(m, KEY, req.mac, NOW).error, 0);
  });

  it('over UDP: AXFR is FORMERR, IXFR gets the SOA alone', () => {
    const peer = { remote: '192.0.2.9', now: NOW };
    const [axfr] = messages(serve(request(RRType.AXFR), [authority(3, POLICY)], 'udp', peer));
    assert.equal(decodeMessage(axfr).rcode, Rcode.FORMERR);
    const ixfr = messages(serve(request(RRType.IXFR, { serial: SERIAL - 5 }), [authority(3, POLICY)], 'udp', peer));
    assert.deepEqual(answersOf(ixfr).map((rr) => rr.type), ['SOA']);
  });

  it('IXFR over TCP with a known serial: the differences in RFC 1995 §4 form, the new SOA first and last', () => {
    const a = authority(3, POLICY);
    const added: ResourceRecord = { name: `new.${ZONE}`, type: 'A', class: RRClass.IN, ttl: 60, data: '192.0.2.99' };
    const gone: ResourceRecord = { name: `host-0.${ZONE}`, type: 'A', class: RRClass.IN, ttl: 60, data: '10.0.0.0' };
    const asked: number[] = [];
    a.changesSince = (serial) => {
      asked.push(serial);
      return serial === SERIAL - 2 ? [{ from: SERIAL - 2, to: SERIAL - 1, deleted: [gone], added: [] }, { from: SERIAL - 1, to: SERIAL, deleted: [], added: [added] }] : undefined;
    };
    const answers = answersOf(messages(serve(request(RRType.IXFR, { serial: SERIAL - 2 }), [a], 'tcp', { remote: '192.0.2.9', now: NOW })));
    const show = (rr: ResourceRecord): string => (rr.type === 'SOA' && rr.data !== null ? `SOA ${rr.data.serial}` : `${rr.name} ${JSON.stringify(rr.data)}`);
    assert.deepEqual(answers.map(show), [
      `SOA ${SERIAL}`,
      `SOA ${SERIAL - 2}`,
      `host-0.${ZONE} "10.0.0.0"`,
      `SOA ${SERIAL - 1}`,
      `SOA ${SERIAL - 1}`,
      `SOA ${SERIAL}`,
      `new.${ZONE} "192.0.2.99"`,
      `SOA ${SERIAL}`,
    ]);
    // Unknown to the history: the whole zone.
    assert.equal(answersOf(messages(serve(request(RRType.IXFR, { serial: SERIAL - 7 }), [a], 'tcp', { remote: '192.0.2.9', now: NOW }))).length, 3 + 1 + 2);
    assert.deepEqual(asked, [SERIAL - 2, SERIAL - 7]);
  });

  it('IXFR over TCP: an up-to-date client gets the SOA alone, one behind gets the whole zone; no SOA in the request is FORMERR', () => {
    const peer = { remote: '192.0.2.9', now: NOW };
    const a = authority(3, POLICY);
    assert.deepEqual(answersOf(messages(serve(request(RRType.IXFR, { serial: SERIAL }), [a], 'tcp', peer))).map((rr) => rr.type), ['SOA']);
    const behind = answersOf(messages(serve(request(RRType.IXFR, { serial: SERIAL - 1 }), [a], 'tcp', peer)));
    assert.equal(behind.length, 3 + 1 + 2);
    // RFC 1982: a serial "ahead" by wrap-around is behind.
    const wrapped = answersOf(messages(serve(request(RRType.IXFR, { serial: (SERIAL + 0x80000001) >>> 0 }), [a], 'tcp', peer)));
    assert.equal(wrapped.length, 3 + 1 + 2);
    const [bad] = messages(serve(request(RRType.IXFR), [a], 'tcp', peer));
    assert.equal(decodeMessage(bad).rcode, Rcode.FORMERR);
  });
});
