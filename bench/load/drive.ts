/**
 * Clients for the load benchmark, two ways:
 *  - per-host: each request from its name's own address (the client socket
 *    is bound to 127.<block>.x.y before connecting) on a fresh TCP
 *    connection, closed by the client after the reply — as nsregc and the
 *    original client do; `concurrency` requests in flight, each from its
 *    own source;
 *  - long-lived: `concurrency` connections from 127.0.0.1, each with one
 *    request outstanding (the next is sent when the reply arrives).
 * Latency: from the connection attempt (per-host) or the write
 * (long-lived) to the whole reply.
 */
import { cpuUsage } from 'node:process';
import * as net from 'node:net';
import type { Daemon, ThreadCpu } from './daemon.js';
import { machineCpu, procStats, threadStats } from './daemon.js';

export type Mode = 'per-host' | 'long-lived';

/** One request: a framed message and, per-host, its source address (and the daemon's port when several take requests). */
export interface Request {
  readonly framed: Buffer;
  readonly source: string;
  readonly port?: number;
}

interface Outcome {
  errors: number;
  firstError?: string;
}

/** The printable text at the end of a refusal (its TXT reason), for the error report. */
function txtOf(reply: Buffer): string {
  return reply
    .subarray(12)
    .toString('latin1')
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim()
    .slice(-80);
}

/** Reads framed messages (replies here, requests in verify-floor.ts) from `sock`; calls `onReply` with each one's message. */
export function onReplies(sock: net.Socket, onReply: (msg: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 2) {
      const len = pending.readUInt16BE(0);
      if (pending.length < len + 2) break;
      const reply = pending.subarray(2, len + 2);
      pending = pending.subarray(len + 2);
      onReply(reply);
    }
  });
}

const REPLY_TIMEOUT_MS = 30_000;

function rcodeOf(reply: Buffer): number {
  return reply.length >= 4 ? reply[3] & 0xf : -1;
}

/** One request on its own connection from `req.source`; resolves with the reply's rcode. */
export function oneShot(port: number, req: Request): Promise<{ rcode: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port: req.port ?? port, localAddress: req.source });
    sock.setNoDelay(true);
    let done = false;
    sock.setTimeout(REPLY_TIMEOUT_MS, () => sock.destroy(new Error(`no reply within ${REPLY_TIMEOUT_MS / 1000} s`)));
    sock.once('connect', () => sock.write(req.framed));
    onReplies(sock, (reply) => {
      if (done) return;
      done = true;
      sock.end();
      const rcode = rcodeOf(reply);
      resolve({ rcode, text: rcode === 0 ? '' : txtOf(reply) });
    });
    sock.on('error', (err) => {
      if (!done) reject(err);
      done = true;
    });
    sock.on('close', () => {
      if (!done) reject(new Error('connection closed without a reply'));
      done = true;
    });
  });
}

