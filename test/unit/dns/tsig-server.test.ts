/**
 * The server side of TSIG (RFC 8945 §5.2, §5.3): checking a request and
 * signing the messages of a (multi-message) response, against MACs computed
 * here byte by byte from the RFC's layout.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { Opcode, RRClass, RRType, Rcode } from '../../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../../src/dns/message.js';
import {
  appendTsigError,
  signTsig,
  tsigServerTime,
  TsigResponseSigner,
  verifyTsigRequest,
  verifyTsigResponse,
  type TsigKey,
} from '../../../src/dns/tsig.js';

const NOW = 1_800_000_000;
const KEY: TsigKey = { name: 'xfr.example.', algorithm: 'hmac-sha256', secret: Buffer.from('0123456789abcdef0123456789abcdef') };

/** An uncompressed, lower-case wire name, built label by label. */
function wire(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.');
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l.toLowerCase())])), Buffer.from([0])]);
}

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u48 = (n: number): Buffer => Buffer.from([0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

function axfrRequest(id = 0x2468): Buffer {
  const q = emptyMessage(id, Opcode.QUERY);
  q.questions.push({ name: 'zone.example.', type: RRType.AXFR, class: RRClass.IN });
  return encodeMessage(q);
}

function answer(id: number, owner: string): Buffer {
  const m = emptyMessage(id, Opcode.QUERY);
  m.qr = true;
  m.answers.push({ name: owner, type: 'A', class: RRClass.IN, ttl: 60, data: '192.0.2.1' });
  return encodeMessage(m);
}

function tsigOf(signed: Buffer) {
  const m = decodeMessage(signed);
  const t = m.additionals.at(-1);
  assert.ok(t?.type === 'TSIG' && t.data !== null);
  return t.data;
}

describe('TSIG, server side', () => {
  it('verifyTsigRequest: a request signed with a listed key verifies; unsigned is undefined', () => {
    const signed = signTsig(axfrRequest(), KEY, NOW);
    const check = verifyTsigRequest(decodeMessage(signed.message), [{ ...KEY, name: 'other.' }, KEY], NOW + 10);
    assert.ok(check?.ok);
    assert.equal(check.key, KEY);
    assert.deepEqual(check.tsig.mac, signed.mac);
    assert.equal(verifyTsigRequest(decodeMessage(axfrRequest()), [KEY], NOW), undefined);
  });

  it('BADKEY for an unknown name or algorithm, BADSIG for a wrong secret or tampering, BADTIME (with the key) outside the fudge', () => {
    const signed = signTsig(axfrRequest(), KEY, NOW).message;
    const other = { ...KEY, name: 'other.example.' };
    assert.deepEqual(pick(verifyTsigRequest(decodeMessage(signTsig(axfrRequest(), other, NOW).message), [KEY], NOW)), [false, Rcode.BADKEY]);
    assert.deepEqual(pick(verifyTsigRequest(decodeMessage(signed), [{ ...KEY, algorithm: 'hmac-sha512' }], NOW)), [false, Rcode.BADKEY]);
    assert.deepEqual(pick(verifyTsigRequest(decodeMessage(signed), [{ ...KEY, secret: Buffer.alloc(32, 1) }], NOW)), [false, Rcode.BADSIG]);
    const tampered = Buffer.from(signed);
    tampered[13] ^= 0x20; // a letter of the question name changes case: the MAC covers the bytes as sent
    assert.deepEqual(pick(verifyTsigRequest(decodeMessage(tampered), [KEY], NOW)), [false, Rcode.BADSIG]);
    const late = verifyTsigRequest(decodeMessage(signed), [KEY], NOW + 301);
    assert.deepEqual(pick(late), [false, Rcode.BADTIME]);
    assert.ok(late !== undefined && !late.ok && late.key === KEY);
    assert.deepEqual(pick(verifyTsigRequest(decodeMessage(signed), [KEY], NOW - 300)), [true, undefined]);
  });

  it('each message of a response is MACed as RFC 8945 §4.3.1/§5.3.1 lays out: the first on the request MAC, later ones on the previous MAC with the timers only', () => {
    const req = signTsig(axfrRequest(0x2468), KEY, NOW);
    const signer = new TsigResponseSigner(KEY, req.mac, () => NOW + 1);
    const bodies = [answer(0x2468, 'a.zone.example.'), answer(0x2468, 'b.zone.example.'), answer(0x2468, 'c.zone.example.')];
    const signed = bodies.map((b) => signer.sign(b));
    const hmac = (...parts: Buffer[]): Buffer => {
      const h = crypto.createHmac('sha256', KEY.secret);
      for (const p of parts) h.update(p);
      return h.digest();
    };
    const variables = Buffer.concat([wire(KEY.name), u16(255), Buffer.alloc(4), wire('hmac-sha256.'), u48(NOW + 1), u16(300), u16(0), u16(0)]);
    const timers = Buffer.concat([u48(NOW + 1), u16(300)]);
    const mac1 = hmac(u16(32), req.mac, bodies[0], variables);
    const mac2 = hmac(u16(32), mac1, bodies[1], timers);
    const mac3 = hmac(u16(32), mac2, bodies[2], timers);
    assert.deepEqual(signed.map((s) => tsigOf(s).mac), [mac1, mac2, mac3]);
    assert.ok(signed.every((s) => tsigOf(s).originalId === 0x2468 && tsigOf(s).timeSigned === NOW + 1));
    // The first message is an ordinary signed response to the request.
    assert.equal(verifyTsigResponse(decodeMessage(signed[0]), KEY, req.mac, NOW).error, 0);
  });

  it('error responses: BADKEY/BADSIG carry the error and an empty MAC; BADTIME is signed with the request time and ours in Other Data', () => {
    const body = answer(7, 'a.zone.example.');
    const req = signTsig(axfrRequest(7), KEY, NOW);
    const reqTsig = tsigOf(req.message);
    const bad = tsigOf(appendTsigError(body, KEY.name, reqTsig, Rcode.BADKEY));
    assert.equal(bad.error, Rcode.BADKEY);
    assert.equal(bad.mac.length, 0);
    assert.equal(bad.timeSigned, NOW);
    const signer = new TsigResponseSigner(KEY, req.mac, () => NOW + 1000);
    const badtime = signer.sign(body, { error: Rcode.BADTIME, otherData: tsigServerTime(NOW + 1000), timeSigned: NOW });
    const t = tsigOf(badtime);
    assert.equal(t.error, Rcode.BADTIME);
    assert.deepEqual(t.otherData, u48(NOW + 1000));
    const expected = crypto
      .createHmac('sha256', KEY.secret)
      .update(Buffer.concat([u16(32), req.mac, body, wire(KEY.name), u16(255), Buffer.alloc(4), wire('hmac-sha256.'), u48(NOW), u16(300), u16(Rcode.BADTIME), u16(6), u48(NOW + 1000)]))
      .digest();
    assert.deepEqual(t.mac, expected);
  });
});

function pick(check: ReturnType<typeof verifyTsigRequest>): [boolean, number | undefined] {
  assert.ok(check !== undefined);
  return check.ok ? [true, undefined] : [false, check.error];
}
