import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { readdirSync } from 'node:fs';
import { Algorithm } from '../../../src/dns/constants.js';
import { InvalidKeyError, UnsupportedAlgorithmError } from '../../../src/dns/errors.js';
import { parsePrivateKeyFile, parsePublicKeyFile } from '../../../src/dns/keyfile.js';
import {
  digestForAlgorithm,
  ecdsaSignatureToDer,
  generateKeyPair,
  keyTag,
  publicKeyFromRData,
  publicKeyToRData,
  signData,
  verifyData,
  verifyDataAsync,
} from '../../../src/dns/keys.js';
import type { KeyRData } from '../../../src/dns/types.js';
import { rawSig0 } from '../../helpers/sig0-wire.js';
import { ALGORITHMS as ALL, fixture, fixtureBytes, fixturePath } from '../../helpers/fixtures.js';



/** Public key sizes in DNSSEC wire form (RFC 6605 §4, RFC 8080 §3). */
const FIXED_KEY_SIZE: Record<number, number> = { 13: 64, 14: 96, 15: 32, 16: 57 };
const SIG_SIZE: Record<number, number> = { 13: 64, 14: 96, 15: 64, 16: 114 };

function isCode(code: string, reason?: string): (err: unknown) => boolean {
  return (err: unknown): boolean => {
    const e = err as { code?: string; reason?: string };
    assert.equal(e.code, code);
    if (reason !== undefined) assert.equal(e.reason, reason);
    return true;
  };
}

function flipByte(b: Buffer, i: number): Buffer {
  const c = Buffer.from(b);
  c[i] = c[i] ^ 0x01;
  return c;
}

describe('keyTag (RFC 4034 appendix B)', () => {
  const keydb = JSON.parse(fixture('go-keydb/dynamic.example.org.keydb')) as Record<
    string,
    { Flags: number; Protocol: number; Algorithm: number; KeyTag: number; PublicKey: string }
  >;

  it('matches the tags the original daemon stored in its key database', () => {
    assert.equal(Object.keys(keydb).length, 4);
    for (const [name, e] of Object.entries(keydb)) {
      const rdata: KeyRData = {
        flags: e.Flags,
        protocol: e.Protocol,
        algorithm: e.Algorithm,
        publicKey: Buffer.from(e.PublicKey, 'base64'),
      };
      assert.equal(keyTag(rdata), e.KeyTag, name);
    }
  });

  for (const dir of ['go-keydb', 'nsupdate-sig0']) {
    it(`matches the tag in every dnssec-keygen file name in ${dir}/`, () => {
      const files = readdirSync(fixturePath(`${dir}/`)).filter((f) => f.endsWith('.key'));
      assert.ok(files.length > 0);
      for (const f of files) {
        const tag = Number(/\+(\d{5})\.key$/.exec(f)![1]);
        assert.equal(keyTag(parsePublicKeyFile(fixture(`${dir}/${f}`), f).rdata), tag, f);
      }
    });
  }

  // The SIG(0) rdata of a captured update carries the signer's key tag (RFC 2931 §3).
  for (const [dir, keyFile] of [
    ['go-nsregc', 'nsregc.key'],
    ['nsupdate-sig0', 'Kecho.dynamic.example.org.+014+32065.key'],
  ] as const) {
    it(`matches the key tag in the SIG(0) of ${dir}/update.bin`, () => {
      const sig = rawSig0(fixtureBytes(`${dir}/update.bin`));
      const rdata = parsePublicKeyFile(fixture(`${dir}/${keyFile}`), keyFile).rdata;
      assert.equal(keyTag(rdata), sig.keyTag);
    });
  }

  it('uses the modulus bits for algorithm 1 (appendix B.1)', () => {
    const rdata = { flags: 256, protocol: 3, algorithm: 1, publicKey: Buffer.from([1, 3, 0xaa, 0xbb, 0xcc, 0xdd]) };
    assert.equal(keyTag(rdata), 0xbbcc);
  });

  it('folds the carry for a long all-ones key', () => {
    const rdata = { flags: 0xffff, protocol: 0xff, algorithm: 0xff, publicKey: Buffer.alloc(100, 0xff) };
    // Sum of 52 words of 0xffff = 52 * 0xffff; fold once.
    const sum = 52 * 0xffff;
    assert.equal(keyTag(rdata), (sum + ((sum >>> 16) & 0xffff)) & 0xffff);
  });
});