async function perHost(port: number, reqs: readonly Request[], concurrency: number, latencies: Float64Array, out: Outcome): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < reqs.length) {
      const i = next++;
      const t0 = performance.now();
      try {
        const { rcode, text } = await oneShot(port, reqs[i]);
        latencies[i] = performance.now() - t0;
        if (rcode !== 0) {
          out.errors++;
          out.firstError ??= `request ${i} from ${reqs[i].source}: rcode ${rcode} ${text}`;
        }
      } catch (err) {
        latencies[i] = performance.now() - t0;
        out.errors++;
        out.firstError ??= `request ${i} from ${reqs[i].source}: ${String(err)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** One long-lived connection from 127.0.0.1 taking requests from `next()` one at a time. */
function connection(port: number, reqs: readonly Request[], next: () => number, latencies: Float64Array, out: Outcome): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.setNoDelay(true);
    let current = -1;
    let sentAt = 0;
    const send = (): void => {
      current = next();
      if (current < 0) {
        sock.end();
        return;
      }
      sentAt = performance.now();
      sock.write(reqs[current].framed);
    };
    sock.setTimeout(REPLY_TIMEOUT_MS, () => sock.destroy(new Error(`no reply within ${REPLY_TIMEOUT_MS / 1000} s`)));
    sock.on('connect', send);
    onReplies(sock, (reply) => {
      latencies[current] = performance.now() - sentAt;
      const rcode = rcodeOf(reply);
      if (rcode !== 0) {
        out.errors++;
        out.firstError ??= `request ${current}: rcode ${rcode} ${txtOf(reply)}`;
      }
      send();
    });
    sock.on('error', reject);
    sock.on('close', () => (current < 0 ? resolve() : reject(new Error(`connection closed with request ${current} unanswered`))));
  });
}

async function longLived(port: number, reqs: readonly Request[], concurrency: number, latencies: Float64Array, out: Outcome): Promise<void> {
  let i = 0;
  const next = (): number => (i < reqs.length ? i++ : -1);
  await Promise.all(Array.from({ length: concurrency }, () => connection(port, reqs, next, latencies, out)));
}

export interface PhaseResult {
  readonly label: string;
  readonly mode: Mode;
  readonly concurrency: number;
  readonly requests: number;
  readonly errors: number;
  readonly firstError?: string;
  readonly seconds: number;
  readonly rate: number;
  readonly p50ms: number;
  readonly p99ms: number;
  /** Daemon CPU (utime + stime, all threads) per request. */
  readonly cpuMsPerReq: number;
  /** named's CPU per request. */
  readonly namedMsPerReq: number;
  /** This process's CPU (the clients) per request. */
  readonly clientMsPerReq: number;
  readonly rssKbAfter: number;
  /** Per thread of the daemon (the main thread first, then by thread id): CPU per request, ms. */
  readonly threads: readonly ThreadCpu[];
  /** The share of the machine's CPU time (all cores) that was busy during the phase, 0–1. */
  readonly machineBusy: number;
}

/** Each thread's CPU between two readings, per request; the main thread (tid = pid) first, then by thread id. */
function threadDeltas(pid: number, before: Map<number, ThreadCpu>, after: Map<number, ThreadCpu>, n: number): ThreadCpu[] {
  const out: ThreadCpu[] = [];
  for (const [tid, a] of after) {
    const b = before.get(tid) ?? { tid, utimeMs: 0, stimeMs: 0 };
    out.push({ tid, utimeMs: (a.utimeMs - b.utimeMs) / n, stimeMs: (a.stimeMs - b.stimeMs) / n });
  }
  return out.sort((x, y) => (x.tid === pid ? -1 : y.tid === pid ? 1 : x.tid - y.tid));
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))];
}

/**
 * Waits until the daemon's CPU time stops advancing (at most one clock tick
 * in 200 ms), so that work left over from the previous phase or the
 * start-up (upstream updates, journal writes, garbage collection) is not
 * counted in the next one. Gives up after 15 s.
 */
async function settle(d: Daemon): Promise<void> {
  const deadline = performance.now() + 15_000;
  let prev = d.stats().cpuMs;
  const deltas: number[] = [];
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = d.stats().cpuMs;
    deltas.push(now - prev);
    prev = now;
    if (deltas.length >= 2 && deltas[deltas.length - 1] + deltas[deltas.length - 2] <= 10) return;
  }
}

/** Sends `reqs` to the daemon `mode`'s way with `concurrency` in flight, once it is idle; measures the phase. */
export async function runPhase(label: string, mode: Mode, d: Daemon, namedPid: number, reqs: readonly Request[], concurrency: number): Promise<PhaseResult> {
  await settle(d);
  const latencies = new Float64Array(reqs.length);
  const out: Outcome = { errors: 0 };
  const before = d.stats();
  const threadsBefore = threadStats(d.pid);
  const machineBefore = machineCpu();
  const namedBefore = procStats(namedPid);
  const clientBefore = cpuUsage();
  const t0 = performance.now();
  await (mode === 'per-host' ? perHost : longLived)(d.port, reqs, concurrency, latencies, out);
  const seconds = (performance.now() - t0) / 1000;
  const after = d.stats();
  const threadsAfter = threadStats(d.pid);
  const machineAfter = machineCpu();
  const client = cpuUsage(clientBefore);
  const namedAfter = procStats(namedPid);
  process.stderr.write(`  ${mode} ${label} ×${concurrency}: ${reqs.length} in ${seconds.toFixed(1)} s\n`);
  latencies.sort();
  const n = reqs.length;
  return {
    label,
    mode,
    concurrency,
    requests: n,
    errors: out.errors,
    ...(out.firstError === undefined ? {} : { firstError: out.firstError }),
    seconds,
    rate: n / seconds,
    p50ms: percentile(latencies, 0.5),
    p99ms: percentile(latencies, 0.99),
    cpuMsPerReq: (after.cpuMs - before.cpuMs) / n,
    namedMsPerReq: (namedAfter.cpuMs - namedBefore.cpuMs) / n,
    clientMsPerReq: (client.user + client.system) / 1000 / n,
    rssKbAfter: after.rssKb,
    threads: threadDeltas(d.pid, threadsBefore, threadsAfter, n),
    machineBusy: (machineAfter.busyMs - machineBefore.busyMs) / Math.max(1, machineAfter.totalMs - machineBefore.totalMs),
  };
}
