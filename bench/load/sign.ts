/**
 * Pre-signing for the load benchmark: every update a phase sends is
 * generated and SIG(0)-signed (ECDSA P-384) before the timed part, in one
 * child process per core. Messages come back already framed for TCP (a
 * two-octet length first, RFC 1035 section 4.2.2), so sending one costs a
 * single write.
 *
 * Each name registers one A record: its own address, 127.<block>.x.y (Linux
 * routes all of 127/8 to lo), which in per-host mode is also the address
 * its requests come from.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { a, makeClient, signedUpdate } from '../../test/helpers/sig0-client.js';

/** Seconds the signing `now` is put ahead: signatures stay valid from −60 s to +540 s (±300 s window). */
const SIGN_AHEAD = 240;

/** Largest name set: the address block 127.<block>.x.y holds 65,535 names. */
export const MAX_SET = 65_535;

/** The address of name `i` of a set in `block`: its record, and its source in per-host mode. */
export function addressOf(block: number, i: number): string {
  const n = i + 1;
  return `127.${block}.${n >> 8}.${n & 255}`;
}

interface SignJob {
  prefix: string;
  zone: string;
  block: number;
  from: number;
  to: number;
  /** Refresh messages per name, signed with the same key as its claim (same record: no upstream change). */
  refreshesPerName: number;
  now: number;
}

function framed(m: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(m.length + 2);
  out.writeUInt16BE(m.length, 0);
  out.set(m, 2);
  return out;
}

/** Child-process side of presign(): the job in argv, framed messages on stdout (claims, then refresh rounds). */
export async function signChild(jobJson: string): Promise<void> {
  const job = JSON.parse(jobJson) as SignJob;
  const claims: Buffer[] = [];
  const refreshes: Buffer[][] = Array.from({ length: job.refreshesPerName }, () => []);
  for (let i = job.from; i < job.to; i++) {
    const c = makeClient(`${job.prefix}${i}`, job.zone);
    const rr = [a(c.name, addressOf(job.block, i), 300)];
    claims.push(framed(signedUpdate(c, rr, { now: job.now, id: i & 0xffff })));
    for (let k = 0; k < job.refreshesPerName; k++) refreshes[k].push(framed(signedUpdate(c, rr, { now: job.now, id: (i + k + 1) & 0xffff })));
  }
  const all = Buffer.concat([...claims, ...refreshes.flat()]);
  await new Promise<void>((resolve, reject) => process.stdout.write(all, (err) => (err ? reject(err) : resolve())));
}

function split(all: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off + 2 <= all.length; ) {
    const end = off + 2 + all.readUInt16BE(off);
    out.push(all.subarray(off, end));
    off = end;
  }
  return out;
}

interface Part {
  claims: Buffer[];
  refreshes: Buffer[][];
}

function signInChild(script: string, job: SignJob): Promise<Part> {
  return new Promise<Part>((resolve, reject) => {
    const child = spawn(process.execPath, [script, '--sign-job', JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      const n = job.to - job.from;
      const msgs = split(Buffer.concat(chunks));
      if (code !== 0 || msgs.length !== n * (1 + job.refreshesPerName)) {
        reject(new Error(`signing process for ${job.prefix}${job.from}… exited ${String(code)} with ${msgs.length} messages`));
        return;
      }
      resolve({ claims: msgs.slice(0, n), refreshes: Array.from({ length: job.refreshesPerName }, (_, k) => msgs.slice(n * (k + 1), n * (k + 2))) });
    });
  });
}

/** One set of names, signed: name i is `<prefix><i>.<zone>` at addressOf(block, i). */
export interface NameSet {
  readonly block: number;
  readonly size: number;
  /** claims[i]: the first registration of name i, framed. */
  readonly claims: Buffer[];
  /** refreshes[k][i]: the k-th refresh of name i (same record), framed. */
  readonly refreshes: Buffer[][];
}

/**
 * Signs `size` names on every core. `script` is the benchmark's entry file,
 * run again with `--sign-job` (child processes, not worker threads: P-384
 * key generation in worker threads stalled now and then, and a hung bench
 * measures nothing).
 */
export async function presign(script: string, zone: string, prefix: string, block: number, size: number, refreshesPerName: number): Promise<NameSet> {
  if (size > MAX_SET) throw new Error(`a name set holds at most ${MAX_SET} names (${size} asked)`);
  const workers = Math.max(1, availableParallelism());
  const now = Math.floor(Date.now() / 1000) + SIGN_AHEAD;
  const per = Math.ceil(size / workers);
  const jobs: SignJob[] = [];
  for (let from = 0; from < size; from += per) jobs.push({ prefix, zone, block, from, to: Math.min(size, from + per), refreshesPerName, now });
  const parts = await Promise.all(jobs.map((job) => signInChild(script, job)));
  return {
    block,
    size,
    claims: parts.flatMap((p) => p.claims),
    refreshes: Array.from({ length: refreshesPerName }, (_, k) => parts.flatMap((p) => p.refreshes[k])),
  };
}
