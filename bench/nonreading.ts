/**
 * Memory under clients that never read (issue 10): `conns` connections to
 * the registration listener send SRV queries and as many to the zone
 * server's TCP side send SOA queries, as fast as the sockets take them,
 * and never read a reply. Samples the daemon's RSS every second and, at
 * the end, times one legitimate query on each listener from another
 * address. Loopback only; bounded by `seconds`.
 *
 *   node dist/bench/nonreading.js [seconds=20] [conns=4]
 *
 * The daemon is bin/nsregd resolved against the working directory, at info
 * level (no per-request log lines), so running this from another checkout's
 * directory measures that checkout's daemon with this client.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Opcode, RRClass, RRType } from '../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../src/dns/message.js';
import { frame, tcpExchange } from '../src/net/transport.js';
import { LOOPBACK_ZONE, serveUpstream, zoneYaml } from '../test/helpers/config-yaml.js';
import { daemonYaml } from '../test/helpers/nsregd-lab.js';
import { letTimePass } from '../test/helpers/eventually.js';
import { freePort } from '../test/helpers/ports.js';

const seconds = Number(process.argv[2] ?? 20);
const connsPerListener = Number(process.argv[3] ?? 4);
const ZONE = 'dynamic.example.org.';

function rssMiB(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

function query(name: string, type: number): Buffer {
  const q = emptyMessage(7, Opcode.QUERY);
  q.questions.push({ name, type, class: RRClass.IN });
  return encodeMessage(q);
}

/** Opens a connection that writes `q` over and over as fast as the socket takes it, and never reads. */
function hostile(port: number, q: Buffer, stop: () => boolean): Promise<net.Socket> {
  const chunk = Buffer.concat(Array.from({ length: 1000 }, () => frame(q)));
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.3' }, () => {
      s.pause();
      const pump = (): void => {
        while (!stop() && !s.destroyed && s.write(chunk));
      };
      s.on('drain', pump);
      pump();
      resolve(s);
    });
    s.on('error', () => undefined);
  });
}

const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-nonreading-'));
const port = await freePort();
const dnsPort = await freePort();
const config = path.join(dir, 'nsregd.yaml');
await writeFile(
  config,
  daemonYaml(port, path.join(dir, 'data'), zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(dnsPort, { 'rate-limit': 0 })] })),
);
const child = spawn(process.execPath, [path.resolve('bin/nsregd'), '-c', config], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise<void>((resolve, reject) => {
  let seen = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (c: string) => {
    seen += c;
    if (seen.includes('zone server answering') && seen.includes('listening for registrations')) resolve();
  });
  child.once('exit', (code) => reject(new Error(`nsregd exited (${code})`)));
});
const pid = child.pid as number;
let stopping = false;
let exited: number | null | undefined;
child.once('exit', (code) => (exited = code));
try {
  const start = rssMiB(pid);
  console.log(`nsregd pid ${pid}, RSS at start ${start.toFixed(1)} MiB; ${connsPerListener} non-reading connections per listener for ${seconds} s`);
  const socks = [
    ...(await Promise.all(Array.from({ length: connsPerListener }, () => hostile(port, query(`_nsreg._tcp.${ZONE}`, RRType.SRV), () => stopping)))),
    ...(await Promise.all(Array.from({ length: connsPerListener }, () => hostile(dnsPort, query(ZONE, RRType.SOA), () => stopping)))),
  ];
  const samples: number[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000 && exited === undefined) {
    await letTimePass(1000); // on purpose: one RSS sample a second
    if (exited !== undefined) break;
    samples.push(rssMiB(pid));
  }
  const legit = async (p: number, q: Buffer): Promise<string> => {
    const t = performance.now();
    try {
      const r = decodeMessage(await tcpExchange({ host: '127.0.0.1', port: p, message: q, timeoutMs: 10_000, localAddress: '127.0.0.2' }));
      return `rcode ${r.rcode} in ${(performance.now() - t).toFixed(0)} ms`;
    } catch (err) {
      return `failed: ${String(err)}`;
    }
  };
  const reg = await legit(port, query(`_nsreg._tcp.${ZONE}`, RRType.SRV));
  const zone = await legit(dnsPort, query(ZONE, RRType.SOA));
  const written = socks.reduce((n, s) => n + s.bytesWritten, 0);
  stopping = true;
  for (const s of socks) s.destroy();
  console.log(`RSS MiB each second: ${samples.map((x) => x.toFixed(0)).join(' ')}`);
  console.log(`RSS peak ${Math.max(...samples).toFixed(1)} MiB, last ${(samples.at(-1) ?? NaN).toFixed(1)} MiB; ${(written / 2 ** 20).toFixed(0)} MiB of queries taken by the sockets`);
  console.log(`daemon ${exited === undefined ? 'alive' : `exited (${exited})`}; legitimate query meanwhile: registration ${reg}, zone server ${zone}`);
} finally {
  stopping = true;
  if (exited === undefined) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