describe('wire signature format against real signers', () => {
  for (const [dir, keyFile] of [
    ['go-nsregc', 'nsregc.key'],
    ['nsupdate-sig0', 'Kecho.dynamic.example.org.+014+32065.key'],
  ] as const) {
    it(`verifies the ECDSA r||s signature in ${dir}/update.bin`, async () => {
      const sig = rawSig0(fixtureBytes(`${dir}/update.bin`));
      const rdata = parsePublicKeyFile(fixture(`${dir}/${keyFile}`), keyFile).rdata;
      const key = publicKeyFromRData(rdata);
      assert.equal(sig.algorithm, rdata.algorithm);
      assert.equal(verifyData(sig.algorithm, key, sig.signedData, sig.signature), true);
      assert.equal(await verifyDataAsync(sig.algorithm, key, sig.signedData, sig.signature), true);
      assert.equal(verifyData(sig.algorithm, key, flipByte(sig.signedData, sig.signedData.length - 1), sig.signature), false);
    });
  }
});

describe('algorithms: generate → sign → verify → tamper → reject', () => {
  const data = Buffer.from('the bytes of some DNS message, more or less');

  for (const [name, alg] of ALL) {
    describe(name, () => {
      const { privateKey, publicKey } = generateKeyPair(alg);
      const signature = signData(alg, privateKey, data);

      it('signs in the fixed wire format and verifies', async () => {
        if (SIG_SIZE[alg] !== undefined) assert.equal(signature.length, SIG_SIZE[alg]);
        else assert.equal(signature.length, 256); // RSA 2048: one modulus width
        assert.equal(verifyData(alg, publicKey, data, signature), true);
        assert.equal(await verifyDataAsync(alg, publicKey, data, signature), true);
      });

      it('rejects tampered data', async () => {
        for (const i of [0, data.length - 1]) {
          assert.equal(verifyData(alg, publicKey, flipByte(data, i), signature), false);
          assert.equal(await verifyDataAsync(alg, publicKey, flipByte(data, i), signature), false);
        }
      });

      it('rejects a tampered or malformed signature without throwing', async () => {
        const bad = [
          flipByte(signature, 0),
          flipByte(signature, signature.length - 1),
          signature.subarray(1),
          Buffer.concat([signature, Buffer.from([0])]),
          Buffer.alloc(0),
          Buffer.alloc(signature.length, 0xff),
          Buffer.alloc(signature.length),
        ];
        for (const sig of bad) {
          assert.equal(verifyData(alg, publicKey, data, sig), false);
          assert.equal(await verifyDataAsync(alg, publicKey, data, sig), false);
        }
      });

      it('rejects a signature by another key of the same algorithm', () => {
        const other = generateKeyPair(alg);
        assert.equal(verifyData(alg, other.publicKey, data, signature), false);
      });

      it('round-trips the public key through KEY rdata', () => {
        const rdata = publicKeyToRData(publicKey, alg);
        assert.equal(rdata.flags, 256);
        assert.equal(rdata.protocol, 3);
        assert.equal(rdata.algorithm, alg);
        if (FIXED_KEY_SIZE[alg] !== undefined) assert.equal(rdata.publicKey.length, FIXED_KEY_SIZE[alg]);
        else assert.deepEqual(rdata.publicKey.subarray(0, 4), Buffer.from([3, 1, 0, 1])); // RFC 3110: e = 65537
        const back = publicKeyFromRData(rdata);
        assert.equal(back.equals(publicKey), true);
        assert.deepEqual(publicKeyToRData(privateKey, alg, 512, 3), { ...rdata, flags: 512 });
        assert.equal(verifyData(alg, back, data, signature), true);
      });

      it('rejects keys of the wrong kind with InvalidKeyError', () => {
        const wrongAlg = alg === Algorithm.ED25519 ? Algorithm.ED448 : Algorithm.ED25519;
        assert.throws(() => signData(wrongAlg, privateKey, data), isCode('ERR_DNS_INVALID_KEY'));
        assert.throws(() => verifyData(wrongAlg, publicKey, data, signature), InvalidKeyError);
        assert.throws(() => publicKeyToRData(publicKey, wrongAlg), InvalidKeyError);
        assert.throws(() => signData(alg, publicKey, data), InvalidKeyError);
      });
    });
  }

  it('uses the right digests', () => {
    assert.deepEqual(
      ALL.map(([, alg]) => digestForAlgorithm(alg)),
      ['sha256', 'sha512', 'sha256', 'sha384', null, null],
    );
  });

  it('tells P-256 and P-384 keys apart', () => {
    const p256 = generateKeyPair(Algorithm.ECDSAP256SHA256);
    assert.throws(() => signData(Algorithm.ECDSAP384SHA384, p256.privateKey, data), InvalidKeyError);
  });

  it('tells the curves of keys imported from KEY rdata apart too', () => {
    const p256 = publicKeyFromRData(publicKeyToRData(generateKeyPair(Algorithm.ECDSAP256SHA256).publicKey, Algorithm.ECDSAP256SHA256));
    const p384 = publicKeyFromRData(publicKeyToRData(generateKeyPair(Algorithm.ECDSAP384SHA384).publicKey, Algorithm.ECDSAP384SHA384));
    assert.throws(() => verifyData(Algorithm.ECDSAP384SHA384, p256, data, Buffer.alloc(96)), InvalidKeyError);
    assert.throws(() => verifyData(Algorithm.ECDSAP256SHA256, p384, data, Buffer.alloc(64)), InvalidKeyError);
    assert.equal(verifyData(Algorithm.ECDSAP256SHA256, p256, data, Buffer.alloc(64)), false);
  });
});

