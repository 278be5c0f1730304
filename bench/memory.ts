/**
 * Retained memory per registered name, measured inside one process with
 * forced garbage collection (RSS deltas of a running daemon mostly show
 * garbage not yet collected): a key database of N claimed names loaded from
 * an original-format snapshot, and N installed records in the record cache
 * with their state-file bookkeeping.
 *
 *   node --expose-gc dist/bench/memory.js [names=100000]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RecordCache } from '../src/daemon/cache.js';
import { systemClock } from '../src/clock.js';
import { KeyStore } from '../src/daemon/keydb/keystore.js';
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

const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-mem-'));
try {
  const expiry = formatRfc3339(Date.now() + 30 * 86_400_000);
  const parts: string[] = [];
  for (let i = 0; i < N; i++) {
    const name = `host${i}.${ZONE}`;
    const entry = { Name: name, Flags: 256, Protocol: 3, Algorithm: 14, KeyTag: 0, PublicKey: randomBytes(96).toString('base64'), Expiry: expiry };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
  }
  await writeFile(path.join(dir, `${ZONE}keydb`), `{${parts.join(',')}}`);
  parts.length = 0;

  const base = retained();
  const { store } = await KeyStore.open(dir, ZONE, systemClock);
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
  await state.close();
  await store.close();
} finally {
  await rm(dir, { recursive: true, force: true });
}
