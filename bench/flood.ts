/**
 * Flood benchmark (issue "Nothing left behind, nothing let in"): one source
 * sends bogus signed updates (valid form, broken signature) as fast as
 * `--rate` allows, 1,000 idle connections sit on the daemon, and 32
 * legitimate clients — each from its own loopback address, as real hosts
 * would be — keep refreshing. Reports the legitimate clients' latency and
 * success rate, how much of the flood was turned away, and the daemon's
 * CPU and memory.
 *
 *   node dist/bench/flood.js [seconds=20] [rate=5000] [idle=1000]
 */
import * as net from 'node:net';
import { readFileSync } from 'node:fs';
import { Rcode } from '../src/dns/constants.js';
import { decodeMessage } from '../src/dns/message.js';
import { FrameDecoder, frame } from '../src/net/transport.js';
import { startNsregd } from '../test/helpers/nsregd-lab.js';
import { freePort } from '../test/helpers/ports.js';
import { a, makeClient, signedUpdate, type TestClient } from '../test/helpers/sig0-client.js';
import { LOOPBACK_ZONE, serveUpstream, zoneYaml } from '../test/helpers/config-yaml.js';
import { letTimePass } from '../test/helpers/eventually.js';

const seconds = Number(process.argv[2] ?? 20);
const floodRate = Number(process.argv[3] ?? 5000);
const idleCount = Number(process.argv[4] ?? 1000);
const LEGIT = 32;
const LEGIT_INTERVAL_MS = 100;
const ZONE = 'dynamic.example.org.';

/** A pipelining DNS-over-TCP connection from a chosen local address. */
class Conn {
  private readonly decoder = new FrameDecoder();
  private readonly waiting = new Map<number, (reply: Buffer) => void>();
  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const f of this.decoder.push(chunk)) {
        const id = f.readUInt16BE(0);
        const w = this.waiting.get(id);
        this.waiting.delete(id);
        w?.(f);
      }
    });
    socket.on('error', () => undefined);
  }
  static open(port: number, localAddress: string): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(new Conn(s)));
      s.once('error', reject);
    });
  }
  get closed(): boolean {
    return this.socket.destroyed;
  }
  request(msg: Buffer, timeoutMs = 5000): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) {
        reject(new Error('connection closed'));
        return;
      }
      const timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      const onClose = (): void => {
        clearTimeout(timer);
        reject(new Error('connection closed'));
      };
      this.socket.once('close', onClose);
      this.waiting.set(msg.readUInt16BE(0), (reply) => {
        clearTimeout(timer);
        this.socket.off('close', onClose);
        resolve(reply);
      });
      this.socket.write(frame(msg));
    });
  }
  send(msg: Buffer): void {
    this.socket.write(frame(msg));
  }
}

function procStats(pid: number): { cpuMs: number; rssKb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpuMs: (ticks * 1000) / 100, rssKb: Number(rss) };
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

