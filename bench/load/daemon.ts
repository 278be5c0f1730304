/**
 * The daemon under load: the shipped `bin/nsregd` run as a child process
 * (`node bin/nsregd -c <file>`, so that `--cpu-prof` can be given to node),
 * with a configuration file written here, and a data directory that may be
 * pre-loaded with stored names as a daemon that ran before would have left
 * it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { dump } from 'js-yaml';
import { formatRfc3339 } from '../../src/daemon/keydb/rfc3339.js';
import { encodeLine } from '../../src/daemon/journal.js';
import { keyTag } from '../../src/dns/keys.js';
import { ZoneState } from '../../src/daemon/zonestate.js';
import { nsupdateUpstream, zoneYaml } from '../../test/helpers/config-yaml.js';
import type { TsigKeySpec } from '../../test/helpers/named.js';
import { freePort } from '../../test/helpers/ports.js';
import { LogTail } from '../../test/helpers/tools.js';

/** bin/nsregd of this checkout (it runs dist/src/cli/nsregd.js). */
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../bin/nsregd');

/** The log line bin/nsregd writes once the registration listener is up (src/daemon/server.ts). */
const LISTENING = 'listening for registrations';

/**
 * The per-source limits lifted for the long-lived mode, whose connections
 * all come from 127.0.0.1 and stand for many clients (the `limits:` keys of
 * nsregd.example.yaml). Every other limit keeps its default.
 */
export const LIFTED_LIMITS = Object.freeze({ 'sig-rate-per-source': 0, 'checks-per-source': 4096, 'connections-per-source': 512 });

/** The `i`-th pre-loaded name and its record's address (127.100.0.1 onwards). */
export function preloadedName(i: number, zone: string): { name: string; address: string } {
  const n = i + 1;
  return { name: `pre${i}.${zone}`, address: `127.${100 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}` };
}

/** Master-file lines for named: the pre-loaded names' records, as the daemon that stored them would have published them. */
export function preloadedZoneLines(n: number, zone: string): string[] {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = preloadedName(i, zone);
    lines.push(`${p.name} 60 IN A ${p.address}`);
  }
  return lines;
}

/**
 * Writes what a daemon holding `n` names leaves in its data directory: the
 * key database snapshot in the original's format (`<zone>keydb`, random key
 * bytes: a stored key is only imported when used) and the zone state
 * (`<zone>state`, journal lines `{"r":[name,type,address,ttl,expiresAt]}`,
 * src/daemon/zonestate.ts) with one installed A record per name.
 */
async function preload(dataDir: string, zone: string, n: number): Promise<void> {
  const now = Date.now();
  const keyExpiry = formatRfc3339(now + 30 * 86_400_000);
  const recordExpiry = now + 12 * 3_600_000;
  const keys: string[] = [];
  const records: string[] = [];
  for (let i = 0; i < n; i++) {
    const { name, address } = preloadedName(i, zone);
    const publicKey = randomBytes(96);
    // The key tag a daemon would have written (a wrong one is a warning per key at start-up).
    const tag = keyTag({ flags: 256, protocol: 3, algorithm: 14, publicKey });
    keys.push(`${JSON.stringify(name)}:${JSON.stringify({ Name: name, Flags: 256, Protocol: 3, Algorithm: 14, KeyTag: tag, PublicKey: publicKey.toString('base64'), Expiry: keyExpiry })}`);
    records.push(encodeLine({ r: [name, 'A', address, 300, recordExpiry] }));
  }
  await writeFile(path.join(dataDir, `${zone}keydb`), `{${keys.join(',')}}`);
  await writeFile(ZoneState.fileFor(dataDir, zone), records.join(''));
}

export interface DaemonSpec {
  zone: string;
  namedPort: number;
  tsig: TsigKeySpec;
  /** Names already stored when the daemon starts. */
  preload: number;
  /** A `limits:` section, or none (the shipped defaults). */
  limits?: Readonly<Record<string, unknown>>;
  /** node --cpu-prof into this directory. */
  cpuProfDir?: string;
  /** UV_THREADPOOL_SIZE for the daemon only (default: this process's environment). */
  uvThreadpoolSize?: number;
  /** A `store:` section (default: none, files in the data-dir). */
  store?: Readonly<Record<string, unknown>>;
  /** Options for the daemon's node (`--max-semi-space-size=32`, say). */
  nodeOptions?: readonly string[];
}

/**
 * The configuration file: only what a deployment must state (listener,
 * data-dir, the zone, its nsupdate upstream over TCP with TSIG), plus a
 * `limits:` section when asked; everything else is bin/nsregd's default.
 */
