/**
 * Retained memory per registered name, measured inside one process with
 * forced garbage collection (RSS deltas of a running daemon mostly show
 * garbage not yet collected): a key database of N claimed names loaded from
 * an original-format snapshot, and N installed records in the record cache
 * with their state-file bookkeeping.
 *
 * Then the shared cache of imported public keys (src/dns/key-cache.ts) filled
 * to its capacity with P-384 keys, each used for one signature check: its
 * memory is OpenSSL's, outside the JavaScript heap, so it is measured as
 * RSS growth after forced GC, and spread over the N names.
 *
 *   node --expose-gc dist/bench/memory.js [names=100000]
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RecordCache } from '../src/daemon/cache.js';
import { systemClock } from '../src/clock.js';
import { keyTag, verifyData } from '../src/dns/keys.js';
import { KeyStore } from '../src/daemon/keydb/keystore.js';
import { KEY_CACHE_CAPACITY, keyObjects } from '../src/daemon/keydb/stored-key.js';
import { formatRfc3339 } from '../src/daemon/keydb/rfc3339.js';
import { ZoneState } from '../src/daemon/zonestate.js';

const N = Number(process.argv[2] ?? 100_000);
const ZONE = 'bench.test.';
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');
const retained = (): number => {
  gc();
  gc();
  const u = process.memoryUsage();
  return u.heapUsed + u.external + u.arrayBuffers;
};

// The key cache, full (measured first, while the allocator holds no freed memory to reuse): KEY_CACHE_CAPACITY distinct P-384 keys, each imported and used once.
const rdatas = Array.from({ length: KEY_CACHE_CAPACITY }, () => {
  const der = generateKeyPairSync('ec', { namedCurve: 'P-384', publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } }).publicKey;
  // RFC 6605 §4: the KEY rdata holds x || y, the last 96 bytes of the SPKI.
  return { flags: 256, protocol: 3, algorithm: 14, publicKey: Buffer.from(der.subarray(der.length - 96)) };
});
const data = randomBytes(300);
const sig = randomBytes(96);
const rss = (): number => {
  gc();
  gc();
  return process.memoryUsage().rss;
};
const before = rss();
// As the daemon checks a signature (src/dns/keys.ts), so that the key holds what it holds there.
for (const r of rdatas) verifyData(r.algorithm, keyObjects.get(r), data, sig);
const cacheBytes = rss() - before;
const perCached = cacheBytes / keyObjects.size;

const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-mem-'));
try {
  const expiry = formatRfc3339(Date.now() + 30 * 86_400_000);
  const parts: string[] = [];
  for (let i = 0; i < N; i++) {
    const name = `host${i}.${ZONE}`;
    const publicKey = randomBytes(96);
    // The right key tag: a wrong one would make a load warning per key, kept in store.warnings.
    const tag = keyTag({ flags: 256, protocol: 3, algorithm: 14, publicKey });
    const entry = { Name: name, Flags: 256, Protocol: 3, Algorithm: 14, KeyTag: tag, PublicKey: publicKey.toString('base64'), Expiry: expiry };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
  }
  await writeFile(path.join(dir, `${ZONE}keydb`), `{${parts.join(',')}}`);
  parts.length = 0;

  const base = retained();
  const { store, warnings } = await KeyStore.open(dir, ZONE, systemClock);
  if (warnings.length > 0) throw new Error(`unexpected load warnings: ${warnings.slice(0, 3).join('; ')}`);
  const afterKeys = retained();
  const cache = new RecordCache();
  const { state } = await ZoneState.open(dir, ZONE, (err) => {
    throw err;
  });
  state.setRecordSource(
    () => cache.all(),
    () => cache.size,
  );
  const t = Date.now() + 3_600_000;
  for (let i = 0; i < N; i++) {
    const r = { name: `host${i}.${ZONE}`, type: 'A' as const, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, ttl: 3600 };
    cache.upsert(r, t);
    state.recordInstalled(r, t);
  }
  await state.idle();
  const afterRecords = retained();
  const perKey = (afterKeys - base) / store.size;
  const perRecord = (afterRecords - afterKeys) / cache.size;
  console.log(`${N} names: key ${perKey.toFixed(0)} B, record ${perRecord.toFixed(0)} B, together ${(perKey + perRecord).toFixed(0)} B per registered name (target ≤ 1024 B)`);
  console.log(`process RSS ${(process.memoryUsage().rss / 1048576).toFixed(1)} MB`);

  console.log(
    `key cache: ${keyObjects.size} keys (capacity ${KEY_CACHE_CAPACITY}) ${(cacheBytes / 1048576).toFixed(1)} MB RSS, ${perCached.toFixed(0)} B per cached key, ` +
      `${(cacheBytes / N).toFixed(0)} B per name at ${N} names → ${(perKey + perRecord + cacheBytes / N).toFixed(0)} B per registered name with the cache full (target ≤ 1024 B)`,
  );
  await state.close();
  await store.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
