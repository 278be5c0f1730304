/**
 * SIG(0) interoperability with BIND's own tools: keys from dnssec-keygen,
 * updates signed by nsupdate, captured on a TCP listener of ours and checked
 * with our verifier; and key files we write, used by nsupdate.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Algorithm, Opcode, RRClass, RRType } from '../../src/dns/constants.js';
import { MalformedMessageError, Sig0Error } from '../../src/dns/errors.js';
import { parsePublicKeyFile } from '../../src/dns/keyfile.js';
import { writeKeyPair } from '../../src/keyfile-io.js';
import { generateKeyPair, keyTag, publicKeyToRData } from '../../src/dns/keys.js';
import { decodeMessage, encodeMessage } from '../../src/dns/message.js';
import { verifySig0, verifySig0Async, type Sig0Key } from '../../src/dns/sig0.js';
import { FrameDecoder, frame } from '../../src/net/transport.js';
import { requireTool, run } from '../helpers/tools.js';

const ZONE = 'dynamic.example.org.';

/** A one-shot DNS-over-TCP listener: records every request, answers each with NOERROR (QR set, zone echoed). */
class CaptureServer {
  readonly messages: Buffer[] = [];
  private readonly server = net.createServer((socket) => {
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const msg of decoder.push(chunk)) {
        this.messages.push(msg);
        const req = decodeMessage(msg);
        const reply = encodeMessage({
          ...req,
          qr: true,
          answers: [],
          authorities: [],
          additionals: [],
          rcode: 0,
        });
        socket.write(frame(reply));
      }
    });
    socket.on('error', () => undefined);
  });

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function nsupdate(privateKeyFile: string, port: number, name: string, address: string): Promise<void> {
  const script = [`server 127.0.0.1 ${port}`, `zone ${ZONE}`, `update add ${name} 300 A ${address}`, 'send', ''].join('\n');
  const r = await run(requireTool('nsupdate'), ['-v', '-t', '5', '-k', privateKeyFile], { input: script, timeoutMs: 20_000 });
  // Our reply carries no SIG(0), which nsupdate may or may not complain about; the capture is what counts.
  assert.ok(r.signal === null, `nsupdate was killed: ${r.stderr}`);
}

/** Verifies sync and async, then flips bytes of the signed part and of the signature and expects rejection. */
async function checkCaptured(raw: Buffer, key: Sig0Key, name: string, address: string): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const msg = decodeMessage(raw);
  assert.equal(msg.opcode, Opcode.UPDATE);
  assert.deepEqual(msg.questions, [{ name: ZONE, type: RRType.SOA, class: RRClass.IN }]);
  assert.deepEqual(msg.authorities, [{ name, type: 'A', class: RRClass.IN, ttl: 300, data: address }]);
  const extract = verifySig0(msg, key, now);
  assert.equal(extract.sig.signerName.toLowerCase(), name.toLowerCase());
  await verifySig0Async(msg, key, now);
  const sigSpan = msg.spans.additionals[msg.additionals.length - 1];
  for (const i of [2, 13, sigSpan.start - 1, sigSpan.rdataStart + 2, sigSpan.rdataStart + 17, raw.length - 1]) {
    const m = Buffer.from(raw);
    m[i] = m[i] ^ 0x01;
    assert.throws(
      () => verifySig0(decodeMessage(m), key, now),
      (err: unknown) =>
        err instanceof MalformedMessageError || (err instanceof Sig0Error && err.reason !== 'no-sig'),
      `flipping byte ${i} must be rejected`,
    );
  }
  const body = Buffer.from(raw);
  // Last byte of the A record's address: only the signature can notice.
  const a = msg.spans.authorities[0];
  body[a.end - 1] = body[a.end - 1] ^ 0x01;
  assert.throws(
    () => verifySig0(decodeMessage(body), key, now),
    (err: unknown) => err instanceof Sig0Error && err.reason === 'bad-signature',
  );
}

describe('SIG(0) with BIND nsupdate', () => {
  let dir: string;
  let server: CaptureServer;
  let port: number;

  before(async () => {
    requireTool('dnssec-keygen');
    requireTool('nsupdate');
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-bind-sig0-'));
    server = new CaptureServer();
    port = await server.listen();
  });

  after(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const algorithms = [
    ['RSASHA256', Algorithm.RSASHA256, ['-b', '2048']],
    ['ECDSAP256SHA256', Algorithm.ECDSAP256SHA256, []],
    ['ECDSAP384SHA384', Algorithm.ECDSAP384SHA384, []],
    ['ED25519', Algorithm.ED25519, []],
  ] as const;

  algorithms.forEach(([label, algorithm, extra], i) => {
    it(`verifies what nsupdate signs with a dnssec-keygen ${label} key`, async () => {
      const name = `k${algorithm}.${ZONE}`;
      const gen = await run(requireTool('dnssec-keygen'), ['-K', dir, '-a', label, ...extra, '-T', 'KEY', '-n', 'HOST', name]);
      assert.equal(gen.code, 0, gen.stderr);
      const base = path.join(dir, gen.stdout.trim());
      const pub = parsePublicKeyFile(await readFile(`${base}.key`, 'utf8'), `${base}.key`);
      assert.equal(pub.rdata.algorithm, algorithm);
      const before = server.messages.length;
      const address = `192.0.2.${10 + i}`;
      await nsupdate(`${base}.private`, port, name, address);
      assert.equal(server.messages.length, before + 1, 'nsupdate sent one message');
      await checkCaptured(server.messages[before], { name: pub.name, rdata: pub.rdata }, name, address);
    });
  });

  for (const [label, algorithm] of [
    ['ECDSAP256SHA256', Algorithm.ECDSAP256SHA256],
    ['ECDSAP384SHA384', Algorithm.ECDSAP384SHA384],
    ['ED25519', Algorithm.ED25519],
    ['RSASHA256', Algorithm.RSASHA256],
  ] as const) {
    it(`nsupdate -k accepts a ${label} key pair written by writeKeyPair`, async () => {
      const name = `ours${algorithm}.${ZONE}`;
      const pair = generateKeyPair(algorithm);
      const rdata = publicKeyToRData(pair.publicKey, algorithm, 512, 3);
      const paths = await writeKeyPair(dir, name, rdata, pair.privateKey, { now: new Date() });
      assert.match(path.basename(paths.privatePath), new RegExp(`\\+0*${algorithm}\\+0*${keyTag(rdata)}\\.private$`));
      const before = server.messages.length;
      await nsupdate(paths.privatePath, port, name, '192.0.2.99');
      assert.equal(server.messages.length, before + 1, 'nsupdate sent one message');
      const raw = server.messages[before];
      const sig = decodeMessage(raw).additionals.at(-1)!;
      assert.ok(sig.type === 'SIG' && sig.data !== null);
      assert.equal(sig.data.keyTag, keyTag(rdata));
      await checkCaptured(raw, { name, rdata }, name, '192.0.2.99');
    });
  }
});
