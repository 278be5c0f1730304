/**
 * TSIG against a real BIND named, for every algorithm nsregd supports: our
 * signed UPDATE is applied, named's signed response verifies, and a wrong
 * secret comes back as BADSIG.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Rcode, RRClass } from '../../src/dns/constants.js';
import { TsigError } from '../../src/dns/errors.js';
import { decodeMessage, encodeMessage } from '../../src/dns/message.js';
import { tcpExchange } from '../../src/net/transport.js';
import { signTsig, supportedTsigAlgorithms, verifyTsigResponse, type TsigKey } from '../../src/dns/tsig.js';
import { addRecord, buildUpdate, deleteRecord } from '../../src/dns/update.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';

const ZONE = 'tsig.test.';
/** Every algorithm nsregd can sign with ("hmac-sha1" … "hmac-sha512"), each tried against named. */
const ALGORITHMS = supportedTsigAlgorithms().map((a) => a.slice(0, -1));

describe('TSIG with BIND named', () => {
  const specs: TsigKeySpec[] = ALGORITHMS.map((algorithm) => ({
    name: `${algorithm}-key.`,
    algorithm,
    secret: randomBytes(32).toString('base64'),
  }));
  let lab: NamedLab;

  before(async () => {
    lab = await startNamed({
      zones: [{ name: ZONE, updatePolicy: specs.map((s) => `grant ${s.name} zonesub ANY;`) }],
      tsigKeys: specs,
    });
  });

  after(async () => {
    await lab?.stop();
  });

  const now = (): number => Math.floor(Date.now() / 1000);

  async function send(key: TsigKey, message: Buffer): Promise<{ reply: Buffer; mac: Buffer }> {
    const signed = signTsig(message, key, now());
    const reply = await tcpExchange({ host: lab.host, port: lab.port, message: signed.message, timeoutMs: 5000 });
    return { reply, mac: signed.mac };
  }

  it('tries every algorithm nsregd supports', () => {
    assert.deepEqual(ALGORITHMS, ['hmac-sha1', 'hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512']);
  });

  ALGORITHMS.forEach((algorithm, i) => {
    const spec = specs[i];
    const key: TsigKey = { name: spec.name, algorithm, secret: Buffer.from(spec.secret, 'base64') };
    const host = `host-${algorithm}.${ZONE}`;

    it(`${algorithm}: a signed UPDATE is applied and the signed response verifies`, async () => {
      const update = buildUpdate({
        id: 0x1000 + i,
        zone: ZONE,
        updates: [addRecord({ name: host, type: 'A', class: RRClass.IN, ttl: 300, data: '192.0.2.44' })],
      });
      const { reply, mac } = await send(key, encodeMessage(update));
      const d = decodeMessage(reply);
      assert.equal(d.id, 0x1000 + i);
      assert.equal(d.qr, true);
      assert.equal(d.rcode, Rcode.NOERROR);
      const t = verifyTsigResponse(d, key, mac, now());
      assert.equal(t.error, 0);
      assert.equal(t.algorithm.toLowerCase(), `${algorithm}.`);
      assert.deepEqual(await lab.query(host, 'A'), ['192.0.2.44']);
    });

    it(`${algorithm}: a delete (class NONE) is applied too`, async () => {
      const update = buildUpdate({
        id: 0x2000 + i,
        zone: ZONE,
        updates: [deleteRecord({ name: host, type: 'A', class: RRClass.IN, ttl: 300, data: '192.0.2.44' })],
      });
      const { reply, mac } = await send(key, encodeMessage(update));
      const d = decodeMessage(reply);
      assert.equal(d.rcode, Rcode.NOERROR);
      assert.equal(verifyTsigResponse(d, key, mac, now()).error, 0);
      assert.deepEqual(await lab.query(host, 'A'), []);
    });

    it(`${algorithm}: a wrong secret → named answers NOTAUTH with TSIG error BADSIG`, async () => {
      const wrong: TsigKey = { ...key, secret: randomBytes(32) };
      const bad = `bad-${algorithm}.${ZONE}`;
      const update = buildUpdate({
        id: 0x3000 + i,
        zone: ZONE,
        updates: [addRecord({ name: bad, type: 'A', class: RRClass.IN, ttl: 300, data: '192.0.2.45' })],
      });
      const { reply, mac } = await send(wrong, encodeMessage(update));
      const d = decodeMessage(reply);
      assert.equal(d.rcode, Rcode.NOTAUTH);
      assert.throws(
        () => verifyTsigResponse(d, wrong, mac, now()),
        (err: unknown) => err instanceof TsigError && err.code === 'ERR_DNS_TSIG' && err.reason === 'BADSIG' && err.remote,
      );
      assert.deepEqual(await lab.query(bad, 'A'), []);
    });
  });

  it('an unknown key name → named reports BADKEY', async () => {
    const key: TsigKey = { name: 'no-such-key.', algorithm: 'hmac-sha256', secret: randomBytes(32) };
    const update = buildUpdate({ id: 0x4000, zone: ZONE });
    const { reply, mac } = await send(key, encodeMessage(update));
    const d = decodeMessage(reply);
    assert.equal(d.rcode, Rcode.NOTAUTH);
    assert.throws(
      () => verifyTsigResponse(d, key, mac, now()),
      (err: unknown) => err instanceof TsigError && err.reason === 'BADKEY' && err.remote,
    );
  });
});
