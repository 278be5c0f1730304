import { strict as assert } from 'node:assert';
import * as crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { RequestGuard } from '../../../src/daemon/guard.js';
import { Algorithm, RRClass, Rcode } from '../../../src/dns/constants.js';
import { keyCostProblem, keyTag, publicKeyToRData } from '../../../src/dns/keys.js';
import type { DecodedMessage } from '../../../src/dns/message.js';
import { prereqRRsetExists } from '../../../src/dns/update.js';
import type { PreparedSig0 } from '../../../src/dns/sig0.js';
import type { KeyRData } from '../../../src/dns/types.js';
import { handlerLab, LAB_ZONE, type HandlerLab } from '../../helpers/handler-lab.js';
import { malleate } from '../../helpers/ecdsa-malleate.js';
import { a, makeClient, signedUpdate, type TestClient } from '../../helpers/sig0-client.js';
import { signSig0 } from '../../../src/dns/sig0.js';
import { encodeMessage } from '../../../src/dns/message.js';
import { buildUpdate } from '../../../src/dns/update.js';

function reasons(m: DecodedMessage): string[] {
  return m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data) || []);
}

function assertRefused(m: DecodedMessage, rcode: number, reason: string): void {
  assert.equal(m.rcode, rcode, `rcode ${m.rcode}: ${reasons(m).join(' | ')}`);
  assert.deepEqual(reasons(m), [reason]);
}

describe('replay cache keyed on what is signed', () => {
  for (const [label, algorithm] of [
    ['P-256', Algorithm.ECDSAP256SHA256],
    ['P-384', Algorithm.ECDSAP384SHA384],
  ] as const) {
    it(`a captured ${label} add re-signed as (r, n − s) is refused as replayed after the owner removed the address`, async () => {
      const c = makeClient('host1', LAB_ZONE, algorithm);
      const lab = handlerLab();
      lab.ctx.guard = new RequestGuard();
      const add = signedUpdate(c, [a(c.name, '192.0.2.1')], { now: lab.now });
      const forged = malleate(add, algorithm);
      // The forged signature is valid: a daemon that never saw the original accepts it.
      const fresh = handlerLab();
      fresh.ctx.guard = new RequestGuard();
      assert.equal((await fresh.send(forged)).rcode, Rcode.NOERROR);

      assert.equal((await lab.send(add)).rcode, Rcode.NOERROR);
      const remove = signedUpdate(c, [a(c.name, '192.0.2.1', 0, RRClass.NONE)], { now: lab.now, id: 2 });
      assert.equal((await lab.send(remove)).rcode, Rcode.NOERROR);
      assertRefused(await lab.send(forged), Rcode.REFUSED, 'Replayed request');
      assert.equal(lab.cache.size, 0, 'the address stays removed');
    });
  }
});

describe('signature validity window', () => {
  function signedFor(c: TestClient, lab: HandlerLab, window: number): Buffer {
    const msg = encodeMessage(buildUpdate({ id: 7, zone: c.zone, updates: [a(c.name, '192.0.2.1')], additionals: [
      { name: c.name, type: 'KEY', class: RRClass.IN, ttl: 3600, data: c.rdata },
    ] }));
    return signSig0(msg, { name: c.name, algorithm: c.algorithm, keyTag: c.keyTag, privateKey: c.keys.privateKey }, { now: lab.now, window });
  }

  it('refuses a SIG(0) valid for longer than max-sig-validity with NOTAUTH, before checking it', async () => {
    const lab = handlerLab();
    const c = makeClient('host1', LAB_ZONE);
    let checks = 0;
    lab.ctx.verify = () => {
      checks++;
      return Promise.resolve();
    };
    // Default 1 h: ±30 min is exactly 1 h and accepted; ±1 year is not.
    assertRefused(await lab.send(signedFor(c, lab, 365 * 86400)), Rcode.NOTAUTH, 'Signature validity period too long');
    assert.equal(checks, 0);
    assert.equal((await lab.send(signedFor(c, lab, 1800))).rcode, Rcode.NOERROR);
    lab.ctx.maxSigValidity = 600_000;
    assertRefused(await lab.send(signedFor(c, lab, 301)), Rcode.NOTAUTH, 'Signature validity period too long');
    assert.equal((await lab.send(signedFor(c, lab, 300))).rcode, Rcode.NOERROR);
  });
});

