/**
 * nsregd under load: the shipped bin/nsregd (a child process, info-level
 * log, a configuration file written here, every setting not stated at its
 * default) in front of a real BIND `named` (TSIG, nsupdate upstream over
 * TCP), driven by pre-signed SIG(0) P-384 updates.
 *
 * Modes (load/drive.ts)
 *  - per-host (the headline): every name from its own address, a fresh TCP
 *    connection per request; needs no limit changed;
 *  - long-lived (for comparison with the earlier benchmark): connections
 *    from 127.0.0.1 with one request outstanding each; its configuration
 *    lifts the per-source limits in a `limits:` section.
 * Phases per mode, on an empty database: claims of new names at
 * concurrency 1 (--claims1, 400) and 32 (--claims, 5,000), then one refresh
 * of each of those names (same record: only the deadline changes, nothing
 * upstream) at 1 and at 32, then a second round at 32 ("refresh again").
 * Requests go name after name, so a refresh's name was last seen a whole
 * round before — as with many hosts each refreshing now and then.
 * Before those phases the daemon is warmed up: claims and one refresh of
 * --warm (1,500) other names at the concurrency, printed as the `cold`
 * rows and left out of the targets — a daemon fresh from its start is
 * still compiling its code, and one in service has run for days (0: no
 * warm-up, the phases then start on an empty database as before). With
 * the default sizes (1,500 + 400 + 5,000 names) every key fits in the
 * daemon's key cache (7,168 keys, src/daemon/keydb/stored-key.ts), as
 * without the warm-up: more names would make the measured refreshes
 * import keys again.
 * Scale (per-host): claims and one refresh each of --scale-claims (4,000)
 * names at 32 with 1,000 (--small) and with 100,000 (--big) names stored
 * before the start (key database snapshot in the original's format and
 * their records in the zone state; named holds the records), and each
 * daemon's start-up (spawn → "listening for registrations" log line) and
 * shutdown (SIGTERM → exit) time; these daemons are not warmed up (both
 * sizes start cold alike). --scale-rounds (2) rounds in the order small,
 * big, big, small, …, so that a machine that speeds up or slows down during
 * the run moves both sizes alike; the targets are judged on the means.
 * The raw async P-384 verify rate is measured in this process at the start
 * and at the end; ratios use their mean. Daemon CPU: utime + stime of all
 * its threads (/proc/<pid>/stat).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/nsregd-load.js [--quick]
 *     [--mode per-host|long-lived|both] [--concurrency N] [--claims1 N] [--claims N]
 *     [--scale-claims N] [--scale-rounds N] [--small N] [--big N] [--no-scale] [--warm N]
 *     [--cpu-prof DIR]   (node --cpu-prof on the daemons of the warm-up and the phases after it)
 *     [--uv-threadpool-size N]   (UV_THREADPOOL_SIZE of the daemons only)
 *     [--daemon-node-option OPT]...   (an option for the daemons' node, e.g. --max-semi-space-size=32)
 *     [--threads]        (also print the daemon's CPU per request by thread, utime/stime, and how busy the machine was)
 *
 * Exits non-zero on errors (a refused or unanswered request, a daemon that
 * does not start or stop cleanly), never on missed targets: those are reported.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism, cpus, loadavg } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNamed, type NamedLab, type TsigKeySpec } from '../test/helpers/named.js';
import { LIFTED_LIMITS, preloadedZoneLines, startDaemon, type Daemon, type ThreadCpu } from './load/daemon.js';
import { runPhase, type Mode, type PhaseResult, type Request } from './load/drive.js';
import { rawVerify, type RawRates } from './load/raw-verify.js';
import { addressOf, MAX_SET, presign, signChild, type NameSet } from './load/sign.js';

const ZONE = 'bench.test.';
const SCRIPT = fileURLToPath(import.meta.url);

interface Args {
  modes: Mode[];
  concurrency: number;
  claims1: number;
  claims: number;
  scaleClaims: number;
  small: number;
  big: number;
  scale: boolean;
  cpuProf: string | undefined;
  threads: boolean;
  uvThreadpoolSize: number | undefined;
  nodeOptions: string[];
  /** Names claimed and refreshed once before the measured phases (0: none). */
  warm: number;
  /** Rounds of the scale comparison, each a daemon of either size (alternately small-big and big-small). */
  scaleRounds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    modes: ['per-host', 'long-lived'],
    concurrency: 32,
    claims1: 400,
    claims: 5000,
    scaleClaims: 4000,
    small: 1000,
    big: 100_000,
    scale: true,
    cpuProf: undefined,
    threads: false,
    uvThreadpoolSize: undefined,
    nodeOptions: [],
    warm: 1500,
    scaleRounds: 2,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (min = 1): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min) throw new Error(`${a} needs a whole number ≥ ${min}`);
      return v;
    };
    if (a === '--quick') Object.assign(args, { claims1: 100, claims: 1000, scaleClaims: 1000, big: 20_000, warm: 1000 });
    else if (a === '--mode') {
      const m = argv[++i];
      if (m === 'both') args.modes = ['per-host', 'long-lived'];
      else if (m === 'per-host' || m === 'long-lived') args.modes = [m];
      else throw new Error('--mode takes per-host, long-lived or both');
    } else if (a === '--concurrency') args.concurrency = num();
    else if (a === '--claims1') args.claims1 = num();
    else if (a === '--claims') args.claims = num();
    else if (a === '--scale-claims') args.scaleClaims = num();
    else if (a === '--scale-rounds') args.scaleRounds = num();
    else if (a === '--small') args.small = num();
    else if (a === '--big') args.big = num();
    else if (a === '--no-scale') args.scale = false;
    else if (a === '--warm') args.warm = num(0);
    else if (a === '--threads') args.threads = true;
    else if (a === '--uv-threadpool-size') args.uvThreadpoolSize = num();
    else if (a === '--daemon-node-option') args.nodeOptions.push(argv[++i] ?? '');
    else if (a === '--cpu-prof') args.cpuProf = path.resolve(argv[++i] ?? 'prof');
    else throw new Error(`unknown argument ${String(a)}`);
  }
  for (const n of [args.claims1, args.claims, args.scaleClaims, args.warm]) if (n > MAX_SET) throw new Error(`name sets hold at most ${MAX_SET} names`);
  return args;
}

