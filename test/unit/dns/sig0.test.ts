import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Algorithm, RRClass } from '../../../src/dns/constants.js';
import { MalformedMessageError, Sig0Error } from '../../../src/dns/errors.js';
import { parsePublicKeyFile } from '../../../src/dns/keyfile.js';
import { generateKeyPair, keyTag, publicKeyFromRData, publicKeyToRData, signData } from '../../../src/dns/keys.js';
import { decodeMessage, encodeMessage, encodeRecord, type ResourceRecord } from '../../../src/dns/message.js';
import { encodeSigRDataForSigning } from '../../../src/dns/rdata.js';
import {
  DEFAULT_SIG0_WINDOW,
  extractSig0,
  keyRecords,
  prepareSig0,
  signSig0,
  verifyPreparedSig0,
  verifySig0,
  verifySig0Async,
  type Sig0Key,
  type Sig0Signer,
} from '../../../src/dns/sig0.js';
import type { KeyRData } from '../../../src/dns/types.js';
import { addRecord, buildUpdate } from '../../../src/dns/update.js';
import { ALGORITHMS, fixture, fixtureBytes } from '../../helpers/fixtures.js';



const NOW = 1_800_000_000;
const NAME = 'host.dynamic.example.org.';

interface TestKey {
  signer: Sig0Signer;
  key: Sig0Key;
  rdata: KeyRData;
}

function makeKey(algorithm: number, name = NAME): TestKey {
  const pair = generateKeyPair(algorithm);
  const rdata = publicKeyToRData(pair.publicKey, algorithm, 512, 3);
  const tag = keyTag(rdata);
  return {
    rdata,
    signer: { name, algorithm, keyTag: tag, privateKey: pair.privateKey },
    key: { name, rdata },
  };
}

/** A registration as nsregc sends it: zone, one A add, the KEY in the additional section. */
function unsignedUpdate(rdata: KeyRData, id = 0x2bad): Buffer {
  const keyRR: ResourceRecord = { name: NAME, type: 'KEY', class: RRClass.IN, ttl: 2592000, data: rdata };
  return encodeMessage(
    buildUpdate({
      id,
      zone: 'dynamic.example.org.',
      updates: [addRecord({ name: NAME, type: 'A', class: RRClass.IN, ttl: 300, data: '192.0.2.9' })],
      additionals: [keyRR],
    }),
  );
}

function assertSig0Error(fn: () => unknown, reason: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof Sig0Error, `expected Sig0Error, got ${String(err)}`);
    assert.equal(err.code, 'ERR_DNS_SIG0');
    assert.equal(err.reason, reason, err.message);
    return true;
  });
}

async function assertSig0Rejects(p: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof Sig0Error, `expected Sig0Error, got ${String(err)}`);
    assert.equal(err.reason, reason, err.message);
    return true;
  });
}

/** Sync and async verification of the same bytes must agree: both pass, or both fail with the same reason. */
async function verifyBoth(raw: Buffer, key: Sig0Key, now: number): Promise<string> {
  let syncResult: string;
  let msg;
  try {
    msg = decodeMessage(raw);
  } catch (err) {
    assert.ok(err instanceof MalformedMessageError, `decode threw ${String(err)}`);
    return `malformed:${err.reason}`;
  }
  try {
    verifySig0(msg, key, now);
    syncResult = 'ok';
  } catch (err) {
    assert.ok(err instanceof Sig0Error, `verifySig0 threw ${String(err)}`);
    syncResult = err.reason;
  }
  let asyncResult: string;
  try {
    await verifySig0Async(msg, key, now);
    asyncResult = 'ok';
  } catch (err) {
    assert.ok(err instanceof Sig0Error, `verifySig0Async threw ${String(err)}`);
    asyncResult = err.reason;
  }
  assert.equal(asyncResult, syncResult);
  return syncResult;
}