/** A claimant with an RSA key of the given size and exponent (DER round trip, as generateKeyPair does). */
function rsaClient(label: string, bits: number, publicExponent = 65537): TestClient {
  const der = crypto.generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicExponent,
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  const keys = {
    privateKey: crypto.createPrivateKey({ key: der.privateKey, format: 'der', type: 'pkcs8' }),
    publicKey: crypto.createPublicKey({ key: der.publicKey, format: 'der', type: 'spki' }),
  };
  const rdata = publicKeyToRData(keys.publicKey, Algorithm.RSASHA256);
  return { name: `${label}.${LAB_ZONE}`, zone: LAB_ZONE, rdata, keyTag: keyTag(rdata), keys, algorithm: Algorithm.RSASHA256 };
}

/** RSA rdata (RFC 3110 §2) with exponent `e` and the modulus of `base`. */
function withExponent(base: KeyRData, e: bigint): KeyRData {
  const expLen = base.publicKey[0];
  const modulus = base.publicKey.subarray(1 + expLen);
  let hex = e.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  const eb = Buffer.from(hex, 'hex');
  const len = eb.length <= 255 ? Buffer.from([eb.length]) : Buffer.from([0, eb.length >> 8, eb.length & 0xff]);
  return { ...base, publicKey: Buffer.concat([len, eb, modulus]) };
}

describe('key cost bounds at claim time', () => {
  const rsa1024 = rsaClient('small', 1024);
  const rsa2048 = rsaClient('medium', 2048);
  const rsa4096 = rsaClient('large', 4096);
  const maxE = rsaClient('maxexp', 2048, 0xffffffff);

  it('keyCostProblem: RSA 2048–4096 bits with e ≤ 2^32 passes; smaller, larger or a longer exponent does not', () => {
    assert.equal(keyCostProblem(rsa2048.rdata), undefined);
    assert.equal(keyCostProblem(rsa4096.rdata), undefined);
    assert.equal(keyCostProblem(maxE.rdata), undefined);
    assert.equal(keyCostProblem(withExponent(rsa2048.rdata, 2n ** 32n)), undefined);
    assert.match(keyCostProblem(rsa1024.rdata) ?? '', /1024 bits/);
    assert.match(keyCostProblem(withExponent(rsa2048.rdata, 2n ** 32n + 1n)) ?? '', /exponent of 33 bits/);
    assert.match(keyCostProblem(withExponent(rsa2048.rdata, 2n ** 3063n + 1n)) ?? '', /exponent of 3064 bits/);
    const ec = makeClient('ec', LAB_ZONE, Algorithm.ED448);
    assert.equal(keyCostProblem(ec.rdata), undefined);
  });

  it('refuses a claim with a too small RSA key or a big exponent; accepts 2048 and 4096 bits', async () => {
    const lab = handlerLab();
    const reason = 'Key too expensive to verify or too weak (RSA: 2048-4096 bits, exponent at most 2^32)';
    assertRefused(await lab.send(signedUpdate(rsa1024, [a(rsa1024.name, '192.0.2.1')], { now: lab.now })), Rcode.REFUSED, reason);
    const bigE = withExponent(rsa2048.rdata, 2n ** 40n + 1n);
    const big: TestClient = { ...rsa2048, name: `bige.${LAB_ZONE}`, rdata: bigE, keyTag: keyTag(bigE) };
    assertRefused(await lab.send(signedUpdate(big, [a(big.name, '192.0.2.2')], { now: lab.now })), Rcode.REFUSED, reason);
    for (const c of [rsa2048, rsa4096, maxE]) {
      assert.equal((await lab.send(signedUpdate(c, [a(c.name, '192.0.2.3')], { now: lab.now }))).rcode, Rcode.NOERROR, c.name);
    }
    assert.equal(lab.keys.size, 3);
  });
});

describe('prerequisites', () => {
  it('an update with a prerequisite section is refused, not applied with it ignored', async () => {
    const lab = handlerLab();
    const c = makeClient('host1', LAB_ZONE);
    const msg = encodeMessage(buildUpdate({ id: 9, zone: c.zone, prerequisites: [prereqRRsetExists(c.name, 'A')], updates: [a(c.name, '192.0.2.1')], additionals: [
      { name: c.name, type: 'KEY', class: RRClass.IN, ttl: 3600, data: c.rdata },
    ] }));
    const signed = signSig0(msg, { name: c.name, algorithm: c.algorithm, keyTag: c.keyTag, privateKey: c.keys.privateKey }, { now: lab.now });
    assertRefused(await lab.send(signed), Rcode.REFUSED, 'Prerequisites are not supported');
    assert.equal(lab.cache.size, 0);
    assert.equal(lab.keys.size, 0);
  });
});