const fmt = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toFixed(digits) : '-');

/** A start-to-stop record of one daemon. */
interface Lifecycle {
  label: string;
  storedAtStart: number;
  startMs: number;
  rssKbAtStart: number;
  namesAtStop: number;
  stopMs: number;
}

/** Claims of every name in `set`: name i from its own address. */
function claimsOf(set: NameSet): Request[] {
  return set.claims.map((framed, i) => ({ framed, source: addressOf(set.block, i) }));
}

/** Round `k` of refreshes of `set`: every name once, in order. */
function refreshesOf(set: NameSet, k: number): Request[] {
  return set.refreshes[k].map((framed, i) => ({ framed, source: addressOf(set.block, i) }));
}

class Run {
  readonly results: PhaseResult[] = [];
  readonly lifecycles: Lifecycle[] = [];
  readonly notes: string[] = [];
  failed = false;
  private nextBlock = 1;

  constructor(
    private readonly args: Args,
    private readonly named: NamedLab,
    private readonly tsig: TsigKeySpec,
  ) {}

  private async sign(prefix: string, size: number, refreshesPerName: number): Promise<NameSet> {
    const t = performance.now();
    const set = await presign(SCRIPT, ZONE, prefix, this.nextBlock++, size, refreshesPerName);
    process.stderr.write(`  pre-signed ${size} claims + ${size * refreshesPerName} refreshes (${prefix}) in ${fmt((performance.now() - t) / 1000, 1)} s\n`);
    return set;
  }

