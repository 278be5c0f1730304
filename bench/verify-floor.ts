/**
 * The floor under nsregd's request path: a server that does only what no
 * registration can skip — accept the TCP connection, read one framed
 * update, decode it, find the SIG(0), check it with the signer's key
 * (imported once and kept: a claim imports it, a refresh finds it) on
 * libuv's thread pool, write a 12-octet NOERROR reply — and nothing else
 * (no guard, replay cache, name lock, key database, journals, upstream or
 * logging). Driven exactly as `nsregd-load.ts` drives bin/nsregd
 * (load/drive.ts, per-host and long-lived, pre-signed P-384 updates), it
 * says how much of the daemon's CPU per request is the daemon's own and
 * how much Node's connection handling and the verify itself cost.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/verify-floor.js [names=5000] [concurrency=32]
 *
 * The server is this script run again with `--serve` (its CPU is read
 * from /proc like the daemon's).
 */
import { spawn } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import * as net from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { decodeMessage } from '../src/dns/message.js';
import { publicKeyFromRData } from '../src/dns/keys.js';
import { extractSig0, keyRecords, prepareSig0, verifyPreparedSig0 } from '../src/dns/sig0.js';
import { procStats } from './load/daemon.js';
import { onReplies, runPhase, type Mode, type PhaseResult } from './load/drive.js';
import { rawVerify } from './load/raw-verify.js';
import { addressOf, presign, signChild } from './load/sign.js';

const SCRIPT = fileURLToPath(import.meta.url);
const ZONE = 'bench.test.';

/** The server: one reply per framed message, as described above. */
function serve(): void {
  const keys = new Map<string, KeyObject>();
  const answer = async (msg: Buffer): Promise<Buffer> => {
    const m = decodeMessage(msg);
    const extract = extractSig0(m);
    const signer = extract.sig.signerName.toLowerCase();
    let publicKey = keys.get(signer);
    const offered = keyRecords(m)[0];
    const rdata = offered?.rdata;
    if (publicKey === undefined) {
      if (rdata === undefined) throw new Error(`no key for ${signer}`);
      publicKey = publicKeyFromRData(rdata);
    }
    const p = prepareSig0(extract, { name: signer, rdata: rdata ?? { flags: 256, protocol: 3, algorithm: extract.sig.algorithm, publicKey: Buffer.alloc(0) }, publicKey, keyTag: extract.sig.keyTag }, Math.floor(Date.now() / 1000));
    await verifyPreparedSig0(p);
    keys.set(signer, publicKey);
    const reply = Buffer.alloc(14);
    reply.writeUInt16BE(12, 0);
    reply.writeUInt16BE(msg.readUInt16BE(0), 2);
    reply[4] = 0xa8; // QR, opcode UPDATE
    return reply;
  };
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('error', () => sock.destroy());
    onReplies(sock, (msg) => {
      answer(msg).then(
        (r) => sock.write(r),
        (err: unknown) => {
          process.stderr.write(`${String(err)}\n`);
          sock.destroy();
        },
      );
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
}

async function main(): Promise<void> {
  const names = Number(process.argv[2] ?? 5000);
  const concurrency = Number(process.argv[3] ?? 32);
  console.log(`load average at start: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  const raw0 = await rawVerify(2);
  const sets = { 'per-host': await presign(SCRIPT, ZONE, 'fh-', 1, names, 2), 'long-lived': await presign(SCRIPT, ZONE, 'fl-', 2, names, 2) };
  const results: PhaseResult[] = [];
  for (const mode of ['per-host', 'long-lived'] as Mode[]) {
    const child = spawn(process.execPath, [SCRIPT, '--serve'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const pid = child.pid!;
    const d = { pid, port, startMs: 0, stats: () => procStats(pid), output: () => '', stop: () => Promise.resolve(0) };
    const set = sets[mode];
    const reqs = (msgs: Buffer[]) => msgs.map((framed, i) => ({ framed, source: mode === 'per-host' ? addressOf(set.block, i) : '127.0.0.1' }));
    results.push(await runPhase('claim', mode, d, pid, reqs(set.claims), concurrency));
    results.push(await runPhase('refresh', mode, d, pid, reqs(set.refreshes[0]), concurrency));
    results.push(await runPhase('refresh again', mode, d, pid, reqs(set.refreshes[1]), concurrency));
    child.kill('SIGTERM');
  }
  const raw1 = await rawVerify(2);
  const rawAsync = (raw0.async + raw1.async) / 2;
  const verifyCpu = (raw0.asyncCpuMs + raw1.asyncCpuMs) / 2;
  console.log(`raw crypto.verify P-384: async pool ${rawAsync.toFixed(0)}/s at ${verifyCpu.toFixed(3)} ms CPU each (mean of start and end: ${raw0.async.toFixed(0)}, ${raw1.async.toFixed(0)})`);
  console.log(`floor server, ${names} names, ${concurrency} in flight, ${availableParallelism()} CPUs`);
  console.log('mode        phase           req/s  ÷ raw   p50 ms   p99 ms  server CPU ms/req  ÷ verify  main thread u+s  machine busy  client ms/req  errors');
  for (const r of results) {
    const main = r.threads[0];
    console.log(
      `${r.mode.padEnd(11)} ${r.label.padEnd(14)} ${r.rate.toFixed(0).padStart(6)} ${(r.rate / rawAsync).toFixed(3).padStart(6)} ${r.p50ms.toFixed(2).padStart(8)} ${r.p99ms.toFixed(2).padStart(8)} ` +
        `${r.cpuMsPerReq.toFixed(3).padStart(18)} ${(r.cpuMsPerReq / verifyCpu).toFixed(2).padStart(9)} ${`${main.utimeMs.toFixed(3)}+${main.stimeMs.toFixed(3)}`.padStart(16)} ` +
        `${`${(r.machineBusy * 100).toFixed(0)} %`.padStart(13)} ${r.clientMsPerReq.toFixed(3).padStart(14)} ${String(r.errors).padStart(7)}`,
    );
    if (r.firstError !== undefined) console.log(`    first error: ${r.firstError}`);
  }
  console.log(`load average at end: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
}

if (process.argv[2] === '--sign-job') await signChild(process.argv[3] ?? '{}');
else if (process.argv[2] === '--serve') serve();
else await main();
