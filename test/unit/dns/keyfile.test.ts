import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Algorithm, RRClass } from '../../../src/dns/constants.js';
import { KeyFileError } from '../../../src/dns/errors.js';
import {
  bindKeyBaseName,
  checkKeyPair,
  formatPrivateKeyFile,
  formatPublicKeyFile,
  parsePrivateKeyFile,
  parsePublicKeyFile,
  formatKeyPair,
  parseKeyPair,
} from '../../../src/dns/keyfile.js';
import { generateKeyPair, keyTag, publicKeyToRData, signData, verifyData } from '../../../src/dns/keys.js';
import { fixture, fixturePath } from '../../helpers/fixtures.js';


const ED_KEY = 'cUlSjXtLLR33xPj79jYSTymPJx34zLOZQzGszXgOPuY=';

function keyFileError(line?: number, file = 'k.key'): (err: unknown) => boolean {
  return (err: unknown): boolean => {
    assert.ok(err instanceof KeyFileError);
    assert.equal(err.code, 'ERR_DNS_KEYFILE');
    assert.equal(err.file, file);
    assert.equal(err.line, line);
    return true;
  };
}

describe('parsePublicKeyFile', () => {
  it('reads the dnssec-keygen layout (words of base64 split by spaces)', () => {
    const f = parsePublicKeyFile(fixture('go-keydb/Kcharlie.dynamic.example.org.+008+30554.key'), 'x');
    assert.equal(f.name, 'charlie.dynamic.example.org.');
    assert.equal(f.ttl, undefined);
    assert.equal(f.class, RRClass.IN);
    assert.equal(f.type, 'KEY');
    assert.equal(f.rdata.flags, 512);
    assert.equal(f.rdata.protocol, 3);
    assert.equal(f.rdata.algorithm, 8);
    assert.equal(f.rdata.publicKey.length, 260); // 1 + 3 (e) + 256 (n)
  });

  it("reads the original nsregc's file: owner foxtrot., TTL 0, tabs", () => {
    const f = parsePublicKeyFile(fixture('go-nsregc/nsregc.key'), 'nsregc.key');
    assert.equal(f.name, 'foxtrot.');
    assert.equal(f.ttl, 0);
    assert.equal(f.class, RRClass.IN);
    assert.deepEqual({ ...f.rdata, publicKey: f.rdata.publicKey.length }, {
      flags: 256,
      protocol: 3,
      algorithm: 14,
      publicKey: 96,
    });
  });

  const variants: [string, string, { name?: string; ttl?: number; class?: number; type?: 'KEY' | 'DNSKEY' }][] = [
    ['minimal', `a.example. KEY 256 3 15 ${ED_KEY}`, { name: 'a.example.' }],
    ['relative name made absolute', `host KEY 256 3 15 ${ED_KEY}`, { name: 'host.' }],
    ['class then TTL', `a.example. IN 300 KEY 256 3 15 ${ED_KEY}`, { ttl: 300 }],
    ['TTL then class', `a.example. 300 IN KEY 256 3 15 ${ED_KEY}`, { ttl: 300 }],
    ['TTL with units', `a.example. 1h30m IN KEY 256 3 15 ${ED_KEY}`, { ttl: 5400 }],
    ['lower case, other class', `a.example. ch key 256 3 15 ${ED_KEY}`, { class: RRClass.CH }],
    ['RFC 3597 class', `a.example. CLASS1 KEY 256 3 15 ${ED_KEY}`, { class: 1 }],
    ['DNSKEY', `a.example. IN DNSKEY 256 3 15 ${ED_KEY}`, { type: 'DNSKEY' }],
    ['algorithm mnemonic', `a.example. IN KEY 256 3 ED25519 ${ED_KEY}`, {}],
    [
      'comments, blank lines, CRLF',
      `; This is a key\r\n;comment\r\n\r\na.example. IN KEY 256 3 15 ${ED_KEY} ; trailing\r\n`,
      {},
    ],
    [
      'parentheses across lines with split base64',
      `a.example. 60 IN KEY ( 256 3 15 ; flags proto alg\n   ${ED_KEY.slice(0, 20)}\n ${ED_KEY.slice(20)} )\n`,
      { ttl: 60 },
    ],
    ['parenthesis glued to tokens', `a.example. IN KEY (256 3 15\n${ED_KEY})`, {}],
  ];
  for (const [label, text, want] of variants) {
    it(`accepts: ${label}`, () => {
      const f = parsePublicKeyFile(text, 'k.key');
      assert.equal(f.name, want.name ?? 'a.example.');
      assert.equal(f.ttl, want.ttl);
      assert.equal(f.class, want.class ?? RRClass.IN);
      assert.equal(f.type, want.type ?? 'KEY');
      assert.deepEqual(f.rdata, { flags: 256, protocol: 3, algorithm: 15, publicKey: Buffer.from(ED_KEY, 'base64') });
    });
  }

  const bad: [string, string, number | undefined][] = [
    ['empty file', '', undefined],
    ['only comments', '; nothing\n;more\n', undefined],
    ['wrong type', `a.example. IN A 192.0.2.1`, 1],
    ['no type', `a.example. 300 IN`, 1],
    ['two records', `a. KEY 256 3 15 ${ED_KEY}\nb. KEY 256 3 15 ${ED_KEY}\n`, 2],
    ['missing key', `\na.example. IN KEY 256 3 15`, 2],
    ['bad base64', `a.example. IN KEY 256 3 15 ${ED_KEY}!`, 1],
    ['base64 of wrong length', `a.example. IN KEY 256 3 15 ${ED_KEY.slice(1)}`, 1],
    ['flags out of range', `a.example. IN KEY 65536 3 15 ${ED_KEY}`, 1],
    ['flags not a number', `a.example. IN KEY x 3 15 ${ED_KEY}`, 1],
    ['protocol out of range', `a.example. IN KEY 256 300 15 ${ED_KEY}`, 1],
    ['unknown algorithm name', `a.example. IN KEY 256 3 FOO ${ED_KEY}`, 1],
    ['algorithm named like an object member', `a.example. IN KEY 256 3 constructor ${ED_KEY}`, 1],
    ['TTL above 2^31-1 (RFC 2181 §8)', `a.example. 2147483648 IN KEY 256 3 15 ${ED_KEY}`, 1],
    ['unbalanced (', `a.example. IN KEY ( 256 3 15 ${ED_KEY}\n`, 2],
    ['unbalanced )', `a.example. IN KEY 256 3 15 ${ED_KEY} )`, 1],
    ['no owner', `\n  IN KEY 256 3 15 ${ED_KEY}`, 2],
    ['directive', `$TTL 300\na. KEY 256 3 15 ${ED_KEY}`, 1],
  ];
  for (const [label, text, line] of bad) {
    it(`rejects: ${label}`, () => {
      assert.throws(() => parsePublicKeyFile(text, 'k.key'), keyFileError(line));
    });
  }
});

