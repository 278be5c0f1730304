import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GENERATED_KEY, loadClientKey } from '../../../src/client/keys.js';
import { RRClass } from '../../../src/dns/constants.js';
import { parsePublicKeyFile } from '../../../src/dns/keyfile.js';
import { readKeyPair } from '../../../src/keyfile-io.js';
import { keyTag } from '../../../src/dns/keys.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../../src/dns/message.js';
import { signSig0, verifySig0 } from '../../../src/dns/sig0.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/test/unit/client → repository root
const fixtures = path.resolve(here, '../../../../test/fixtures/go-nsregc');

describe('loadClientKey: the original client\'s files', () => {
  it('loads nsregc.key (owner foxtrot., TTL 0) and nsregc.private', async () => {
    const key = await loadClientKey({
      keyFile: path.join(fixtures, 'nsregc.key'),
      privateKeyFile: path.join(fixtures, 'nsregc.private'),
      genKey: false,
      name: 'ignored',
    });
    assert.equal(key.generated, false);
    assert.equal(key.algorithm, 14);
    assert.equal(key.rdata.flags, 256);
    // The key tag the original put into its SIG(0) (see update.bin).
    assert.equal(key.keyTag, 22283);
  });

  it('signs for the full registered name with a KEY RR under that name and key-ttl', async () => {
    const key = await loadClientKey({
      keyFile: path.join(fixtures, 'nsregc.key'),
      privateKeyFile: path.join(fixtures, 'nsregc.private'),
      genKey: false,
      name: 'foxtrot',
    });
    const full = 'foxtrot.dynamic.example.org.';
    const rr = key.keyRecord('foxtrot.dynamic.example.org', 2592000);
    assert.equal(rr.name, full);
    assert.equal(rr.ttl, 2592000);
    assert.equal(rr.class, RRClass.IN);
    assert.equal(rr.type, 'KEY');
    const signer = key.signerFor(full);
    assert.equal(signer.name, full);
    assert.equal(signer.keyTag, 22283);
    const m = emptyMessage(1, 5);
    m.additionals.push(rr);
    const now = 1_800_000_000;
    const signed = decodeMessage(signSig0(encodeMessage(m), signer, { now }));
    verifySig0(signed, { name: full, rdata: key.rdata }, now);
  });
});

describe('loadClientKey: generation', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregc-keys-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generates ECDSA P-384 (256 3 14) owned by the name, private file 0600, then loads it unchanged', async () => {
    const keyFile = path.join(dir, 'gen.key');
    const privateKeyFile = path.join(dir, 'gen.private');
    const key = await loadClientKey({ keyFile, privateKeyFile, genKey: true, name: 'myhost' });
    assert.equal(key.generated, true);
    assert.deepEqual(
      { flags: key.rdata.flags, protocol: key.rdata.protocol, algorithm: key.rdata.algorithm },
      { ...GENERATED_KEY },
    );
    assert.equal(key.rdata.publicKey.length, 96);
    const pub = parsePublicKeyFile(await readFile(keyFile, 'utf8'), keyFile);
    assert.equal(pub.name, 'myhost.');
    assert.equal(pub.type, 'KEY');
    assert.ok(pub.rdata.publicKey.equals(key.rdata.publicKey));
    assert.equal((await stat(privateKeyFile)).mode & 0o777, 0o600);
    const pair = await readKeyPair(keyFile, privateKeyFile);
    assert.equal(keyTag(pair.publicFile.rdata), key.keyTag);

    const again = await loadClientKey({ keyFile, privateKeyFile, genKey: true, name: 'myhost' });
    assert.equal(again.generated, false);
    assert.ok(again.rdata.publicKey.equals(key.rdata.publicKey));
  });

  it('refuses when only one of the two files exists, and leaves it alone', async () => {
    const keyFile = path.join(dir, 'half.key');
    const privateKeyFile = path.join(dir, 'half.private');
    await copyFile(path.join(fixtures, 'nsregc.key'), keyFile);
    await assert.rejects(loadClientKey({ keyFile, privateKeyFile, genKey: true, name: 'x' }), {
      code: 'ERR_NSREGC_KEY',
      reason: 'missing-private',
    });
    await assert.rejects(stat(privateKeyFile), { code: 'ENOENT' });
    assert.equal(await readFile(keyFile, 'utf8'), await readFile(path.join(fixtures, 'nsregc.key'), 'utf8'));

    const keyFile2 = path.join(dir, 'half2.key');
    const privateKeyFile2 = path.join(dir, 'half2.private');
    await writeFile(privateKeyFile2, 'secret', { mode: 0o600 });
    await assert.rejects(loadClientKey({ keyFile: keyFile2, privateKeyFile: privateKeyFile2, genKey: true, name: 'x' }), {
      code: 'ERR_NSREGC_KEY',
      reason: 'missing-public',
    });
    assert.equal(await readFile(privateKeyFile2, 'utf8'), 'secret');
    await assert.rejects(stat(keyFile2), { code: 'ENOENT' });
  });

  it('does not generate when gen-key is off', async () => {
    const keyFile = path.join(dir, 'none.key');
    const privateKeyFile = path.join(dir, 'none.private');
    await assert.rejects(loadClientKey({ keyFile, privateKeyFile, genKey: false, name: 'x' }), {
      code: 'ERR_NSREGC_KEY',
      reason: 'missing',
    });
    await assert.rejects(stat(keyFile), { code: 'ENOENT' });
  });

  it('rejects a directory where a key file should be', async () => {
    await assert.rejects(
      loadClientKey({ keyFile: dir, privateKeyFile: path.join(dir, 'p.private'), genKey: true, name: 'x' }),
      { code: 'ERR_NSREGC_KEY', reason: 'unusable' },
    );
  });

  it('reports a mismatched pair with the wire layer\'s error', async () => {
    const keyFile = path.join(dir, 'mix.key');
    const privateKeyFile = path.join(dir, 'mix.private');
    await copyFile(path.join(fixtures, 'nsregc.key'), keyFile);
    await loadClientKey({ keyFile: path.join(dir, 'other.key'), privateKeyFile, genKey: true, name: 'other' });
    await assert.rejects(loadClientKey({ keyFile, privateKeyFile, genKey: false, name: 'x' }), { code: 'ERR_DNS_INVALID_KEY' });
  });
});
