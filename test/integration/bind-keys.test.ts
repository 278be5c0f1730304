/**
 * Key files against real BIND tools: keys made by dnssec-keygen load and
 * sign with our code, and keys written by our code are loaded and used for
 * SIG(0) signing by nsupdate, whose signature our verifier then accepts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Algorithm, algorithmName } from '../../src/dns/constants.js';
import { formatPrivateKeyFile, formatPublicKeyFile } from '../../src/dns/keyfile.js';
import { readKeyPair, writeKeyPair } from '../../src/keyfile-io.js';
import { generateKeyPair, keyTag, publicKeyToRData, signData, verifyData } from '../../src/dns/keys.js';
import { rawSig0 } from '../helpers/sig0-wire.js';
import { requireTool, run } from '../helpers/tools.js';

// This BIND (9.18) offers all six; `dnssec-keygen -h` lists them, checked below.
const ALGS = [
  Algorithm.ECDSAP256SHA256,
  Algorithm.ECDSAP384SHA384,
  Algorithm.ED25519,
  Algorithm.RSASHA256,
  Algorithm.ED448,
  Algorithm.RSASHA512,
] as const;

let dir = '';
let keygen = '';
let nsupdate = '';

before(async () => {
  keygen = requireTool('dnssec-keygen');
  nsupdate = requireTool('nsupdate');
  dir = await mkdtemp(path.join(tmpdir(), 'nsregd-bind-keys-'));
});
after(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('keys made by dnssec-keygen', () => {
  it('this dnssec-keygen offers every algorithm we test', async () => {
    const help = await run(keygen, ['-h']);
    for (const alg of ALGS) assert.match(help.stderr + help.stdout, new RegExp(`\\b${algorithmName(alg)}\\b`));
  });

  for (const alg of ALGS) {
    it(`${algorithmName(alg)}: loads, tag matches the file name, signs and verifies, formats back byte for byte`, async () => {
      const kdir = path.join(dir, `keygen-${alg}`);
      await mkdir(kdir);
      const name = `host${alg}.example.`;
      const res = await run(keygen, ['-K', kdir, '-a', algorithmName(alg), '-T', 'KEY', '-n', 'HOST', name]);
      assert.equal(res.code, 0, res.stderr);
      const base = res.stdout.trim();
      const m = /^K(.+)\+(\d{3})\+(\d{5})$/.exec(base);
      assert.ok(m, `dnssec-keygen printed a key base name: ${base}`);
      assert.equal(m[1], name);
      assert.equal(Number(m[2]), alg);

      const pubPath = path.join(kdir, `${base}.key`);
      const privPath = path.join(kdir, `${base}.private`);
      const pair = await readKeyPair(pubPath, privPath);
      assert.equal(pair.publicFile.name, name);
      assert.equal(pair.publicFile.type, 'KEY');
      assert.equal(pair.publicFile.rdata.flags, 512); // -n HOST: RFC 2535 §3.1.2 name type "host"
      assert.equal(pair.algorithm, alg);
      assert.equal(keyTag(pair.publicFile.rdata), Number(m[3]));

      const data = Buffer.from(`signed by ${base}`);
      const sig = signData(alg, pair.privateKey, data);
      assert.equal(verifyData(alg, pair.publicKey, data, sig), true);
      data[0] = data[0] ^ 1;
      assert.equal(verifyData(alg, pair.publicKey, data, sig), false);

      const pubText = await readFile(pubPath, 'utf8');
      const privText = await readFile(privPath, 'utf8');
      assert.equal(formatPublicKeyFile(pair.publicFile.name, pair.publicFile.rdata), pubText);
      const created = /^Created: (\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)$/m.exec(privText);
      assert.ok(created);
      const [y, mo, d, h, mi, s] = created.slice(1).map(Number) as [number, number, number, number, number, number];
      const when = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
      assert.equal(formatPrivateKeyFile(alg, pair.privateKey, when), privText);
    });
  }
});

interface NsupdateOutcome {
  /** nsupdate could not load the key files (BIND's "could not read key from …"). */
  keyRejected: boolean;
  /** The UPDATE that reached our listener (nsupdate still sends, unsigned, after a key error). */
  message: Buffer | undefined;
  output: string;
}

