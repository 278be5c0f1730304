/**
 * Does the cost of a claim or refresh grow with the number of stored names?
 * (The original daemon rewrote the whole key database per request.)
 *
 * For each database size it writes a snapshot of N names, opens the store,
 * then times sequential claims (claim + confirm, each fsynced before it resolves),
 * concurrent claims (group commit), refreshes, and record cache upserts.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/store-scaling.js [sizes…]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RecordCache } from '../src/daemon/cache.js';
import { systemClock } from '../src/clock.js';
import { KeyStore } from '../src/daemon/keydb/keystore.js';
import { formatRfc3339 } from '../src/daemon/keydb/rfc3339.js';
import type { KeyRData } from '../src/dns/types.js';

const ZONE = 'bench.example.org.';

function fakeKey(): KeyRData {
  // The store does not import keys until they are used: random bytes will do.
  return { flags: 512, protocol: 3, algorithm: 15, publicKey: randomBytes(32) };
}

function snapshotOf(n: number): string {
  const expiry = formatRfc3339(Date.now() + 86_400_000);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `h${i}.${ZONE}`;
    const k = fakeKey();
    parts.push(
      `${JSON.stringify(name)}:${JSON.stringify({ Name: name, Flags: 512, Protocol: 3, Algorithm: 15, KeyTag: 0, PublicKey: k.publicKey.toString('base64'), Expiry: expiry })}`,
    );
  }
  return `{${parts.join(',')}}`;
}

/** A new name as a request claims it: the tentative claim, then its confirmation (two fsynced lines). */
async function claimAndConfirm(store: KeyStore, name: string): Promise<void> {
  if ((await store.claim(name, fakeKey(), Date.now() + 3_600_000)) === 'claimed') await store.confirm(name);
}

async function run(n: number): Promise<Record<string, string | number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nsregd-bench-'));
  try {
    writeFileSync(path.join(dir, `${ZONE}keydb`), snapshotOf(n));
    const t0 = performance.now();
    const { store } = await KeyStore.open(dir, ZONE, systemClock);
    const openMs = performance.now() - t0;

    const SEQ = 200;
    let t = performance.now();
    for (let i = 0; i < SEQ; i++) await claimAndConfirm(store, `seq${i}.${ZONE}`);
    const seqClaimMs = (performance.now() - t) / SEQ;

    const CONC = 1000;
    t = performance.now();
    await Promise.all(Array.from({ length: CONC }, (_, i) => claimAndConfirm(store, `conc${i}.${ZONE}`)));
    const concClaimMs = (performance.now() - t) / CONC;

    const REF = 20_000;
    t = performance.now();
    for (let i = 0; i < REF; i++) store.refresh(`h${i % Math.max(n, 1)}.${ZONE}`, Date.now() + 7_200_000 + i);
    await store.idle();
    const refreshUs = ((performance.now() - t) * 1000) / REF;

    t = performance.now();
    await store.close();
    const closeMs = performance.now() - t;

    const cache = new RecordCache();
    for (let i = 0; i < n; i++) cache.upsert({ name: `h${i}.${ZONE}`, type: 'A', address: `10.0.${(i >> 8) & 255}.${i & 255}`, ttl: 300 }, i);
    const UPS = 100_000;
    t = performance.now();
    for (let i = 0; i < UPS; i++) cache.upsert({ name: `h${i % Math.max(n, 1)}.${ZONE}`, type: 'A', address: `10.1.${(i >> 8) & 255}.${i & 255}`, ttl: 300 }, n + i);
    const upsertUs = ((performance.now() - t) * 1000) / UPS;

    return {
      names: n,
      'open ms': openMs.toFixed(1),
      'claim+confirm ms (sequential, fsync each)': seqClaimMs.toFixed(3),
      'claim+confirm ms (1000 concurrent, per claim)': concClaimMs.toFixed(4),
      'refresh µs (incl. write)': refreshUs.toFixed(2),
      'cache upsert µs': upsertUs.toFixed(2),
      'close (full snapshot) ms': closeMs.toFixed(1),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sizes = process.argv.slice(2).map(Number);
const rows: Array<Record<string, string | number>> = [];
for (const n of sizes.length > 0 ? sizes : [100, 10_000, 100_000]) rows.push(await run(n));
console.table(rows);
