/**
 * Several nsregd as one service (README, "Several daemons as one
 * service"): claims and refreshes per second through one daemon on the
 * files store, one daemon on the etcd store and three daemons on the etcd
 * store, in one run, against one real BIND `named` (nsupdate upstream over
 * TCP with TSIG) and a real etcd cluster on loopback, three members unless
 * --etcd-members 1 (Debian's `etcd`, test/helpers/etcd.ts; on this machine
 * its members share the two cores with everything else). Requests as in nsregd-load.ts's per-host
 * mode: each name from its own 127.x address on a fresh connection,
 * pre-signed SIG(0) P-384 updates; with three daemons, name i registers
 * and refreshes at daemon i mod 3, as hosts spread over a site's SRV
 * targets and stay with the one that answers (--cross: each refresh at
 * the next daemon, which must import the key the first time). Every configuration is the shipped default apart from
 * listener, data-dir, zone and (for etcd) the `store:` section.
 *
 * --files-3 adds a fourth set-up, **files, 3 daemons**: three independent
 * daemons on the files store (each its own data-dir, names spread as
 * above), which share nothing but the machine and named — what three
 * processes cost on these two cores without etcd.
 *
 * Before its measured phases every set-up is warmed up with claims and a
 * refresh of --warm other names per daemon (default 3,000; 0: none),
 * spread over its daemons like the measured ones and not counted: a daemon
 * fresh from its start is still compiling its code. Without it, a perf
 * profile of the three daemons' refresh phase put a fifth of each
 * daemon's CPU in V8's optimising compiler and a tenth in code not yet
 * optimised, as each had seen only a third of the requests
 * (bench/README.md). A site's daemons run warm.
 *
 * All set-ups run from the start of the run to its end. After the warm-up
 * and the claims of each, their refreshes take turns: --rounds rounds
 * (default 3; each name is refreshed once per round), every round one
 * refresh of every name of each set-up in turn. The machine's speed moves
 * over the minutes of a run (other tenants of the host), so each round's
 * ratio compares refreshes measured within seconds of each other, and the
 * target is judged on the median of the rounds' ratios.
 *
 * Printed per phase: requests/s, p50/p99, CPU per request of the daemons
 * (all of them) and of the etcd members, and the etcd store's refresh rate
 * as a share of the files store's, round by round and their median (issue
 * 15's target: ≥ 0.5); with several
 * daemons also each one's CPU, the zone's publisher marked (the daemon
 * that logged its election), and the etcd transactions and range reads
 * per request (the members' /metrics).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/shared-store.js [--names N] [--concurrency N] [--etcd-members 1|3] [--cross] [--files-3] [--warm N] [--rounds N] [--cpu-prof DIR] [--daemon-node-option OPT]...
 *
 * Exits non-zero on errors (a refused or unanswered request, a daemon that
 * does not start or stop), never on a missed target.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEtcdCluster, type EtcdCluster } from '../test/helpers/etcd.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../test/helpers/named.js';
import { procStats, startDaemon, type Daemon } from './load/daemon.js';
import { runPhase, type PhaseResult, type Request } from './load/drive.js';
import { addressOf, MAX_SET, presign, signChild, type NameSet } from './load/sign.js';

const ZONE = 'bench.test.';
const SCRIPT = fileURLToPath(import.meta.url);

interface Args {
  names: number;
  concurrency: number;
  cpuProf: string | undefined;
  cross: boolean;
  members: 1 | 3;
  files3: boolean;
  warm: number;
  rounds: number;
  nodeOptions: string[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { names: 3000, concurrency: 32, cpuProf: undefined, cross: false, members: 3, files3: false, warm: 3000, rounds: 3, nodeOptions: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--cross') {
      args.cross = true;
      continue;
    }
    if (a === '--files-3') {
      args.files3 = true;
      continue;
    }
    if (a === '--daemon-node-option') {
      args.nodeOptions.push(argv[++i] ?? '');
      continue;
    }
    if (a === '--cpu-prof') {
      args.cpuProf = path.resolve(argv[++i] ?? 'prof');
      continue;
    }
    const v = Number(argv[++i]);
    if (a === '--warm' && v === 0) {
      args.warm = 0;
      continue;
    }
    if (!Number.isInteger(v) || v < 1) throw new Error(`${String(a)} needs a positive integer`);
    if (a === '--warm') args.warm = Math.min(v, MAX_SET);
    else if (a === '--names') args.names = Math.min(v, MAX_SET);
    else if (a === '--etcd-members' && (v === 1 || v === 3)) args.members = v;
    else if (a === '--concurrency') args.concurrency = v;
    else if (a === '--rounds') args.rounds = Math.min(v, 10);
    else throw new Error(`unknown argument ${String(a)}`);
  }
  return args;
}

const fmt = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toFixed(digits) : '-');

/** The etcd members' processes: those whose command line names the cluster's directory. */
function etcdPids(cluster: EtcdCluster): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.startsWith('/usr/bin/etcd') && cmd.includes(cluster.dir)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * The transactions and range reads every member of `etcd` has served so
 * far (its /metrics, grpc_server_handled_total; a follower forwards writes,
 * so a write is counted where the client sent it). Zero without etcd.
 */
