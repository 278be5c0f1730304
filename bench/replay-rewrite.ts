/**
 * How long one request waits for its replay-cache line while the file is
 * rewritten at full size: the cache is filled to `entries` live entries
 * (default 200,000, the guard's capacity), then lines are added one at a
 * time (each awaited, as the handler awaits its request's line) until the
 * file has doubled and one rewrite has run; prints the slowest add and the
 * ten slowest, with the rewrite's own duration.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/replay-rewrite.js [entries=200000]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { systemClock } from '../src/clock.js';
import { replayKey } from '../src/daemon/guard.js';
import { ReplayStore } from '../src/daemon/replay-store.js';

const entries = Number(process.argv[2] ?? 200_000);
const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-replay-bench-'));
try {
  const { store } = await ReplayStore.open(dir, systemClock, (err) => console.error(err), entries);
  const far = Date.now() + 3_600_000;
  for (let i = 0; i < entries; i += 1000) {
    await Promise.all(Array.from({ length: Math.min(1000, entries - i) }, (_, j) => store.add(replayKey(Buffer.from(`fill${i + j}`)), far)));
  }
  await store.idle();
  const waits: number[] = [];
  const t0 = performance.now();
  // The file holds about `entries` lines now; it is rewritten once it holds twice as many.
  for (let i = 0; i < entries + 10_000; i++) {
    const t = performance.now();
    await store.add(replayKey(Buffer.from(`one${i}`)), far);
    waits.push(performance.now() - t);
  }
  const total = performance.now() - t0;
  await store.close();
  waits.sort((a, b) => b - a);
  console.log(`${entries} live entries; ${waits.length} adds one at a time in ${(total / 1000).toFixed(1)} s (one rewrite among them)`);
  console.log(`slowest add ${waits[0].toFixed(1)} ms; ten slowest: ${waits.slice(0, 10).map((w) => w.toFixed(1)).join(', ')} ms`);
  console.log(`median add ${waits[Math.floor(waits.length / 2)].toFixed(3)} ms`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