  private async withDaemon(label: string, mode: Mode, preload: number, profile: boolean, body: (d: Daemon) => Promise<number>): Promise<void> {
    let d: Daemon;
    try {
      d = await startDaemon({
        zone: ZONE,
        namedPort: this.named.port,
        tsig: this.tsig,
        preload,
        ...(mode === 'long-lived' ? { limits: LIFTED_LIMITS } : {}),
        ...(this.args.uvThreadpoolSize === undefined ? {} : { uvThreadpoolSize: this.args.uvThreadpoolSize }),
        ...(this.args.nodeOptions.length === 0 ? {} : { nodeOptions: this.args.nodeOptions }),
        ...(profile && this.args.cpuProf !== undefined ? { cpuProfDir: this.args.cpuProf } : {}),
      });
    } catch (err) {
      this.failed = true;
      this.notes.push(`${label}: the daemon did not start: ${String(err).split('\n').slice(0, 6).join(' | ')}`);
      return;
    }
    const rssKbAtStart = d.stats().rssKb;
    let names = preload;
    try {
      names += await body(d);
    } finally {
      const stopMs = await d.stop().catch((err: unknown) => {
        this.failed = true;
        this.notes.push(`${label}: ${String(err)}`);
        return NaN;
      });
      this.lifecycles.push({ label, storedAtStart: preload, startMs: d.startMs, rssKbAtStart, namesAtStop: names, stopMs });
    }
  }

  private async phase(label: string, mode: Mode, d: Daemon, reqs: Request[], concurrency: number): Promise<void> {
    const r = await runPhase(label, mode, d, this.named.pid, reqs, concurrency);
    if (r.errors > 0) this.failed = true;
    this.results.push(r);
  }

  /** Claims and refreshes at 1 and at the concurrency, after the warm-up (which starts on an empty database). */
  async phases(mode: Mode): Promise<void> {
    const { args } = this;
    const tag = mode === 'per-host' ? 'h' : 'l';
    const warm = args.warm > 0 ? await this.sign(`${tag}w-`, args.warm, 1) : undefined;
    const s1 = await this.sign(`${tag}1-`, args.claims1, 1);
    const sN = await this.sign(`${tag}n-`, args.claims, 2);
    const label = warm === undefined ? `${mode}, empty database` : `${mode}, ${warm.size} warm-up names`;
    await this.withDaemon(label, mode, 0, true, async (d) => {
      if (warm !== undefined) {
        await this.phase('claim, cold', mode, d, claimsOf(warm), args.concurrency);
        await this.phase('refresh, cold', mode, d, refreshesOf(warm, 0), args.concurrency);
      }
      await this.phase('claim', mode, d, claimsOf(s1), 1);
      await this.phase('claim', mode, d, claimsOf(sN), args.concurrency);
      await this.phase('refresh', mode, d, refreshesOf(s1, 0), 1);
      await this.phase('refresh', mode, d, refreshesOf(sN, 0), args.concurrency);
      await this.phase('refresh again', mode, d, refreshesOf(sN, 1), args.concurrency);
      return (warm?.size ?? 0) + s1.size + sN.size;
    });
  }

  /** Claims and refreshes at the concurrency with `preload` names stored before the start (`round`: which of --scale-rounds). */
  async scale(mode: Mode, preload: number, round: number): Promise<void> {
    const { args } = this;
    const set = await this.sign(`s${preload}r${round}-`, args.scaleClaims, 1);
    await this.withDaemon(`${mode}, ${preload} names stored`, mode, preload, false, async (d) => {
      await this.phase(`claim @${preload}`, mode, d, claimsOf(set), args.concurrency);
      await this.phase(`refresh @${preload}`, mode, d, refreshesOf(set, 0), args.concurrency);
      return set.size;
    });
  }
}

function printResults(run: Run): void {
  console.log('mode        phase            conc  requests  errors    req/s   p50 ms   p99 ms   daemon CPU ms/req  named ms/req  client ms/req  RSS MB');
  for (const r of run.results) {
    console.log(
      `${r.mode.padEnd(11)} ${r.label.padEnd(16)} ${String(r.concurrency).padStart(4)} ${String(r.requests).padStart(9)} ${String(r.errors).padStart(7)} ` +
        `${fmt(r.rate).padStart(8)} ${fmt(r.p50ms, 2).padStart(8)} ${fmt(r.p99ms, 2).padStart(8)} ${fmt(r.cpuMsPerReq, 3).padStart(19)} ` +
        `${fmt(r.namedMsPerReq, 3).padStart(13)} ${fmt(r.clientMsPerReq, 3).padStart(14)} ${fmt(r.rssKbAfter / 1024, 1).padStart(7)}`,
    );
    if (r.firstError !== undefined) console.log(`    first error: ${r.firstError}`);
  }
  console.log('');
  console.log('daemon                            stored  start-up ms  RSS at start MB  names at stop  shutdown ms');
  for (const l of run.lifecycles) {
    console.log(
      `${l.label.padEnd(33)} ${String(l.storedAtStart).padStart(6)} ${fmt(l.startMs).padStart(12)} ${fmt(l.rssKbAtStart / 1024, 1).padStart(16)} ` +
        `${String(l.namesAtStop).padStart(14)} ${fmt(l.stopMs).padStart(12)}`,
    );
  }
}

