import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { Opcode, RRClass, Rcode } from '../../../src/dns/constants.js';
import { TsigError } from '../../../src/dns/errors.js';
import { decodeMessage, encodeMessage, type Message } from '../../../src/dns/message.js';
import {
  DEFAULT_TSIG_FUDGE,
  signTsig,
  signTsigResponse,
  supportedTsigAlgorithms,
  tsigAlgorithm,
  tsigLength,
  verifyTsigResponse,
  type TsigKey,
} from '../../../src/dns/tsig.js';
import { addRecord, buildUpdate } from '../../../src/dns/update.js';

const NOW = 1_800_000_000;
const ALGORITHMS = [
  ['hmac-sha1', 20],
  ['hmac-sha224', 28],
  ['hmac-sha256', 32],
  ['hmac-sha384', 48],
  ['hmac-sha512', 64],
] as const;

function request(id = 0x1357): Message {
  return buildUpdate({
    id,
    zone: 'zone.example.',
    updates: [addRecord({ name: 'h.zone.example.', type: 'A', class: RRClass.IN, ttl: 300, data: '192.0.2.1' })],
  });
}

/** The server's answer to `req`: same ID, QR set, zone section echoed. */
function response(req: Message, rcode: number = Rcode.NOERROR): Buffer {
  return encodeMessage({ ...req, qr: true, rcode, authorities: [] });
}