describe('parsePrivateKeyFile', () => {
  const ed = (body: string): string => `Private-key-format: v1.3\nAlgorithm: 15 (ED25519)\n${body}`;
  const seed = 'gRKleaNnBKy9QNk6cFL9vH7JXWVplPvx1W29gZZx88s=';

  it('reads every fixture private key and matches its public file', () => {
    const dirs = ['go-keydb', 'nsupdate-sig0'];
    const pairs = dirs.flatMap((d) =>
      readdirSync(fixturePath(`${d}/`))
        .filter((f) => f.endsWith('.private'))
        .map((f) => [`${d}/${f.replace(/\.private$/, '.key')}`, `${d}/${f}`]),
    );
    pairs.push(['go-nsregc/nsregc.key', 'go-nsregc/nsregc.private']);
    const algs = new Set<number>();
    for (const [pub, priv] of pairs) {
      const p = parsePrivateKeyFile(fixture(priv), priv);
      const rdata = parsePublicKeyFile(fixture(pub), pub).rdata;
      assert.equal(p.algorithm, rdata.algorithm);
      checkKeyPair(rdata, p.privateKey);
      algs.add(p.algorithm);
    }
    assert.deepEqual([...algs].sort((a, b) => a - b), [8, 13, 14, 15]);
  });

  it('accepts format v1.2 and ignores timing and unknown fields', () => {
    const text = `Private-key-format: v1.2\nAlgorithm: 15\nPrivateKey: ${seed}\nCreated: 1\nInactive: 2\nFuture: x\n`;
    assert.equal(parsePrivateKeyFile(text, 'k.private').algorithm, 15);
  });

  const bad: [string, string, number | undefined][] = [
    ['no format', `Algorithm: 15 (ED25519)\nPrivateKey: ${seed}\n`, undefined],
    ['format v2.0', `Private-key-format: v2.0\nAlgorithm: 15\nPrivateKey: ${seed}\n`, 1],
    ['no algorithm', `Private-key-format: v1.3\nPrivateKey: ${seed}\n`, undefined],
    ['algorithm not a number', `Private-key-format: v1.3\nAlgorithm: ED25519\nPrivateKey: ${seed}\n`, 2],
    ['unsupported algorithm', `Private-key-format: v1.3\nAlgorithm: 5 (RSASHA1)\nPrivateKey: ${seed}\n`, 2],
    ['no key', ed('Created: 20260101000000\n'), undefined],
    ['short key', ed('PrivateKey: AAAA\n'), 3],
    ['bad base64', ed('PrivateKey: %%%%\n'), 3],
    ['line without colon', ed(`PrivateKey: ${seed}\ngarbage\n`), 4],
    ['duplicate field', ed(`PrivateKey: ${seed}\nPrivateKey: ${seed}\n`), 4],
    ['P-256 scalar of 0', `Private-key-format: v1.3\nAlgorithm: 13\nPrivateKey: ${Buffer.alloc(32).toString('base64')}\n`, 3],
    [
      'RSA without Coefficient',
      fixture('go-keydb/Kcharlie.dynamic.example.org.+008+30554.private').replace(/^Coefficient:.*\n/m, ''),
      undefined,
    ],
  ];
  for (const [label, text, line] of bad) {
    it(`rejects: ${label}`, () => {
      assert.throws(() => parsePrivateKeyFile(text, 'k.private'), keyFileError(line, 'k.private'));
    });
  }
});