/**
 * The daemon's CPU per request by thread: the main thread, then every other
 * thread that used at least 0.005 ms a request (libuv's pool, V8's helper
 * threads, worker threads), as utime+stime; and the busy share of the whole
 * machine (2 cores: 100 % means no idle time left).
 */
function printThreads(run: Run): void {
  console.log('mode        phase            conc  machine busy  main thread u+s ms/req  other threads u+s ms/req (by thread id)');
  for (const r of run.results) {
    const [main, ...rest] = r.threads;
    const us = (t: ThreadCpu): string => `${fmt(t.utimeMs, 3)}+${fmt(t.stimeMs, 3)}`;
    const others = rest.filter((t) => t.utimeMs + t.stimeMs >= 0.005).map(us);
    console.log(
      `${r.mode.padEnd(11)} ${r.label.padEnd(16)} ${String(r.concurrency).padStart(4)} ${`${fmt(r.machineBusy * 100)} %`.padStart(13)} ` +
        `${(main === undefined ? '-' : us(main)).padStart(23)}  ${others.join('  ')}`,
    );
  }
}

function printRatios(run: Run, raw: RawRates, args: Args): void {
  const verdict = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  const find = (mode: Mode, label: string, conc: number): PhaseResult | undefined =>
    run.results.find((r) => r.mode === mode && r.label === label && r.concurrency === conc);
  const c = args.concurrency;
  const cores = availableParallelism();
  /** The issue's yardstick for "one verify": the machine's core-time per verify at the raw async rate. */
  const perVerifyCores = (cores * 1000) / raw.async;
  for (const mode of args.modes) {
    const ref = find(mode, 'refresh', c);
    const claim = find(mode, 'claim', c);
    if (ref === undefined || claim === undefined) continue;
    console.log(`${mode} ×${c}: refreshes/s ÷ raw async verify/s = ${fmt(ref.rate)} / ${fmt(raw.async)} = ${fmt(ref.rate / raw.async, 3)}; claims/s ÷ raw = ${fmt(claim.rate / raw.async, 3)}`);
    console.log(
      `${' '.repeat(mode.length)} ×${c}: daemon CPU per refresh ${fmt(ref.cpuMsPerReq, 3)} ms = ${fmt(ref.cpuMsPerReq / raw.asyncCpuMs, 2)} × one verify's CPU (${fmt(raw.asyncCpuMs, 3)} ms) ` +
        `= ${fmt(ref.cpuMsPerReq / perVerifyCores, 2)} × ${cores} cores ÷ raw async rate (${fmt(perVerifyCores, 3)} ms)`,
    );
  }
  const head = find('per-host', 'refresh', c);
  const headClaim = find('per-host', 'claim', c);
  if (head !== undefined && headClaim !== undefined) {
    console.log('');
    console.log(`targets (issue 12, per-host ×${c}):`);
    console.log(`  refreshes/s ≥ 0.65 of raw async verify: ${fmt(head.rate / raw.async, 3)} — ${verdict(head.rate / raw.async >= 0.65)}`);
    const measured = head.cpuMsPerReq / raw.asyncCpuMs;
    const yardstick = head.cpuMsPerReq / perVerifyCores;
    console.log(
      `  daemon CPU per refresh ≤ 1.25 × one verify: ${fmt(measured, 2)} × its measured CPU — ${verdict(measured <= 1.25)}; ` +
        `${fmt(yardstick, 2)} × ${cores} cores ÷ raw rate — ${verdict(yardstick <= 1.25)}`,
    );
    console.log(`  claims/s ≥ 1,100: ${fmt(headClaim.rate)} — ${verdict(headClaim.rate >= 1100)}`);
    console.log(`  refresh p99 ≤ 40 ms: ${fmt(head.p99ms, 1)} — ${verdict(head.p99ms <= 40)}`);
  }
  const mode = args.modes[0];
  const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const list = (xs: readonly number[]): string => (xs.length > 1 ? ` (${xs.map((x) => fmt(x)).join(', ')})` : '');
  for (const [phase, plural] of [['claim', 'claims'], ['refresh', 'refreshes']] as const) {
    const rates = (stored: number): number[] =>
      run.results.filter((r) => r.mode === mode && r.label === `${phase} @${stored}` && r.concurrency === c).map((r) => r.rate);
    const small = rates(args.small);
    const big = rates(args.big);
    if (small.length === 0 || big.length === 0) continue;
    const change = mean(big) / mean(small) - 1;
    const pct = `${change >= 0 ? '+' : ''}${fmt(change * 100, 1)} %`;
    console.log(
      `  ${plural}/s @${args.big} at most 10 % below @${args.small}: ${fmt(mean(big))}${list(big)} vs ${fmt(mean(small))}${list(small)} (${pct}) — ${verdict(change >= -0.1)}`,
    );
  }
  const bigStarts = run.lifecycles.filter((l) => l.storedAtStart === args.big).map((l) => l.startMs);
  if (bigStarts.length > 0) {
    console.log(`  start-up with ${args.big} names ≤ 2 s: ${fmt(mean(bigStarts))} ms${list(bigStarts)} — ${verdict(mean(bigStarts) <= 2000)}`);
  }
}