/** A signature check that finishes (as valid) only when the test says so. */
function gatedVerifier(): { verify: (p: PreparedSig0) => Promise<void>; calls: Array<() => void>; callCount(n: number): Promise<void> } {
  const calls: Array<() => void> = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  return {
    calls,
    verify: () =>
      new Promise<void>((resolve) => {
        calls.push(resolve);
        for (const w of [...waiters]) {
          if (calls.length >= w.n) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      }),
    callCount: (n) => (calls.length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve }))),
  };
}

describe('fair signature checks', () => {
  it('requests waiting on a name lock hold no check slot: another name is checked meanwhile', async () => {
    const lab = handlerLab();
    lab.ctx.guard = new RequestGuard({ perSourceRate: 0, maxInFlight: 2 });
    const gate = gatedVerifier();
    lab.ctx.verify = gate.verify;
    const x = makeClient('busyname', LAB_ZONE);
    const y = makeClient('other', LAB_ZONE);
    const xs = [1, 2, 3, 4].map((id) => lab.send(signedUpdate(x, [a(x.name, `192.0.2.${id}`)], { now: lab.now, id }), '192.0.2.10'));
    await gate.callCount(1);
    // Three requests for x wait on its lock; y still gets a slot and is answered while x's check runs.
    const yReply = lab.send(signedUpdate(y, [a(y.name, '192.0.2.20')], { now: lab.now }), '192.0.2.11');
    await gate.callCount(2);
    assert.equal(lab.ctx.guard.checksInFlight, 2);
    gate.calls[1]();
    assert.equal((await yReply).rcode, Rcode.NOERROR);
    // x's requests then go through one after the other.
    for (let i = 0; i < 4; i++) {
      await gate.callCount(i + 2);
      gate.calls[i === 0 ? 0 : i + 1]();
    }
    assert.deepEqual((await Promise.all(xs)).map((m) => m.rcode), [Rcode.NOERROR, Rcode.NOERROR, Rcode.NOERROR, Rcode.NOERROR]);
    assert.equal(lab.ctx.guard.checksInFlight, 0);
  });

  it('a flood from many sources queues; a new source is checked within one round, not after the flood', async () => {
    const lab = handlerLab();
    lab.ctx.guard = new RequestGuard({ perSourceRate: 0, maxInFlight: 1, maxPerSource: 4 });
    const gate = gatedVerifier();
    lab.ctx.verify = gate.verify;
    // Claimed names whose key the flood knows (public), flooded with checks.
    const victims = Array.from({ length: 5 }, (_, i) => makeClient(`victim${i}`, LAB_ZONE));
    for (const v of victims) lab.keys.put(v.name, v.rdata, lab.clock.now() + 3600_000);
    const flood: Array<Promise<DecodedMessage>> = [];
    for (let round = 0; round < 4; round++) {
      victims.forEach((v, i) => flood.push(lab.send(signedUpdate(v, [a(v.name, '192.0.2.1')], { now: lab.now, id: 100 * round + i }), `198.51.100.${i + 1}`)));
    }
    await gate.callCount(1);
    assert.equal(lab.ctx.guard.checksWaiting, 4, 'one waiting check per victim name (the rest wait on the name locks)');
    const owner = makeClient('mine', LAB_ZONE);
    lab.keys.put(owner.name, owner.rdata, lab.clock.now() + 3600_000);
    const mine = lab.send(signedUpdate(owner, [a(owner.name, '192.0.2.50')], { now: lab.now, id: 1 }), '192.0.2.99');
    // Let checks finish one at a time until the owner's has been run.
    let served = 0;
    let done = false;
    void mine.then(() => (done = true));
    while (!done) {
      await gate.callCount(served + 1);
      gate.calls[served++]();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    assert.equal((await mine).rcode, Rcode.NOERROR);
    assert.ok(served <= 6, `the owner waited for ${served - 1} flood checks (the 4 queued before it and the one running)`);
    while (served < 21) {
      await gate.callCount(served + 1);
      gate.calls[served++]();
    }
    await Promise.all(flood);
  });
});