describe('SIG(0): every algorithm', () => {
  for (const [label, algorithm] of ALGORITHMS) {
    describe(label, () => {
      const k = makeKey(algorithm);
      const unsigned = unsignedUpdate(k.rdata);
      const signed = signSig0(unsigned, k.signer, { now: NOW });

      it('signs in the RFC 2931 form and verifies (sync and async)', async () => {
        assert.deepEqual(signed.subarray(0, 10), unsigned.subarray(0, 10));
        assert.equal(signed.readUInt16BE(10), unsigned.readUInt16BE(10) + 1);
        assert.deepEqual(signed.subarray(12, unsigned.length), unsigned.subarray(12));
        const msg = decodeMessage(signed);
        const sigRR = msg.additionals[msg.additionals.length - 1];
        assert.equal(sigRR.type, 'SIG');
        assert.equal(sigRR.name, '.');
        assert.equal(sigRR.class, RRClass.ANY);
        assert.equal(sigRR.ttl, 0);
        assert.ok(sigRR.type === 'SIG' && sigRR.data !== null);
        assert.deepEqual(
          { ...sigRR.data, signature: undefined },
          {
            typeCovered: 0,
            algorithm,
            labels: 0,
            originalTtl: 0,
            expiration: NOW + DEFAULT_SIG0_WINDOW,
            inception: NOW - DEFAULT_SIG0_WINDOW,
            keyTag: k.signer.keyTag,
            signerName: NAME,
            signature: undefined,
          },
        );
        const extract = verifySig0(msg, k.key, NOW);
        assert.equal(extract.sig.keyTag, k.signer.keyTag);
        // The signed data is the SIG rdata minus signature, then the message as it was before the SIG.
        assert.deepEqual(extract.signedData.subarray(extract.signedData.length - unsigned.length), unsigned);
        assert.equal(await verifyBoth(signed, k.key, NOW), 'ok');
        // With a cached KeyObject and key tag.
        assert.equal(
          await verifyBoth(signed, { ...k.key, publicKey: publicKeyFromRData(k.rdata), keyTag: k.signer.keyTag }, NOW),
          'ok',
        );
      });

      it('rejects every single flipped byte of the signed part and of the signature', async () => {
        const msg = decodeMessage(signed);
        const sigSpan = msg.spans.additionals[msg.additionals.length - 1];
        const sigStart = sigSpan.start;
        const reasons = new Map<string, number>();
        for (let i = 0; i < signed.length; i++) {
          // The SIG RR's own owner/type/class/TTL/rdlength are outside the signed data (RFC 2931 §3.1).
          if (i >= sigStart && i < sigSpan.rdataStart) continue;
          // In the message part flip the 0x20 bit too, so owner-name case changes are covered.
          const m = Buffer.from(signed);
          m[i] = m[i] ^ (i < sigStart && i >= 12 ? 0x20 : 0x01);
          const r = await verifyBoth(m, k.key, NOW);
          assert.notEqual(r, 'ok', `flipping byte ${i} of ${signed.length} still verifies`);
          reasons.set(r, (reasons.get(r) ?? 0) + 1);
        }
        assert.ok((reasons.get('bad-signature') ?? 0) > signed.length / 2, JSON.stringify([...reasons]));
        for (const r of reasons.keys()) {
          assert.match(
            r,
            /^(bad-signature|malformed:.*|no-sig|sig-not-last|not-sig0|expired|not-yet-valid|signer-mismatch|algorithm-mismatch|keytag-mismatch)$/,
          );
        }
      });

      it('checks the validity window (RFC 2931 §3)', async () => {
        assert.equal(await verifyBoth(signed, k.key, NOW - DEFAULT_SIG0_WINDOW), 'ok');
        assert.equal(await verifyBoth(signed, k.key, NOW + DEFAULT_SIG0_WINDOW), 'ok');
        assert.equal(await verifyBoth(signed, k.key, NOW + DEFAULT_SIG0_WINDOW + 1), 'expired');
        assert.equal(await verifyBoth(signed, k.key, NOW - DEFAULT_SIG0_WINDOW - 1), 'not-yet-valid');
        const narrow = signSig0(unsigned, k.signer, { now: NOW, window: 10 });
        assert.equal(await verifyBoth(narrow, k.key, NOW + 11), 'expired');
        assert.equal(await verifyBoth(narrow, k.key, NOW + 10), 'ok');
      });

      it('refuses a wrong signer, key tag, algorithm or key', async () => {
        assert.equal(await verifyBoth(signed, { ...k.key, name: 'other.dynamic.example.org.' }, NOW), 'signer-mismatch');
        assert.equal(await verifyBoth(signed, { ...k.key, name: 'HOST.Dynamic.Example.ORG' }, NOW), 'ok');
        assert.equal(await verifyBoth(signed, { ...k.key, keyTag: (k.signer.keyTag + 1) & 0xffff }, NOW), 'keytag-mismatch');
        const otherAlg = algorithm === Algorithm.ED25519 ? Algorithm.ED448 : Algorithm.ED25519;
        assert.equal(await verifyBoth(signed, { ...k.key, rdata: { ...k.rdata, algorithm: otherAlg } }, NOW), 'algorithm-mismatch');
        // Another key of the same algorithm made to claim the same tag: only the signature check can tell.
        const other = makeKey(algorithm);
        assert.equal(await verifyBoth(signed, { ...other.key, keyTag: k.signer.keyTag }, NOW), 'bad-signature');
        assert.equal(await verifyBoth(signed, other.key, NOW), other.signer.keyTag === k.signer.keyTag ? 'bad-signature' : 'keytag-mismatch');
      });
    });
  }
});