function configYaml(spec: DaemonSpec, port: number, dataDir: string): string {
  const top: Record<string, unknown> = { 'listen-addr': '127.0.0.1', 'listen-port': port, 'data-dir': dataDir };
  if (spec.limits !== undefined) top.limits = spec.limits;
  if (spec.store !== undefined) top.store = spec.store;
  return `${dump(top, { lineWidth: -1 })}zones:\n${zoneYaml(spec.zone, {
    'max-key-ttl': '720h',
    'max-addr-ttl': '24h',
    'allowed-nets': ['127.0.0.0/8'],
    upstreams: [nsupdateUpstream(spec.zone, spec.namedPort, spec.tsig, { timeout: '10s' })],
  })}`;
}

export interface ProcStats {
  rssKb: number;
  /** utime + stime, milliseconds (all threads). */
  cpuMs: number;
}

const CLK_TCK = 100;

export function procStats(pid: number): ProcStats {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssKb: Number(m?.[1] ?? NaN), cpuMs: ((Number(rest[11]) + Number(rest[12])) / CLK_TCK) * 1000 };
}

/** CPU of one thread, milliseconds. */
export interface ThreadCpu {
  tid: number;
  utimeMs: number;
  stimeMs: number;
}

/** utime and stime of every thread of `pid` (/proc/<pid>/task/<tid>/stat), by thread id; threads gone meanwhile are left out. */
export function threadStats(pid: number): Map<number, ThreadCpu> {
  const out = new Map<number, ThreadCpu>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
    } catch {
      continue;
    }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(t), { tid: Number(t), utimeMs: (Number(rest[11]) / CLK_TCK) * 1000, stimeMs: (Number(rest[12]) / CLK_TCK) * 1000 });
  }
  return out;
}

/** The whole machine's CPU time, busy and all, milliseconds summed over the cores (/proc/stat). */
export function machineCpu(): { busyMs: number; totalMs: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  // user nice system idle iowait irq softirq steal …
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + v[4];
  return { busyMs: ((total - idle) / CLK_TCK) * 1000, totalMs: (total / CLK_TCK) * 1000 };
}

export interface Daemon {
  readonly pid: number;
  readonly port: number;
  /** Spawn → the "listening for registrations" log line, ms. */
  readonly startMs: number;
  stats(): ProcStats;
  output(): string;
  /** SIGTERM → exit, ms (the data directory is removed afterwards, not timed). */
  stop(): Promise<number>;
}

/** Starts bin/nsregd; rejects with its output if it exits or does not listen within a minute. */
export async function startDaemon(spec: DaemonSpec): Promise<Daemon> {
  const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-load-'));
  const dataDir = path.join(dir, 'data');
  await mkdir(dataDir);
  if (spec.preload > 0) await preload(dataDir, spec.zone, spec.preload);
  const port = await freePort();
  const conf = path.join(dir, 'nsregd.yaml');
  await writeFile(conf, configYaml(spec, port, dataDir));
  const nodeArgs = [...(spec.nodeOptions ?? []), ...(spec.cpuProfDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${spec.cpuProfDir}`])];
  const t0 = performance.now();
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, BIN, '-c', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: spec.uvThreadpoolSize === undefined ? process.env : { ...process.env, UV_THREADPOOL_SIZE: String(spec.uvThreadpoolSize) },
  });
  // The daemon logs every claim: its output is kept as pieces, joined only when read (LogTail).
  const out = new LogTail(20_000);
  let listening: (() => void) | undefined;
  const keep = (s: string): void => {
    out.push(s);
    if (listening !== undefined && out.text().includes(LISTENING)) listening();
  };
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let startMs: number;
  try {
    startMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nsregd did not listen within 60 s:\n${out.text()}`)), 60_000);
      listening = () => {
        listening = undefined;
        clearTimeout(timer);
        resolve(performance.now() - t0);
      };
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`nsregd exited during start-up:\n${out.text()}`));
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  // A build without the `limits:` section only warns about it, and would measure its own defaults.
  const ignored = /limits(\.[a-z-]+)?: unknown key/.exec(out.text());
  if (spec.limits !== undefined && ignored !== null) {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw new Error(`this nsregd ignores the limits: section the long-lived mode needs ("${ignored[0]}, ignored")`);
  }
  const pid = child.pid!;
  return {
    pid,
    port,
    startMs,
    stats: () => procStats(pid),
    output: () => out.text(),
    async stop(): Promise<number> {
      const t = performance.now();
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
        await exited;
        clearTimeout(killer);
      }
      const ms = performance.now() - t;
      await rm(dir, { recursive: true, force: true });
      if (child.exitCode !== 0) throw new Error(`nsregd exited ${String(child.exitCode ?? child.signalCode)} at SIGTERM:\n${out.text().slice(-4000)}`);
      return ms;
    },
  };
}