describe('public key decoding errors', () => {
  const rd = (algorithm: number, publicKey: Buffer): KeyRData => ({ flags: 256, protocol: 3, algorithm, publicKey });

  it('refuses wrong lengths for the fixed-size algorithms', () => {
    for (const [alg, size] of Object.entries(FIXED_KEY_SIZE)) {
      const good = publicKeyToRData(generateKeyPair(Number(alg)).publicKey, Number(alg)).publicKey;
      assert.equal(good.length, size);
      for (const bad of [good.subarray(1), Buffer.concat([good, Buffer.from([0])]), Buffer.alloc(0)]) {
        assert.throws(() => publicKeyFromRData(rd(Number(alg), bad)), isCode('ERR_DNS_INVALID_KEY'), `alg ${alg}`);
      }
    }
  });

  it('refuses an EC point that is not on the curve', () => {
    const pt = Buffer.alloc(64, 0);
    pt[63] = 1;
    assert.throws(() => publicKeyFromRData(rd(Algorithm.ECDSAP256SHA256, pt)), InvalidKeyError);
  });

  it('decodes the RFC 3110 long exponent-length form', () => {
    const { publicKey } = generateKeyPair(Algorithm.RSASHA256);
    const short = publicKeyToRData(publicKey, Algorithm.RSASHA256).publicKey;
    assert.equal(short[0], 3);
    const long = Buffer.concat([Buffer.from([0, 0, 3]), short.subarray(1)]);
    assert.equal(publicKeyFromRData(rd(Algorithm.RSASHA256, long)).equals(publicKey), true);
  });

  it('refuses broken RSA keys', () => {
    const cases = [
      Buffer.alloc(0), // nothing
      Buffer.from([0, 1]), // long form, truncated length
      Buffer.from([0, 0, 0, 1, 2, 3]), // long form, length 0
      Buffer.from([0]), // long form, no length at all
      Buffer.from([3, 1, 0, 1]), // exponent but no modulus
      Buffer.from([200, 1, 2, 3]), // exponent length past the end
    ];
    for (const key of cases) {
      assert.throws(() => publicKeyFromRData(rd(Algorithm.RSASHA512, key)), isCode('ERR_DNS_INVALID_KEY'), key.toString('hex'));
    }
  });

  it('refuses other algorithms with UnsupportedAlgorithmError', () => {
    for (const alg of [0, 1, 3, 5, 6, 7, 12, 17, 253, 255]) {
      assert.throws(() => publicKeyFromRData(rd(alg, Buffer.alloc(64, 1))), (err: unknown) => {
        assert.ok(err instanceof UnsupportedAlgorithmError);
        assert.equal(err.code, 'ERR_DNS_UNSUPPORTED_ALGORITHM');
        assert.equal(err.algorithm, alg);
        return true;
      });
      assert.throws(() => generateKeyPair(alg), UnsupportedAlgorithmError);
      assert.throws(() => digestForAlgorithm(alg), UnsupportedAlgorithmError);
    }
    const ed = generateKeyPair(Algorithm.ED25519);
    assert.throws(() => signData(5, ed.privateKey, Buffer.alloc(1)), UnsupportedAlgorithmError);
    assert.throws(() => verifyData(5, ed.publicKey, Buffer.alloc(1), Buffer.alloc(64)), UnsupportedAlgorithmError);
    assert.throws(() => publicKeyToRData(ed.publicKey, 5), UnsupportedAlgorithmError);
  });

  it('verifyDataAsync rejects (not throws) for an unsupported algorithm', async () => {
    const ed = generateKeyPair(Algorithm.ED25519);
    await assert.rejects(verifyDataAsync(5, ed.publicKey, Buffer.alloc(1), Buffer.alloc(64)), UnsupportedAlgorithmError);
  });
});