async function etcdCalls(etcd: EtcdCluster | undefined): Promise<{ txn: number; range: number }> {
  const out = { txn: 0, range: 0 };
  for (const url of etcd?.endpoints ?? []) {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith('grpc_server_handled_total{')) continue;
      const n = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (line.includes('grpc_method="Txn"')) out.txn += n;
      else if (line.includes('grpc_method="Range"')) out.range += n;
    }
  }
  return out;
}

/** Which daemon became the zone's publisher: the one that logged so (bounded wait; -1 when none did). */
async function publisherOf(ds: readonly Daemon[]): Promise<number> {
  const until = performance.now() + 10_000;
  for (;;) {
    const i = ds.findIndex((d) => d.output().includes('elected publisher'));
    if (i >= 0 || performance.now() > until) return i;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Several daemons as one for runPhase: the first's port, CPU and memory summed over all. */
function together(ds: readonly Daemon[]): Daemon {
  const first = ds[0];
  return {
    ...first,
    stats: () => {
      const all = ds.map((d) => d.stats());
      return { rssKb: all.reduce((n, s) => n + s.rssKb, 0), cpuMs: all.reduce((n, s) => n + s.cpuMs, 0) };
    },
  };
}

interface Row {
  setup: string;
  phase: PhaseResult;
  etcdMsPerReq: number;
  /** Each daemon's CPU over the phase ÷ the phase's requests (all of them, at every daemon). */
  byDaemonMsPerReq: number[];
  /** Which of the daemons was the zone's publisher (-1: not known). */
  publisher: number;
  /** Transactions and range reads etcd's members served over the phase ÷ its requests. */
  etcdTxnPerReq: number;
  etcdRangePerReq: number;
  /** A warm-up phase. */
  cold: boolean;
  /** Which refresh round (0-based; -1: claims). */
  round: number;
}

/** One set-up, its daemons started, its names signed. */
interface Prepared {
  readonly label: string;
  readonly ds: readonly Daemon[];
  readonly publisher: number;
  readonly etcd: EtcdCluster | undefined;
  readonly set: NameSet;
  readonly warm: NameSet | undefined;
}

/** Runs one phase against a set-up and records it in `rows`; false on errors. */
async function measurePhase(p: Prepared, named: NamedLab, label: string, reqs: readonly Request[], args: Args, rows: Row[], cold: boolean, round: number): Promise<boolean> {
  const pids = p.etcd === undefined ? [] : etcdPids(p.etcd);
  const before = pids.reduce((n, pid) => n + procStats(pid).cpuMs, 0);
  const callsBefore = await etcdCalls(p.etcd);
  const daemonsBefore = p.ds.map((d) => d.stats().cpuMs);
  const phase = await runPhase(`${p.label} ${label}${cold ? ', cold' : ''}`, 'per-host', together(p.ds), named.pid, reqs, args.concurrency);
  const byDaemonMsPerReq = p.ds.map((d, i) => (d.stats().cpuMs - daemonsBefore[i]) / reqs.length);
  const after = pids.reduce((n, pid) => n + procStats(pid).cpuMs, 0);
  const calls = await etcdCalls(p.etcd);
  rows.push({
    setup: p.label,
    phase,
    etcdMsPerReq: pids.length === 0 ? 0 : (after - before) / reqs.length,
    byDaemonMsPerReq,
    publisher: p.publisher,
    etcdTxnPerReq: (calls.txn - callsBefore.txn) / reqs.length,
    etcdRangePerReq: (calls.range - callsBefore.range) / reqs.length,
    cold,
    round,
  });
  if (phase.errors > 0) console.error(`${phase.label}: ${phase.errors} errors, first: ${phase.firstError ?? '?'}`);
  return phase.errors === 0;
}

/** The claims of `set`, and its refreshes of round `round`, as requests to the set-up's daemons. */
function requests(p: Prepared, set: NameSet, args: Args): { claims: Request[]; refreshes: (round: number) => Request[] } {
  const target = (i: number): number => p.ds[i % p.ds.length].port;
  return {
    claims: set.claims.map((framed, i) => ({ framed, source: addressOf(set.block, i), port: target(i) })),
    // A host refreshes where it registered (nsregc stays with a server that answers); --cross sends each refresh to the next daemon.
    refreshes: (round) => set.refreshes[round].map((framed, i) => ({ framed, source: addressOf(set.block, i), port: target(args.cross ? i + 1 : i) })),
  };
}

/** The median of `xs` (NaN when empty). */
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const args = parseArgs(process.argv.slice(2));
  const load = (): string => loadavg().map((v) => v.toFixed(2)).join(' ');
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}; load average at start: ${load()}`);
  const tsig: TsigKeySpec = { name: 'nsregd-bench.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
  const named = await startNamed({ tsigKeys: [tsig], zones: [{ name: ZONE, allowUpdateKey: tsig.name, records: [] }], startTimeoutMs: 60_000 });
  const etcd = await startEtcdCluster({ members: args.members });
  console.log(`etcd: ${args.members} member(s) on this machine; warm-up: ${args.warm} names per daemon, not counted; ${args.rounds} refresh rounds`);
  const rows: Row[] = [];
  let failed = false;
  const setups: Array<{ label: string; daemons: number; store?: Record<string, unknown> }> = [
    { label: 'files, 1 daemon', daemons: 1 },
    { label: 'etcd, 1 daemon', daemons: 1, store: { type: 'etcd', endpoints: etcd.endpoints, prefix: '/bench1' } },
    { label: 'etcd, 3 daemons', daemons: 3, store: { type: 'etcd', endpoints: etcd.endpoints, prefix: '/bench3' } },
    ...(args.files3 ? [{ label: 'files, 3 daemons', daemons: 3 }] : []),
  ];
  const prepared: Prepared[] = [];
  try {
    // Every set-up runs from the start to the end, so that their refresh rounds can take turns (below).
    let block = 1;
    for (const s of setups) {
      const set = await presign(SCRIPT, ZONE, `s${block}-`, block, args.names, args.rounds);
      // Its own names and sources (127.<block + 100>.x.y).
      const warm = args.warm === 0 ? undefined : await presign(SCRIPT, ZONE, `w${block}-`, block + 100, Math.min(args.warm * s.daemons, MAX_SET), 1);
      block++;
      const ds: Daemon[] = [];
      prepared.push({ label: s.label, ds, publisher: -1, etcd: s.store === undefined ? undefined : etcd, set, warm });
      for (let i = 0; i < s.daemons; i++) {
        ds.push(
          await startDaemon({
            zone: ZONE,
            namedPort: named.port,
            tsig,
            preload: 0,
            nodeOptions: args.nodeOptions,
            ...(s.store === undefined ? {} : { store: s.store }),
            ...(args.cpuProf === undefined ? {} : { cpuProfDir: path.join(args.cpuProf, `${s.label.replace(/[^a-z0-9]+/g, '-')}-${i}`) }),
          }),
        );
      }
      if (s.store !== undefined) prepared[prepared.length - 1] = { ...prepared[prepared.length - 1], publisher: await publisherOf(ds) };
    }
    for (const p of prepared) {
      if (p.warm !== undefined) {
        const w = requests(p, p.warm, args);
        if (!(await measurePhase(p, named, 'claim', w.claims, args, rows, true, -1))) failed = true;
        if (!(await measurePhase(p, named, 'refresh', w.refreshes(0), args, rows, true, 0))) failed = true;
      }
      if (!(await measurePhase(p, named, 'claim', requests(p, p.set, args).claims, args, rows, false, -1))) failed = true;
    }
    // The set-ups take turns, round after round: each round's ratios compare refreshes measured
    // within seconds of each other, whatever the machine's speed does over the minutes of a run.
    for (let round = 0; round < args.rounds; round++) {
      for (const p of prepared) {
        const label = args.rounds === 1 ? 'refresh' : `refresh ${round + 1}`;
        if (!(await measurePhase(p, named, label, requests(p, p.set, args).refreshes(round), args, rows, false, round))) failed = true;
      }
    }
  } finally {
    for (const p of prepared) {
      for (const d of p.ds) {
        await d.stop().catch((err: unknown) => {
          failed = true;
          console.error(`${p.label}: ${String(err).slice(0, 2000)}`);
        });
      }
    }
    await etcd.close();
    await named.stop();
  }
  console.log('');
  console.log('setup              phase          conc  requests  errors    req/s   p50 ms   p99 ms   daemons CPU ms/req  etcd CPU ms/req  named ms/req');
  for (const { setup, phase: p, etcdMsPerReq } of rows) {
    const phase = p.label.slice(setup.length + 1);
    console.log(
      `${setup.padEnd(18)} ${phase.padEnd(13)} ${String(p.concurrency).padStart(5)} ${String(p.requests).padStart(9)} ${String(p.errors).padStart(7)} ${fmt(p.rate).padStart(8)} ${fmt(p.p50ms, 2).padStart(8)} ${fmt(p.p99ms, 2).padStart(8)} ${fmt(p.cpuMsPerReq, 3).padStart(19)} ${fmt(etcdMsPerReq, 3).padStart(16)} ${fmt(p.namedMsPerReq, 3).padStart(13)}`,
    );
  }
  console.log('');
  console.log('per request of the phase: etcd transactions and range reads served; CPU of each daemon, ms (* the zone\'s publisher)');
  for (const r of rows.filter((x) => x.setup.startsWith('etcd'))) {
    const each = r.byDaemonMsPerReq.map((ms, i) => `${fmt(ms, 3)}${i === r.publisher ? '*' : ''}`).join('  ');
    console.log(`  ${r.phase.label.padEnd(32)} txn ${fmt(r.etcdTxnPerReq, 3).padStart(6)}  range ${fmt(r.etcdRangePerReq, 3).padStart(6)}   ${each}`);
  }
  const find = (setup: string, cold: boolean, round: number): Row | undefined => rows.find((r) => r.setup === setup && r.cold === cold && r.round === round);
  const refreshRate = (setup: string, round: number): number => find(setup, false, round)?.phase.rate ?? NaN;
  const claimRate = (setup: string): number => find(setup, false, -1)?.phase.rate ?? NaN;
  const others = ['etcd, 1 daemon', 'etcd, 3 daemons', ...(args.files3 ? ['files, 3 daemons'] : [])];
  const roundsOf = Array.from({ length: args.rounds }, (_, k) => k);
  console.log('');
  for (const s of others) {
    const shares = roundsOf.map((k) => refreshRate(s, k) / refreshRate('files, 1 daemon', k));
    const share = median(shares);
    const rates = roundsOf.map((k) => `${fmt(refreshRate(s, k))}/${fmt(refreshRate('files, 1 daemon', k))}`).join(', ');
    console.log(
      `${s}: refreshes/s ÷ the files store's, round by round: ${shares.map((x) => fmt(x, 2)).join(', ')} (${rates}); median ${fmt(share, 2)} (target ≥ 0.50) — ${share >= 0.5 ? 'met' : 'NOT met'}; claims/s ${fmt(claimRate(s))} (files ${fmt(claimRate('files, 1 daemon'))})`,
    );
  }
  if (args.warm > 0) {
    const coldFiles = find('files, 1 daemon', true, 0)?.phase.rate ?? NaN;
    console.log(`cold (the warm-up, daemons fresh from their start): ${others.map((s) => `${s} ${fmt((find(s, true, 0)?.phase.rate ?? NaN) / coldFiles, 2)}`).join(', ')} of the files store's ${fmt(coldFiles)} refreshes/s`);
  }
  console.log(`load average at end: ${load()}; total run time ${fmt((performance.now() - t0) / 1000, 1)} s`);
  return failed ? 1 : 0;
}

if (process.argv[2] === '--sign-job') await signChild(process.argv[3] ?? '{}');
else process.exitCode = await main();
