import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KeyFileError } from '../../src/dns/errors.js';
import { bindKeyBaseName, parsePublicKeyFile } from '../../src/dns/keyfile.js';
import { generateKeyPair, keyTag, publicKeyToRData, signData, verifyData } from '../../src/dns/keys.js';
import { keyPairPathsIn, readKeyPair, writeKeyPair } from '../../src/keyfile-io.js';
import { fixturePath } from '../helpers/fixtures.js';

describe('writeKeyPair / readKeyPair', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-keyfile-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const alg of [8, 10, 13, 14, 15, 16]) {
    it(`round-trips algorithm ${alg} through a directory`, async () => {
      const { privateKey } = generateKeyPair(alg);
      const rdata = publicKeyToRData(privateKey, alg, 512);
      const sub = path.join(dir, `alg${alg}`);
      await mkdir(sub);
      const paths = await writeKeyPair(sub, 'host.example.', rdata, privateKey, { now: new Date(0) });
      assert.equal(path.basename(paths.publicPath), `${bindKeyBaseName('host.example.', alg, keyTag(rdata))}.key`);
      assert.deepEqual(paths, keyPairPathsIn(sub, 'host.example.', rdata));
      assert.equal((await stat(paths.privatePath)).mode & 0o777, 0o600);
      const back = await readKeyPair(paths.publicPath, paths.privatePath);
      assert.equal(back.publicFile.name, 'host.example.');
      assert.deepEqual(back.publicFile.rdata, rdata);
      assert.equal(back.algorithm, alg);
      const sig = signData(alg, back.privateKey, Buffer.from('x'));
      assert.equal(verifyData(alg, back.publicKey, Buffer.from('x'), sig), true);
    });
  }

  it('writes to explicit paths with a TTL, and never overwrites', async () => {
    const { privateKey } = generateKeyPair(14);
    const rdata = publicKeyToRData(privateKey, 14);
    const paths = { publicPath: path.join(dir, 'nsregc.key'), privatePath: path.join(dir, 'nsregc.private') };
    await writeKeyPair(paths, 'foxtrot.', rdata, privateKey, { ttl: 0, now: new Date(0) });
    assert.equal(parsePublicKeyFile(await readFile(paths.publicPath, 'utf8'), 'x').ttl, 0);
    const before = await readFile(paths.privatePath);

    const other = generateKeyPair(14);
    const otherRdata = publicKeyToRData(other.privateKey, 14);
    await assert.rejects(writeKeyPair(paths, 'foxtrot.', otherRdata, other.privateKey, { now: new Date(0) }), (err: unknown) => {
      assert.ok(err instanceof KeyFileError);
      assert.equal(err.code, 'ERR_DNS_KEYFILE');
      assert.equal(err.file, paths.privatePath);
      return true;
    });
    assert.deepEqual(await readFile(paths.privatePath), before);

    // Only the public file exists: refused, and no stray private file is left.
    const lonely = { publicPath: path.join(dir, 'lonely.key'), privatePath: path.join(dir, 'lonely.private') };
    await writeFile(lonely.publicPath, 'keep me');
    await assert.rejects(writeKeyPair(lonely, 'x.', rdata, privateKey, { now: new Date(0) }), (err: unknown) => {
      assert.ok(err instanceof KeyFileError);
      assert.equal(err.file, lonely.publicPath);
      return true;
    });
    assert.equal(await readFile(lonely.publicPath, 'utf8'), 'keep me');
    assert.ok(!(await readdir(dir)).includes('lonely.private'));
  });

  it('refuses to write a private key that does not match the rdata', async () => {
    const a = generateKeyPair(15);
    const b = generateKeyPair(15);
    const paths = { publicPath: path.join(dir, 'mm.key'), privatePath: path.join(dir, 'mm.private') };
    await assert.rejects(writeKeyPair(paths, 'x.', publicKeyToRData(a.publicKey, 15), b.privateKey, { now: new Date(0) }), {
      code: 'ERR_DNS_INVALID_KEY',
    });
  });

  it('readKeyPair: mismatched halves are InvalidKeyError, missing file is KeyFileError', async () => {
    await assert.rejects(
      readKeyPair(
        fixturePath('go-keydb/Kalpha.dynamic.example.org.+014+32957.key'),
        fixturePath('nsupdate-sig0/Kecho.dynamic.example.org.+014+32065.private'),
      ),
      { code: 'ERR_DNS_INVALID_KEY' },
    );
    await assert.rejects(
      readKeyPair(
        fixturePath('go-keydb/Kalpha.dynamic.example.org.+014+32957.key'),
        fixturePath('go-keydb/Kdelta.dynamic.example.org.+013+21468.private'),
      ),
      { code: 'ERR_DNS_INVALID_KEY' },
    );
    const missing = path.join(dir, 'nope.private');
    await assert.rejects(readKeyPair(fixturePath('go-nsregc/nsregc.key'), missing), (err: unknown) => {
      assert.ok(err instanceof KeyFileError);
      assert.equal(err.file, missing);
      return true;
    });
  });
});