describe('formatting is byte-identical to BIND', () => {
  const when = (stamp: string): Date =>
    new Date(
      Date.UTC(+stamp.slice(0, 4), +stamp.slice(4, 6) - 1, +stamp.slice(6, 8), +stamp.slice(8, 10), +stamp.slice(10, 12), +stamp.slice(12, 14)),
    );
  const dirs = ['go-keydb', 'nsupdate-sig0'];
  for (const d of dirs) {
    for (const f of readdirSync(fixturePath(`${d}/`)).filter((n) => n.endsWith('.key'))) {
      it(`${d}/${f} and its .private`, () => {
        const pubText = fixture(`${d}/${f}`);
        const privText = fixture(`${d}/${f.replace(/\.key$/, '.private')}`);
        const pub = parsePublicKeyFile(pubText, f);
        const priv = parsePrivateKeyFile(privText, f);
        assert.equal(formatPublicKeyFile(pub.name, pub.rdata), pubText);
        const created = /^Created: (\d{14})$/m.exec(privText)![1];
        assert.equal(formatPrivateKeyFile(priv.algorithm, priv.privateKey, when(created)), privText);
        assert.equal(`${bindKeyBaseName(pub.name, pub.rdata.algorithm, keyTag(pub.rdata))}.key`, f);
      });
    }
  }

  it('writes the TTL and DNSKEY type when asked', () => {
    const rdata = { flags: 256, protocol: 3, algorithm: 15, publicKey: Buffer.from(ED_KEY, 'base64') };
    assert.equal(formatPublicKeyFile('a.example', rdata, { ttl: 300, type: 'DNSKEY' }), `a.example. 300 IN DNSKEY 256 3 15 ${ED_KEY}\n`);
  });

  it('names Ed448 and RSASHA512 keys as BIND does', () => {
    for (const alg of [Algorithm.ED448, Algorithm.RSASHA512]) {
      const { privateKey } = generateKeyPair(alg);
      const text = formatPrivateKeyFile(alg, privateKey, new Date(Date.UTC(2026, 0, 2, 3, 4, 5)));
      assert.match(text, alg === 16 ? /^Algorithm: 16 \(ED448\)$/m : /^Algorithm: 10 \(RSASHA512\)$/m);
      assert.match(text, /^Created: 20260102030405\nPublish: 20260102030405\nActivate: 20260102030405\n$/m);
      assert.equal(parsePrivateKeyFile(text, 'x').privateKey.equals(privateKey), true);
    }
  });

  it('writes an EC scalar with a leading zero byte without it, as dnssec-keygen does, and reads such a file back', () => {
    // Find a key whose d has a leading zero byte (about 1 in 256 tries).
    for (let i = 0; i < 4000; i++) {
      const { privateKey } = generateKeyPair(Algorithm.ECDSAP256SHA256);
      const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
      if (d[0] !== 0) continue;
      const text = formatPrivateKeyFile(13, privateKey, new Date(0));
      const field = /^PrivateKey: (.*)$/m.exec(text)![1];
      assert.equal(Buffer.from(field, 'base64').length, 31);
      assert.equal(parsePrivateKeyFile(text, 'x').privateKey.equals(privateKey), true);
      // The full-width form (what other tools write) loads too; longer than the curve's size does not.
      const wide = text.replace(field, d.toString('base64'));
      assert.equal(parsePrivateKeyFile(wide, 'x').privateKey.equals(privateKey), true);
      const tooLong = text.replace(field, Buffer.concat([Buffer.alloc(1), d]).toString('base64'));
      assert.throws(() => parsePrivateKeyFile(tooLong, 'x'), /P-256 private key must be 1 to 32 bytes, got 33/);
      return;
    }
    assert.fail('no key with a leading zero byte found');
  });

  it('bindKeyBaseName pads algorithm and tag', () => {
    assert.equal(bindKeyBaseName('h.example.', 8, 42), 'Kh.example.+008+00042');
    assert.equal(bindKeyBaseName('foxtrot', 14, 22283), 'Kfoxtrot.+014+22283');
  });
});