describe('SIG(0): message shape', () => {
  const k = makeKey(Algorithm.ED25519);
  const unsigned = unsignedUpdate(k.rdata);
  const signed = signSig0(unsigned, k.signer, { now: NOW });

  it('no SIG → no-sig', () => {
    assertSig0Error(() => verifySig0(decodeMessage(unsigned), k.key, NOW), 'no-sig');
    assertSig0Error(() => extractSig0(decodeMessage(unsigned)), 'no-sig');
  });

  it('SIG not last → sig-not-last', () => {
    const extra = encodeRecord({ name: NAME, type: 'A', class: RRClass.IN, ttl: 0, data: '192.0.2.1' });
    const m = Buffer.concat([signed, extra]);
    m.writeUInt16BE(m.readUInt16BE(10) + 1, 10);
    assertSig0Error(() => verifySig0(decodeMessage(m), k.key, NOW), 'sig-not-last');
  });

  it('a SIG that is not SIG(0) (type covered, class) → not-sig0', () => {
    const msg = decodeMessage(signed);
    const span = msg.spans.additionals[msg.additionals.length - 1];
    const badClass = Buffer.from(signed);
    badClass.writeUInt16BE(RRClass.IN, span.rdataStart - 8);
    assertSig0Error(() => verifySig0(decodeMessage(badClass), k.key, NOW), 'not-sig0');
    const badCovered = Buffer.from(signed);
    badCovered.writeUInt16BE(1, span.rdataStart);
    assertSig0Error(() => verifySig0(decodeMessage(badCovered), k.key, NOW), 'not-sig0');
    const empty = Buffer.concat([
      unsigned,
      encodeRecord({ name: '.', type: 'SIG', class: RRClass.ANY, ttl: 0, data: null }),
    ]);
    empty.writeUInt16BE(empty.readUInt16BE(10) + 1, 10);
    assertSig0Error(() => verifySig0(decodeMessage(empty), k.key, NOW), 'not-sig0');
  });

  it('a compressed signer name is verified with the name written out in full', async () => {
    const fields = {
      typeCovered: 0,
      algorithm: k.signer.algorithm,
      labels: 0,
      originalTtl: 0,
      expiration: NOW + 300,
      inception: NOW - 300,
      keyTag: k.signer.keyTag,
      signerName: NAME,
    };
    const signature = signData(k.signer.algorithm, k.signer.privateKey, Buffer.concat([encodeSigRDataForSigning(fields), unsigned]));
    // Signer name as a pointer to the update RR's owner (the first RR after the zone section).
    const ownerAt = decodeMessage(unsigned).spans.authorities[0].start;
    const head = encodeSigRDataForSigning(fields).subarray(0, 18);
    const rdata = Buffer.concat([head, Buffer.from([0xc0 | (ownerAt >> 8), ownerAt & 0xff]), signature]);
    const rrHead = Buffer.from([0, 0, 24, 0, 255, 0, 0, 0, 0, rdata.length >> 8, rdata.length & 0xff]);
    const m = Buffer.concat([unsigned, rrHead, rdata]);
    m.writeUInt16BE(m.readUInt16BE(10) + 1, 10);
    assert.equal(await verifyBoth(m, k.key, NOW), 'ok');
    const extract = extractSig0(decodeMessage(m));
    assert.deepEqual(extract.signedData, Buffer.concat([encodeSigRDataForSigning(fields), unsigned]));
  });

  it('an unsupported or unusable key → unsupported-algorithm / bad-key', () => {
    const dsa: KeyRData = { flags: 512, protocol: 3, algorithm: 3, publicKey: Buffer.alloc(40, 1) };
    const badEc: KeyRData = { flags: 512, protocol: 3, algorithm: 13, publicKey: Buffer.alloc(10, 1) };
    for (const [rdata, reason] of [
      [dsa, 'unsupported-algorithm'],
      [badEc, 'bad-key'],
    ] as const) {
      const fields = {
        typeCovered: 0,
        algorithm: rdata.algorithm,
        labels: 0,
        originalTtl: 0,
        expiration: NOW + 300,
        inception: NOW - 300,
        keyTag: keyTag(rdata),
        signerName: NAME,
        signature: Buffer.alloc(64, 2),
      };
      const m = Buffer.concat([unsigned, encodeRecord({ name: '.', type: 'SIG', class: RRClass.ANY, ttl: 0, data: fields })]);
      m.writeUInt16BE(m.readUInt16BE(10) + 1, 10);
      assertSig0Error(() => verifySig0(decodeMessage(m), { name: NAME, rdata }, NOW), reason);
    }
  });

  it('prepareSig0 + verifyPreparedSig0 is the async path in two steps', async () => {
    const extract = extractSig0(decodeMessage(signed));
    const prepared = prepareSig0(extract, k.key, NOW);
    await verifyPreparedSig0(prepared);
    await assertSig0Rejects(verifyPreparedSig0({ ...prepared, data: Buffer.concat([prepared.data, Buffer.from([0])]) }), 'bad-signature');
    assertSig0Error(() => prepareSig0(extract, k.key, NOW + 1000), 'expired');
  });

  it('keyRecords lists the KEY RRs of the additional section', () => {
    assert.deepEqual(keyRecords(decodeMessage(signed)), [{ name: NAME, ttl: 2592000, class: RRClass.IN, rdata: k.rdata }]);
    assert.deepEqual(keyRecords(decodeMessage(signSig0(encodeMessage(buildUpdate({ id: 1, zone: 'z.' })), k.signer, { now: NOW }))), []);
  });
});