async function main(): Promise<number> {
  const t0 = performance.now();
  const args = parseArgs(process.argv.slice(2));
  const load = (): string => loadavg().map((v) => v.toFixed(2)).join(' ');
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`);
  if (args.uvThreadpoolSize !== undefined) console.log(`daemons: UV_THREADPOOL_SIZE=${args.uvThreadpoolSize}`);
  if (args.nodeOptions.length > 0) console.log(`daemons: node ${args.nodeOptions.join(' ')}`);
  console.log(`load average at start: ${load()}`);
  const raw0 = await rawVerify(2);
  const tsig: TsigKeySpec = { name: 'nsregd-bench.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
  const stored = args.scale ? Math.max(args.small, args.big) : 0;
  const named = await startNamed({ tsigKeys: [tsig], zones: [{ name: ZONE, allowUpdateKey: tsig.name, records: preloadedZoneLines(stored, ZONE) }], startTimeoutMs: 60_000 });
  const run = new Run(args, named, tsig);
  try {
    for (const mode of args.modes) await run.phases(mode);
    // A B B A …: a machine that speeds up or slows down during the run moves both sizes alike.
    if (args.scale) {
      for (let round = 0; round < args.scaleRounds; round++) {
        const order = round % 2 === 0 ? [args.small, args.big] : [args.big, args.small];
        for (const preload of order) await run.scale(args.modes[0], preload, round);
      }
    }
  } catch (err) {
    console.error(err);
    run.failed = true;
  } finally {
    await named.stop();
  }
  const raw1 = await rawVerify(2);
  const raw: RawRates = { sync: (raw0.sync + raw1.sync) / 2, async: (raw0.async + raw1.async) / 2, asyncCpuMs: (raw0.asyncCpuMs + raw1.asyncCpuMs) / 2 };
  console.log('');
  for (const [when, r] of [['start', raw0], ['end', raw1]] as const) {
    console.log(`raw crypto.verify P-384 (${when}): sync 1 thread ${fmt(r.sync)}/s, async pool ${fmt(r.async)}/s at ${fmt(r.asyncCpuMs, 3)} ms CPU each`);
  }
  console.log('');
  printResults(run);
  console.log('');
  if (args.threads) {
    printThreads(run);
    console.log('');
  }
  printRatios(run, raw, args);
  for (const n of run.notes) console.log(n);
  console.log('');
  console.log(`load average at end: ${load()}; total run time ${fmt((performance.now() - t0) / 1000, 1)} s`);
  return run.failed ? 1 : 0;
}

if (process.argv[2] === '--sign-job') await signChild(process.argv[3] ?? '{}');
else process.exitCode = await main();