describe('formatKeyPair / parseKeyPair', () => {
  for (const alg of [8, 13, 15]) {
    it(`algorithm ${alg}: the texts of a pair parse back to the same key`, () => {
      const { privateKey } = generateKeyPair(alg);
      const rdata = publicKeyToRData(privateKey, alg, 512);
      const { publicText, privateText } = formatKeyPair('host.example.', rdata, privateKey, { ttl: 60, now: new Date(0) });
      const back = parseKeyPair(publicText, 'k.key', privateText, 'k.private');
      assert.equal(back.publicFile.name, 'host.example.');
      assert.equal(back.publicFile.ttl, 60);
      assert.deepEqual(back.publicFile.rdata, rdata);
      assert.equal(back.algorithm, alg);
      const sig = signData(alg, back.privateKey, Buffer.from('x'));
      assert.equal(verifyData(alg, back.publicKey, Buffer.from('x'), sig), true);
    });
  }

  it('refuses halves that do not belong together', () => {
    const a = generateKeyPair(15);
    const b = generateKeyPair(15);
    assert.throws(() => formatKeyPair('x.', publicKeyToRData(a.publicKey, 15), b.privateKey, { now: new Date(0) }), {
      code: 'ERR_DNS_INVALID_KEY',
    });
    const pa = formatKeyPair('x.', publicKeyToRData(a.publicKey, 15), a.privateKey, { now: new Date(0) });
    const pb = formatKeyPair('x.', publicKeyToRData(b.publicKey, 15), b.privateKey, { now: new Date(0) });
    assert.throws(() => parseKeyPair(pa.publicText, 'a.key', pb.privateText, 'b.private'), { code: 'ERR_DNS_INVALID_KEY' });
    const ec = generateKeyPair(13);
    const pe = formatKeyPair('x.', publicKeyToRData(ec.publicKey, 13), ec.privateKey, { now: new Date(0) });
    assert.throws(() => parseKeyPair(pa.publicText, 'a.key', pe.privateText, 'e.private'), { code: 'ERR_DNS_INVALID_KEY' });
  });

  it('names the file a parse error comes from', () => {
    assert.throws(() => parseKeyPair('', 'empty.key', '', 'empty.private'), keyFileError(undefined, 'empty.key'));
  });
});