function assertTsigError(fn: () => unknown, reason: string, remote: boolean): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TsigError, `expected TsigError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_DNS_TSIG');
    assert.equal(err.reason, reason, err.message);
    assert.equal(err.remote, remote);
    return true;
  });
}

function keyFor(algorithm: string): TsigKey {
  return { name: 'Update-Key.Example.', algorithm, secret: crypto.randomBytes(32) };
}

describe('TSIG: request signing (RFC 8945 §4.3)', () => {
  for (const [alg, size] of ALGORITHMS) {
    it(`tsigLength is what signing with ${alg} adds, MAC of ${size} octets included`, () => {
      const key = keyFor(alg);
      const unsigned = encodeMessage(request());
      const { message, mac } = signTsig(unsigned, key, NOW);
      assert.equal(mac.length, size);
      assert.equal(tsigLength(key), message.length - unsigned.length);
    });
  }

  it('appends a TSIG RR as the last additional with the right fields and an independently computed MAC', () => {
    const key = keyFor('hmac-sha256');
    const unsigned = encodeMessage(request());
    const { message, mac } = signTsig(unsigned, key, NOW);
    const d = decodeMessage(message);
    assert.equal(d.additionals.length, 1);
    const rr = d.additionals[0];
    assert.ok(rr.type === 'TSIG' && rr.data !== null);
    assert.equal(rr.name, 'update-key.example.');
    assert.equal(rr.class, RRClass.ANY);
    assert.equal(rr.ttl, 0);
    assert.equal(rr.data.algorithm, 'hmac-sha256.');
    assert.equal(rr.data.timeSigned, NOW);
    assert.equal(rr.data.fudge, DEFAULT_TSIG_FUDGE);
    assert.equal(rr.data.originalId, 0x1357);
    assert.equal(rr.data.error, 0);
    assert.deepEqual(rr.data.mac, mac);
    assert.deepEqual(message.subarray(12, unsigned.length), unsigned.subarray(12));
    // §4.3.3 variables, written out by hand: key name, class ANY, TTL 0, algorithm, time, fudge, error, other len.
    const vars = Buffer.concat([
      Buffer.from('0a7570646174652d6b6579076578616d706c6500', 'hex'),
      Buffer.from([0, 255, 0, 0, 0, 0]),
      Buffer.from('0b686d61632d73686132353600', 'hex'),
      Buffer.from([0, 0, 0x6b, 0x49, 0xd2, 0x00]),
      Buffer.from([0x01, 0x2c, 0, 0, 0, 0]),
    ]);
    assert.equal(NOW, 0x6b49d200);
    const expected = crypto.createHmac('sha256', key.secret).update(unsigned).update(vars).digest();
    assert.deepEqual(mac, expected);
  });

  it('knows the five HMAC algorithms by name', () => {
    assert.deepEqual(supportedTsigAlgorithms().sort(), ALGORITHMS.map(([n]) => `${n}.`).sort());
    assert.equal(tsigAlgorithm('HMAC-SHA256'), 'hmac-sha256.');
    assert.equal(tsigAlgorithm('hmac-md5.sig-alg.reg.int.'), undefined);
    assertTsigError(() => signTsig(encodeMessage(request()), keyFor('hmac-md5'), NOW), 'unknown-algorithm', false);
  });
});

describe('TSIG: response verification', () => {
  for (const [algorithm, macSize] of ALGORITHMS) {
    describe(algorithm, () => {
      const key = keyFor(algorithm);
      const req = request();
      const signedReq = signTsig(encodeMessage(req), key, NOW);

      it('a response signed by the server verifies', () => {
        assert.equal(signedReq.mac.length, macSize);
        const resp = signTsigResponse(response(req), key, signedReq.mac, NOW + 2);
        const t = verifyTsigResponse(decodeMessage(resp), key, signedReq.mac, NOW);
        assert.equal(t.timeSigned, NOW + 2);
        assert.equal(t.mac.length, macSize);
        // Key name and algorithm compare case-insensitively.
        verifyTsigResponse(decodeMessage(resp), { ...key, name: 'update-key.example', algorithm: algorithm.toUpperCase() }, signedReq.mac, NOW);
      });

      it('a tampered response → BADSIG (local)', () => {
        const resp = signTsigResponse(response(req), key, signedReq.mac, NOW);
        const d = decodeMessage(resp);
        const tsigStart = d.spans.additionals[0].start;
        for (const i of [2, 3, 13, 14, 20, tsigStart - 1]) {
          const m = Buffer.from(resp);
          m[i] = m[i] ^ 0x01;
          assertTsigError(() => verifyTsigResponse(decodeMessage(m), key, signedReq.mac, NOW), 'BADSIG', false);
        }
        const macAt = resp.length - 6 - macSize;
        const m = Buffer.from(resp);
        m[macAt] = m[macAt] ^ 0x01;
        assertTsigError(() => verifyTsigResponse(decodeMessage(m), key, signedReq.mac, NOW), 'BADSIG', false);
      });

      it('a response chained on another request MAC, or with another secret → BADSIG', () => {
        const resp = signTsigResponse(response(req), key, signedReq.mac, NOW);
        const otherMac = Buffer.from(signedReq.mac);
        otherMac[0] = otherMac[0] ^ 1;
        assertTsigError(() => verifyTsigResponse(decodeMessage(resp), key, otherMac, NOW), 'BADSIG', false);
        assertTsigError(
          () => verifyTsigResponse(decodeMessage(resp), { ...key, secret: crypto.randomBytes(32) }, signedReq.mac, NOW),
          'BADSIG',
          false,
        );
      });

      it('a wrong key name or algorithm → key-mismatch', () => {
        const resp = signTsigResponse(response(req), key, signedReq.mac, NOW);
        assertTsigError(
          () => verifyTsigResponse(decodeMessage(resp), { ...key, name: 'other-key.' }, signedReq.mac, NOW),
          'key-mismatch',
          false,
        );
        const otherAlg = algorithm === 'hmac-sha256' ? 'hmac-sha512' : 'hmac-sha256';
        assertTsigError(
          () => verifyTsigResponse(decodeMessage(resp), { ...key, algorithm: otherAlg }, signedReq.mac, NOW),
          'key-mismatch',
          false,
        );
      });

      it('time outside the fudge → BADTIME (local), inside it is fine', () => {
        const resp = signTsigResponse(response(req), key, signedReq.mac, NOW);
        verifyTsigResponse(decodeMessage(resp), key, signedReq.mac, NOW + DEFAULT_TSIG_FUDGE);
        verifyTsigResponse(decodeMessage(resp), key, signedReq.mac, NOW - DEFAULT_TSIG_FUDGE);
        assertTsigError(
          () => verifyTsigResponse(decodeMessage(resp), key, signedReq.mac, NOW + DEFAULT_TSIG_FUDGE + 1),
          'BADTIME',
          false,
        );
        assertTsigError(
          () => verifyTsigResponse(decodeMessage(resp), key, signedReq.mac, NOW - DEFAULT_TSIG_FUDGE - 1),
          'BADTIME',
          false,
        );
        const tight = signTsigResponse(response(req), key, signedReq.mac, NOW, { fudge: 5 });
        assertTsigError(() => verifyTsigResponse(decodeMessage(tight), key, signedReq.mac, NOW + 6), 'BADTIME', false);
      });

      for (const [name, code] of [
        ['BADSIG', Rcode.BADSIG],
        ['BADKEY', Rcode.BADKEY],
        ['BADTIME', Rcode.BADTIME],
      ] as const) {
        it(`server-reported ${name} in the TSIG error field → ${name} (remote)`, () => {
          const resp = signTsigResponse(response(req, Rcode.NOTAUTH), key, signedReq.mac, NOW, { error: code });
          assertTsigError(() => verifyTsigResponse(decodeMessage(resp), key, signedReq.mac, NOW), name, true);
        });
      }

      it('an unsigned response → unsigned-response', () => {
        assertTsigError(() => verifyTsigResponse(decodeMessage(response(req)), key, signedReq.mac, NOW), 'unsigned-response', false);
        assertTsigError(
          () => verifyTsigResponse(decodeMessage(response(req, Rcode.REFUSED)), key, signedReq.mac, NOW),
          'unsigned-response',
          false,
        );
      });
    });
  }

  it('the response MAC covers the original ID: a changed message ID still verifies (§4.3.1, forwarders)', () => {
    const key = keyFor('hmac-sha256');
    const req = request(0x1111);
    const signedReq = signTsig(encodeMessage(req), key, NOW);
    const resp = signTsigResponse(response(req), key, signedReq.mac, NOW);
    const rewritten = Buffer.from(resp);
    rewritten.writeUInt16BE(0x2222, 0);
    verifyTsigResponse(decodeMessage(rewritten), key, signedReq.mac, NOW);
  });

  it('a truncated MAC shorter than half the digest → BADTRUNC (§5.2.2.1)', () => {
    const key = keyFor('hmac-sha256');
    const req = request();
    const signedReq = signTsig(encodeMessage(req), key, NOW);
    const resp = signTsigResponse(response(req), key, signedReq.mac, NOW);
    const d = decodeMessage(resp);
    const tsig = d.additionals[0];
    assert.ok(tsig.type === 'TSIG' && tsig.data !== null);
    const short: Message = { ...d, additionals: [{ ...tsig, data: { ...tsig.data, mac: tsig.data.mac.subarray(0, 8) } }] };
    assertTsigError(() => verifyTsigResponse(decodeMessage(encodeMessage(short)), key, signedReq.mac, NOW), 'BADTRUNC', false);
  });

  it('works for a QUERY response too', () => {
    const key = keyFor('hmac-sha512');
    const req: Message = { ...buildUpdate({ id: 9, zone: 'zone.example.' }), opcode: Opcode.QUERY };
    const signedReq = signTsig(encodeMessage(req), key, NOW);
    const resp = signTsigResponse(response(req), key, signedReq.mac, NOW);
    verifyTsigResponse(decodeMessage(resp), key, signedReq.mac, NOW);
  });
});