describe('fixture private keys sign for their public keys', () => {
  it('all dnssec-keygen and nsregc fixtures', () => {
    const pairs: [string, string][] = [
      ...readdirSync(fixturePath('go-keydb/'))
        .filter((f) => f.endsWith('.key'))
        .map((f): [string, string] => [`go-keydb/${f}`, `go-keydb/${f.replace(/\.key$/, '.private')}`]),
      ['nsupdate-sig0/Kecho.dynamic.example.org.+014+32065.key', 'nsupdate-sig0/Kecho.dynamic.example.org.+014+32065.private'],
      ['go-nsregc/nsregc.key', 'go-nsregc/nsregc.private'],
    ];
    assert.equal(pairs.length, 6);
    for (const [pub, priv] of pairs) {
      const rdata = parsePublicKeyFile(fixture(pub), pub).rdata;
      const { algorithm, privateKey } = parsePrivateKeyFile(fixture(priv), priv);
      const sig = signData(algorithm, privateKey, Buffer.from(pub));
      assert.equal(verifyData(algorithm, publicKeyFromRData(rdata), Buffer.from(pub), sig), true, pub);
      // And an independent check that node agrees the halves belong together.
      assert.equal(crypto.createPublicKey(privateKey).equals(publicKeyFromRData(rdata)), true, pub);
    }
  });
});

/** Test-side reading of a DER Ecdsa-Sig-Value into r || s of `size` bytes each (RFC 5480 §2.2.3). */
function derToRs(der: Buffer, size: number): Buffer {
  assert.equal(der[0], 0x30);
  assert.equal(der[1], der.length - 2);
  const out = Buffer.alloc(2 * size);
  let at = 2;
  for (const half of [0, 1]) {
    assert.equal(der[at], 0x02);
    const len = der[at + 1];
    const value = der.subarray(at + 2, at + 2 + len);
    const trimmed = value.length > size ? value.subarray(value.length - size) : value;
    trimmed.copy(out, half * size + size - trimmed.length);
    at += 2 + len;
  }
  assert.equal(at, der.length);
  return out;
}

describe('ecdsaSignatureToDer (RFC 6605 §4 r || s → RFC 5480 DER)', () => {
  it("gives OpenSSL's own DER bytes for 300 signatures of each curve", () => {
    for (const [curve, size] of [['P-256', 32], ['P-384', 48]] as const) {
      const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 300; i++) {
        const der = crypto.sign(size === 32 ? 'sha256' : 'sha384', Buffer.from(`message ${i}`), privateKey);
        assert.deepEqual(ecdsaSignatureToDer(derToRs(der, size), size), der, `${curve} signature ${i}`);
      }
    }
  });

  it('keeps integers minimal and non-negative: leading zeros dropped, a high bit padded, zero as one octet', () => {
    const size = 4;
    const cases: Array<[string, string]> = [
      ['00000001' + '7fffffff', '3009' + '020101' + '02047fffffff'],
      ['80000000' + '00800000', '300d' + '02050080000000' + '020400800000'],
      ['00000000' + 'ffffffff', '300a' + '020100' + '020500ffffffff'],
    ];
    for (const [rs, der] of cases) assert.equal(ecdsaSignatureToDer(Buffer.from(rs, 'hex'), size).toString('hex'), der, rs);
  });

  it('is what verifyData checks: an r || s signature verifies, and one with r or s changed does not', () => {
    const { privateKey, publicKey } = generateKeyPair(Algorithm.ECDSAP384SHA384);
    const data = Buffer.from('data');
    const sig = signData(Algorithm.ECDSAP384SHA384, privateKey, data);
    assert.equal(verifyData(Algorithm.ECDSAP384SHA384, publicKey, data, sig), true);
    for (const at of [0, 47, 48, 95]) {
      const bad = Buffer.from(sig);
      bad[at] ^= 1;
      assert.equal(verifyData(Algorithm.ECDSAP384SHA384, publicKey, data, bad), false, `octet ${at} changed`);
    }
  });
});