/**
 * Runs `nsupdate -v -k <private>` against a TCP listener of ours that only
 * records the request and hangs up. A key file BIND cannot parse shows up
 * as its "could not read key" message (printed before any network I/O) and
 * an unsigned request; a network failure only as the later "communication
 * … failed" line, after a signed request was captured.
 */
async function nsupdateWith(privatePath: string, owner: string): Promise<NsupdateOutcome> {
  let message: Buffer | undefined;
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // RFC 1035 §4.2.2: two-byte length prefix.
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        message = buf.subarray(2, 2 + buf.readUInt16BE(0));
        sock.destroy();
      }
    });
    sock.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  try {
    const script = `server 127.0.0.1 ${port}\nzone example.\nupdate add ${owner} 300 IN A 192.0.2.1\nsend\n`;
    const res = await run(nsupdate, ['-v', '-t', '3', '-k', privatePath], { input: script, timeoutMs: 20_000 });
    const output = res.stdout + res.stderr;
    return { keyRejected: /could not read key/.test(output), message, output };
  } finally {
    server.close();
  }
}

describe('keys written by our code, used by nsupdate -k', () => {
  for (const alg of ALGS) {
    it(`${algorithmName(alg)}: nsupdate loads our files and its SIG(0) verifies with our public key`, async () => {
      const kdir = path.join(dir, `ours-${alg}`);
      await mkdir(kdir);
      const name = `ours${alg}.example.`;
      const { privateKey, publicKey } = generateKeyPair(alg);
      const rdata = publicKeyToRData(publicKey, alg, 512);
      const paths = await writeKeyPair(kdir, name, rdata, privateKey, { now: new Date() });

      const out = await nsupdateWith(paths.privatePath, name);
      assert.equal(out.keyRejected, false, out.output);
      assert.ok(out.message, `nsupdate sent a request; output: ${out.output}`);
      const sig = rawSig0(out.message);
      assert.equal(sig.algorithm, alg);
      assert.equal(sig.keyTag, keyTag(rdata));
      assert.equal(sig.signer, name);
      assert.equal(verifyData(alg, publicKey, sig.signedData, sig.signature), true);
    });
  }

  it('the way nsregc writes them (flags 256, TTL 0, explicit paths) also loads', async () => {
    const kdir = path.join(dir, 'nsregc-style');
    await mkdir(kdir);
    const { privateKey, publicKey } = generateKeyPair(Algorithm.ECDSAP384SHA384);
    const rdata = publicKeyToRData(publicKey, Algorithm.ECDSAP384SHA384);
    const paths = { publicPath: path.join(kdir, 'nsregc.key'), privatePath: path.join(kdir, 'nsregc.private') };
    await writeKeyPair(paths, 'golf.example.', rdata, privateKey, { ttl: 0, now: new Date() });
    const out = await nsupdateWith(paths.privatePath, 'golf.example.');
    assert.equal(out.keyRejected, false, out.output);
    assert.ok(out.message);
    const sig = rawSig0(out.message);
    assert.equal(sig.keyTag, keyTag(rdata));
    assert.equal(verifyData(Algorithm.ECDSAP384SHA384, publicKey, sig.signedData, sig.signature), true);
  });

  it('control: a private file BIND cannot parse is told apart from a network error', async () => {
    const kdir = path.join(dir, 'broken');
    await mkdir(kdir);
    const { privateKey, publicKey } = generateKeyPair(Algorithm.ED25519);
    const rdata = publicKeyToRData(publicKey, Algorithm.ED25519);
    const paths = await writeKeyPair(kdir, 'broken.example.', rdata, privateKey, { now: new Date() });
    const text = await readFile(paths.privatePath, 'utf8');
    await rm(paths.privatePath);
    await writeFile(paths.privatePath, text.replace(/^PrivateKey: .*$/m, 'PrivateKey: AAAA'), { mode: 0o600 });

    const out = await nsupdateWith(paths.privatePath, 'broken.example.');
    assert.equal(out.keyRejected, true, out.output);
    // nsupdate goes on and sends the update unsigned: no SIG(0) reached us.
    assert.ok(out.message);
    assert.equal(out.message.readUInt16BE(10), 0, 'ARCOUNT of the unsigned request');
  });
});