const dnsPort = await freePort();
const d = await startNsregd({
  zonesYaml: zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(dnsPort, { 'rate-limit': 0 })] }),
  extraArgs: [],
});
const pid = d.child.pid as number;
try {
  const nowS = (): number => Math.floor(Date.now() / 1000);
  // Legitimate clients: claimed first, then pre-signed refreshes (signing is not what we measure).
  const clients: TestClient[] = Array.from({ length: LEGIT }, (_, i) => makeClient(`legit${i}`, ZONE));
  const perClient = Math.ceil((seconds * 1000) / LEGIT_INTERVAL_MS) + 5;
  const conns = await Promise.all(clients.map((_, i) => Conn.open(d.port, `127.0.0.${i + 2}`)));
  let id = 1;
  for (let i = 0; i < LEGIT; i++) {
    const c = clients[i];
    const r = decodeMessage(await (conns[i]).request(signedUpdate(c, [a(c.name, `10.0.${i}.1`)], { now: nowS(), id: id++ })));
    if (r.rcode !== Rcode.NOERROR) throw new Error(`claim of ${c.name} failed: rcode ${r.rcode}`);
  }
  const t0 = Date.now();
  const refreshes = clients.map((c, i) =>
    Array.from({ length: perClient }, () => signedUpdate(c, [a(c.name, `10.0.${i}.1`)], { now: nowS(), id: (id++ & 0xffff) || 1 })),
  );
  console.log(`pre-signed ${LEGIT * perClient} refreshes in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // The attacker's messages: well-formed, signed by a key that is not the owner's, for a claimed name.
  const attacker = makeClient('legit0', ZONE);
  const bogus = Array.from({ length: 64 }, (_, i) => {
    const m = signedUpdate(attacker, [a(attacker.name, '10.66.0.1')], { now: nowS(), id: 40000 + i, keyRData: clients[0]?.rdata });
    m[m.length - 3] ^= 0x5a;
    return m;
  });

  // Idle connections from 40 other addresses (the per-source cap is 32), reopened when evicted.
  let idleOpen = 0;
  let idleEvicted = 0;
  let stopping = false;
  const openIdle = (n: number): void => {
    const addr = `127.0.1.${(n % 40) + 1}`;
    const s = net.connect({ port: d.port, host: '127.0.0.1', localAddress: addr }, () => idleOpen++);
    s.on('error', () => undefined);
    s.on('close', () => {
      idleOpen = Math.max(0, idleOpen - 1);
      idleEvicted++;
      if (!stopping) setTimeout(() => openIdle(n), 200).unref();
    });
  };
  for (let i = 0; i < idleCount; i++) openIdle(i);
  await letTimePass(1000); // on purpose: the idle pool (more than the server admits) churns for a second before the baseline
  const idleAtStart = idleOpen;

  const before = procStats(pid);
  const floodConns = await Promise.all(Array.from({ length: 8 }, () => Conn.open(d.port, '127.0.0.200')));
  let floodSent = 0;
  const floodStart = Date.now();
  const flood = setInterval(() => {
    const due = Math.floor(((Date.now() - floodStart) / 1000) * floodRate) - floodSent;
    for (let i = 0; i < due; i++) {
      (floodConns[floodSent % floodConns.length]).send(bogus[floodSent % bogus.length]);
      floodSent++;
    }
  }, 5);

  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  const end = Date.now() + seconds * 1000;
  let reconnects = 0;
  await Promise.all(
    clients.map(async (_, i) => {
      let conn = conns[i];
      for (const msg of refreshes[i]) {
        if (Date.now() >= end) break;
        const t = performance.now();
        try {
          // A real client whose idle connection was closed simply connects again (counted in its latency).
          if (conn.closed) {
            conn = await Conn.open(d.port, `127.0.0.${i + 2}`);
            conns[i] = conn;
            reconnects++;
          }
          const r = decodeMessage(await conn.request(msg));
          latencies.push(performance.now() - t);
          if (r.rcode === Rcode.NOERROR) ok++;
          else failed++;
        } catch {
          failed++;
        }
        await letTimePass(LEGIT_INTERVAL_MS); // on purpose: legitimate clients refresh at a steady pace
      }
    }),
  );
  clearInterval(flood);
  stopping = true;
  const after = procStats(pid);
  const elapsed = (Date.now() - floodStart) / 1000;
  console.log(`\nflood: ${floodSent} bogus signed updates from one address in ${elapsed.toFixed(1)} s (${(floodSent / elapsed).toFixed(0)}/s), ${idleAtStart} idle connections held (${idleEvicted} evicted and reopened)`);
  console.log(`legitimate: ${LEGIT} clients, ${ok + failed} refreshes, success ${((100 * ok) / Math.max(1, ok + failed)).toFixed(2)} % (${failed} failed, ${reconnects} reconnects after an idle close)`);
  console.log(`latency ms: p50 ${pct(latencies, 50).toFixed(1)}  p99 ${pct(latencies, 99).toFixed(1)}  max ${Math.max(...latencies).toFixed(1)}`);
  console.log(`daemon CPU ${(((after.cpuMs - before.cpuMs) / 1000 / elapsed) * 100).toFixed(0)} % of one core, RSS ${(after.rssKb / 1024).toFixed(1)} MiB`);
  console.log(`goals: p99 < 100 ms → ${pct(latencies, 99) < 100 ? 'met' : 'NOT met'}; success 100 % → ${failed === 0 ? 'met' : 'NOT met'}`);
  for (const c of [...conns, ...floodConns]) c.socket.destroy();
} finally {
  await d.stop();
}
process.exit(0);
