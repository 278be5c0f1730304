/**
 * Signature checks on libuv's thread pool (crypto.verify with a callback,
 * what the daemon does) against a pool of worker threads (the prototype in
 * load/verify-pool.ts, not used by the daemon): P-384 checks per
 * second with N in flight, and per check the CPU of the whole process and
 * of the main thread alone (/proc/self/task/<pid>/stat, 10 ms ticks).
 *
 * `keys` distinct keys, one signed message each, every key imported afresh
 * (createPublicKey from SPKI DER, outside the timed part) before each round:
 * "first use" checks each message once with its just-imported KeyObject (a
 * claim), "again" checks them all once more with the same KeyObjects (a
 * refresh whose key is in the key cache). The two variants alternate, best
 * of the rounds.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/verify-pool.js [keys=2000] [in-flight=4] [threads=cores] [rounds=3]
 */
import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { cpuUsage } from 'node:process';
import { Algorithm } from '../src/dns/constants.js';
import { generateKeyPair, signData } from '../src/dns/keys.js';
import { verifyPreparedSig0, type PreparedSig0 } from '../src/dns/sig0.js';
import { VerifyPool } from './load/verify-pool.js';

const keys = Number(process.argv[2] ?? 2000);
const inFlight = Number(process.argv[3] ?? 4);
const threads = Number(process.argv[4] ?? availableParallelism());
const rounds = Number(process.argv[5] ?? 3);
const ALG = Algorithm.ECDSAP384SHA384;

function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${process.pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) / 100) * 1000;
}

interface Figures {
  rate: number;
  cpuMs: number;
  mainMs: number;
}

/** Checks every job once, `inFlight` at a time. */
async function measure(verify: (p: PreparedSig0) => Promise<void>, jobs: readonly PreparedSig0[]): Promise<Figures> {
  let next = 0;
  const cpu0 = cpuUsage();
  const main0 = mainThreadCpuMs();
  const t0 = performance.now();
  const lane = async (): Promise<void> => {
    while (next < jobs.length) await verify(jobs[next++]);
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuUsage(cpu0);
  const n = jobs.length;
  return { rate: n / elapsed, cpuMs: (cpu.user + cpu.system) / 1000 / n, mainMs: (mainThreadCpuMs() - main0) / n };
}

const signed = Array.from({ length: keys }, () => {
  const pair = generateKeyPair(ALG);
  const data = randomBytes(300);
  return { der: pair.publicKey.export({ format: 'der', type: 'spki' }), data, signature: signData(ALG, pair.privateKey, data) };
});
const fresh = (): PreparedSig0[] =>
  signed.map((s) => ({ algorithm: ALG, publicKey: createPublicKey({ key: s.der, format: 'der', type: 'spki' }), data: s.data, signature: s.signature }));

const pool = new VerifyPool(threads);
type Variant = 'libuv' | 'pool';
const best = new Map<string, Figures>();
const keep = (label: string, f: Figures): void => {
  const b = best.get(label) ?? { rate: 0, cpuMs: Infinity, mainMs: Infinity };
  best.set(label, { rate: Math.max(b.rate, f.rate), cpuMs: Math.min(b.cpuMs, f.cpuMs), mainMs: Math.min(b.mainMs, f.mainMs) });
};
await measure(pool.verify, fresh().slice(0, 100));
for (let r = 0; r < rounds; r++) {
  for (const [name, verify] of [['libuv', verifyPreparedSig0], ['pool', pool.verify]] as Array<[Variant, (p: PreparedSig0) => Promise<void>]>) {
    const jobs = fresh();
    keep(`${name} first use`, await measure(verify, jobs));
    keep(`${name} again`, await measure(verify, jobs));
  }
}
await pool.close();
console.log(
  `node ${process.version}, ${availableParallelism()} CPUs, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, ` +
    `${keys} P-384 keys, ${inFlight} in flight, pool of ${threads} worker threads, best of ${rounds} rounds`,
);
console.log('checks on                   checks/s   process CPU ms/check   main thread CPU ms/check');
for (const [label, b] of best) {
  const name = label.startsWith('libuv') ? `libuv's pool, ${label.slice(6)}` : `workers, ${label.slice(5)}`;
  console.log(`${name.padEnd(26)} ${b.rate.toFixed(0).padStart(9)} ${b.cpuMs.toFixed(3).padStart(22)} ${b.mainMs.toFixed(3).padStart(26)}`);
}