describe('SIG(0): fixtures from real signers', () => {
  it('BIND nsupdate (compressed, no KEY RR) verifies with the Kecho key file at its signing time', async () => {
    const raw = fixtureBytes('nsupdate-sig0/update.bin');
    const now = Number(fixture('nsupdate-sig0/signed-at.txt').trim());
    const file = 'nsupdate-sig0/Kecho.dynamic.example.org.+014+32065.key';
    const pub = parsePublicKeyFile(fixture(file), file);
    const key: Sig0Key = { name: pub.name, rdata: pub.rdata };
    assert.equal(keyTag(pub.rdata), 32065);
    assert.equal(await verifyBoth(raw, key, now), 'ok');
    assert.deepEqual(keyRecords(decodeMessage(raw)), []);
    assert.equal(await verifyBoth(raw, key, now + 400), 'expired');
    // One flipped byte in the message part and one in the signature.
    const body = Buffer.from(raw);
    body[0x33] = body[0x33] ^ 0x01; // the A record's address
    assert.equal(await verifyBoth(body, key, now), 'bad-signature');
    const sig = Buffer.from(raw);
    sig[raw.length - 5] = sig[raw.length - 5] ^ 0x80;
    assert.equal(await verifyBoth(sig, key, now), 'bad-signature');
  });

  it('Go nsregc (uncompressed, KEY then SIG) verifies with the KEY it carries and with nsregc.key', async () => {
    const raw = fixtureBytes('go-nsregc/update.bin');
    const now = Number(fixture('go-nsregc/signed-at.txt').trim());
    const msg = decodeMessage(raw);
    const carried = keyRecords(msg);
    assert.equal(carried.length, 1);
    const carriedKey: Sig0Key = { name: carried[0].name, rdata: carried[0].rdata };
    assert.equal(await verifyBoth(raw, carriedKey, now), 'ok');
    const pub = parsePublicKeyFile(fixture('go-nsregc/nsregc.key'), 'nsregc.key');
    // The file's owner is only the short name ("foxtrot."); the claimed name is the signer's.
    assert.equal(pub.name, 'foxtrot.');
    assert.deepEqual(pub.rdata, carried[0].rdata);
    const fileKey: Sig0Key = { name: 'foxtrot.dynamic.example.org.', rdata: pub.rdata };
    assert.equal(await verifyBoth(raw, fileKey, now), 'ok');
    assert.equal(await verifyBoth(raw, { ...fileKey, name: pub.name }, now), 'signer-mismatch');
    const flipped = Buffer.from(raw);
    flipped[0x4c] = flipped[0x4c] ^ 0x01; // the A record's address
    assert.equal(await verifyBoth(flipped, carriedKey, now), 'bad-signature');
    const inKey = Buffer.from(raw);
    inKey[0xa0] = inKey[0xa0] ^ 0x01; // inside the carried KEY's public key
    assert.equal(await verifyBoth(inKey, carriedKey, now), 'bad-signature');
  });
});
