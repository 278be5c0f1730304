/**
 * What nsregd's TCP layer (src/net/tcp-server.ts) costs per connection,
 * against a bare net.Server doing the least a DNS-over-TCP server can:
 * accept, read one framed message, write a 12-octet reply. Neither checks
 * anything, so the figure is the connection handling alone, without the
 * signature check's thread pool in the way. Each request comes from its
 * own source address (127.9.x.y) on a fresh connection that the client
 * ends after the reply: nsregd-load.ts's per-host client (load/drive.ts).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/tcp-layer.js [requests=20000] [rounds=3]
 *
 * The server is this script run again with `--serve bare|layer`. Printed per
 * round: requests/s and the server's main-thread CPU per request (utime +
 * stime of its first thread, /proc/<pid>/task/<pid>/stat). The two servers
 * alternate, round after round, after a warm-up of 3,000 requests each.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { TcpDnsServer } from '../src/net/tcp-server.js';
import { frame } from '../src/net/transport.js';
import { threadStats } from './load/daemon.js';
import { onReplies, oneShot } from './load/drive.js';

const SCRIPT = fileURLToPath(import.meta.url);
const CONCURRENCY = 32;
const WARM_UP = 3000;

/** A NOERROR UPDATE reply header (QR, opcode UPDATE), unframed. */
const REPLY = Buffer.from([0, 0, 0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

async function serve(kind: string): Promise<void> {
  if (kind === 'bare') {
    const framed = frame(REPLY);
    const server = net.createServer((sock) => {
      sock.setNoDelay(true);
      sock.on('error', () => sock.destroy());
      // As the layer does: the reply is written from a promise's continuation, not from the data event.
      onReplies(sock, () => void Promise.resolve().then(() => sock.write(framed)));
    });
    server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`));
    return;
  }
  // As the daemon runs it: an info-level pino logger (nothing is logged for a connection that goes well).
  const log = pino({ level: 'info' }, pino.destination('/dev/null'));
  const layer = new TcpDnsServer({ handler: () => Promise.resolve(REPLY), log, limits: {} });
  await layer.listen('127.0.0.1', 0);
  process.stdout.write(`${layer.port}\n`);
}

interface Server {
  readonly kind: string;
  readonly child: ChildProcess;
  readonly port: number;
}

async function startServer(kind: string): Promise<Server> {
  const child = spawn(process.execPath, [SCRIPT, '--serve', kind], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the ${kind} server exited (${String(code)}) before listening`)));
    child.stdout?.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
  });
  return { kind, child, port };
}

/** `n` requests, CONCURRENCY at a time, request i from 127.9.<i / 250>.<i % 250 + 1>. */
async function drive(port: number, n: number): Promise<number> {
  const framed = frame(Buffer.alloc(38));
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const source = `127.9.${Math.floor(i / 250) % 256}.${(i % 250) + 1}`;
        const { rcode } = await oneShot(port, { framed, source });
        if (rcode !== 0) throw new Error(`request from ${source} answered with rcode ${rcode}`);
      }
    }),
  );
  return performance.now() - t0;
}

function mainThreadCpuMs(pid: number): number {
  const t = threadStats(pid).get(pid);
  if (t === undefined) throw new Error(`no main thread for ${pid}`);
  return t.utimeMs + t.stimeMs;
}

async function main(): Promise<void> {
  const requests = Number(process.argv[2] ?? 20_000);
  const rounds = Number(process.argv[3] ?? 3);
  if (!Number.isInteger(requests) || requests < 1 || !Number.isInteger(rounds) || rounds < 1) throw new Error('usage: tcp-layer.js [requests] [rounds]');
  console.log(`load average at start: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  const servers = [await startServer('bare'), await startServer('layer')];
  try {
    for (const s of servers) await drive(s.port, WARM_UP);
    console.log('round  server  requests    req/s  main thread µs/req');
    const perReq = new Map<string, number[]>();
    for (let r = 1; r <= rounds; r++) {
      for (const s of servers) {
        const pid = s.child.pid as number;
        const c0 = mainThreadCpuMs(pid);
        const ms = await drive(s.port, requests);
        const us = ((mainThreadCpuMs(pid) - c0) / requests) * 1000;
        perReq.set(s.kind, [...(perReq.get(s.kind) ?? []), us]);
        console.log(`${String(r).padStart(5)}  ${s.kind.padEnd(6)} ${String(requests).padStart(9)} ${((requests / ms) * 1000).toFixed(0).padStart(8)} ${us.toFixed(1).padStart(19)}`);
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const bare = median(perReq.get('bare') ?? []);
    const layer = median(perReq.get('layer') ?? []);
    console.log(`median main-thread CPU per connection: bare ${bare.toFixed(1)} µs, layer ${layer.toFixed(1)} µs (${(layer - bare >= 0 ? '+' : '') + (layer - bare).toFixed(1)} µs)`);
    console.log(`load average at end: ${loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  } finally {
    for (const s of servers) s.child.kill();
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3] ?? 'bare');
else await main();
