/**
 * SIG(0) verification throughput: the full path through verifySig0
 * (decode + extract + checks + signature, KeyObject cached) next to a bare
 * crypto.verify over the same bytes, sync and on the thread pool.
 *
 * Usage: node dist/bench/sig0-verify.js [seconds-per-measurement] [in-flight]
 */
import * as crypto from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Algorithm, RRClass } from '../src/dns/constants.js';
import { generateKeyPair, keyTag, publicKeyToRData } from '../src/dns/keys.js';
import { decodeMessage, encodeMessage } from '../src/dns/message.js';
import { extractSig0, signSig0, verifySig0, verifySig0Async, type Sig0Key } from '../src/dns/sig0.js';
import { addRecord, buildUpdate } from '../src/dns/update.js';

const seconds = Number(process.argv[2] ?? '2');
const inFlight = Number(process.argv[3] ?? String(availableParallelism() * 4));
const ROUNDS = 3;
const NOW = Math.floor(Date.now() / 1000);
const NAME = 'bench.dynamic.example.org.';

interface Case {
  label: string;
  raw: Buffer;
  key: Sig0Key;
  hash: string;
  data: Buffer;
  signature: Buffer;
  verifyKey: crypto.VerifyKeyObjectInput;
}

function makeCase(label: string, algorithm: number, hash: string): Case {
  const pair = generateKeyPair(algorithm);
  const rdata = publicKeyToRData(pair.publicKey, algorithm, 512, 3);
  const tag = keyTag(rdata);
  // A registration as nsregc sends it: one A record, the KEY, then the SIG.
  const unsigned = encodeMessage(
    buildUpdate({
      id: 0x4242,
      zone: 'dynamic.example.org.',
      updates: [addRecord({ name: NAME, type: 'A', class: RRClass.IN, ttl: 3600, data: '192.0.2.1' })],
      additionals: [{ name: NAME, type: 'KEY', class: RRClass.IN, ttl: 2592000, data: rdata }],
    }),
  );
  const raw = signSig0(unsigned, { name: NAME, algorithm, keyTag: tag, privateKey: pair.privateKey }, { now: NOW });
  const { signedData, sig } = extractSig0(decodeMessage(raw));
  return {
    label,
    raw,
    key: { name: NAME, rdata, publicKey: pair.publicKey, keyTag: tag },
    hash,
    data: signedData,
    signature: sig.signature,
    verifyKey: { key: pair.publicKey, dsaEncoding: 'ieee-p1363' },
  };
}

const SLICE_NS = 50_000_000n;

/**
 * Runs two sync operations in alternating 50 ms slices for `seconds` in
 * total, so load from other processes and clock changes hit both alike.
 * Returns operations per second of each.
 */
function measureSyncPair(a: () => void, b: () => void): [number, number] {
  const ops = [a, b];
  const count = [0, 0];
  const time = [0n, 0n];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  for (let turn = 0; process.hrtime.bigint() < end; turn ^= 1) {
    const op = ops[turn];
    const start = process.hrtime.bigint();
    const stop = start + SLICE_NS;
    let n = 0;
    let now = start;
    while (now < stop) {
      for (let i = 0; i < 10; i++) op();
      n += 10;
      now = process.hrtime.bigint();
    }
    count[turn] += n;
    time[turn] += now - start;
  }
  return [count[0] / (Number(time[0]) / 1e9), count[1] / (Number(time[1]) / 1e9)];
}

/** Keeps `inFlight` operations outstanding until `stopAt`; resolves with [completions, elapsed ns]. */
function asyncSlice(op: () => Promise<void>, stopAt: bigint): Promise<[number, bigint]> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let done = 0;
    let outstanding = 0;
    let failed = false;
    const launch = (): void => {
      outstanding++;
      op().then(
        () => {
          outstanding--;
          done++;
          if (process.hrtime.bigint() < stopAt) launch();
          else if (outstanding === 0 && !failed) resolve([done, process.hrtime.bigint() - start]);
        },
        (err: unknown) => {
          failed = true;
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    };
    for (let i = 0; i < inFlight; i++) launch();
  });
}

/** The async counterpart of measureSyncPair: alternating slices, each with `inFlight` outstanding. */
async function measureAsyncPair(a: () => Promise<void>, b: () => Promise<void>): Promise<[number, number]> {
  const ops = [a, b];
  const count = [0, 0];
  const time = [0n, 0n];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  for (let turn = 0; process.hrtime.bigint() < end; turn ^= 1) {
    const [n, ns] = await asyncSlice(ops[turn], process.hrtime.bigint() + SLICE_NS * 2n);
    count[turn] += n;
    time[turn] += ns;
  }
  return [count[0] / (Number(time[0]) / 1e9), count[1] / (Number(time[1]) / 1e9)];
}

function rawSync(c: Case): () => void {
  return () => {
    if (!crypto.verify(c.hash, c.data, c.verifyKey, c.signature)) throw new Error('raw verify failed');
  };
}

function wrapperSync(c: Case): () => void {
  return () => {
    verifySig0(decodeMessage(c.raw), c.key, NOW);
  };
}

function rawAsync(c: Case): () => Promise<void> {
  return () =>
    new Promise<void>((resolve, reject) => {
      crypto.verify(c.hash, c.data, c.verifyKey, c.signature, (err, ok) => {
        if (err !== null || !ok) reject(err ?? new Error('raw verify failed'));
        else resolve();
      });
    });
}

function wrapperAsync(c: Case): () => Promise<void> {
  return async () => {
    await verifySig0Async(decodeMessage(c.raw), c.key, NOW);
  };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(9);
const pct = (raw: number, wrapped: number): string => `${((raw / wrapped - 1) * 100).toFixed(1).padStart(6)} %`;

async function main(): Promise<void> {
  const cases = [
    makeCase('P-256 (alg 13)', Algorithm.ECDSAP256SHA256, 'sha256'),
    makeCase('P-384 (alg 14)', Algorithm.ECDSAP384SHA384, 'sha384'),
  ];
  console.log(
    `node ${process.version}, ${availableParallelism()} CPUs, UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE'] ?? '4 (default)'}, ` +
      `${seconds} s per measurement, best of ${ROUNDS} rounds, raw and wrapper alternating in 50/100 ms slices, ${inFlight} in flight (async)`,
  );
  console.log('');
  console.log('curve            mode    raw verify/s  verifySig0/s  wrapper overhead');
  for (const c of cases) {
    // Warm-up: JIT and key caches.
    measureSyncShort(rawSync(c));
    measureSyncShort(wrapperSync(c));
    const best = { rs: 0, ws: 0, ra: 0, wa: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      const [rs, ws] = measureSyncPair(rawSync(c), wrapperSync(c));
      const [ra, wa] = await measureAsyncPair(rawAsync(c), wrapperAsync(c));
      best.rs = Math.max(best.rs, rs);
      best.ws = Math.max(best.ws, ws);
      best.ra = Math.max(best.ra, ra);
      best.wa = Math.max(best.wa, wa);
    }
    console.log(`${c.label.padEnd(16)} sync   ${fmt(best.rs)}     ${fmt(best.ws)}     ${pct(best.rs, best.ws)}`);
    console.log(`${c.label.padEnd(16)} async  ${fmt(best.ra)}     ${fmt(best.wa)}     ${pct(best.ra, best.wa)}`);
  }
}

function measureSyncShort(op: () => void): void {
  for (let i = 0; i < 200; i++) op();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
