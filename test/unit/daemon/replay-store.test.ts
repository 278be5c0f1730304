import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { RequestGuard, replayKey } from '../../../src/daemon/guard.js';
import { ReplayStore } from '../../../src/daemon/replay-store.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const fail = (err: unknown): void => assert.fail(String(err));
/** A replay key as the handler makes them. */
const K = (s: string): string => replayKey(Buffer.from(s));

describe('replay store', () => {
  it('keeps remembered requests across a reopen until they expire', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-replay-'));
    try {
      const clock = new FakeClock(1_000_000);
      const first = await ReplayStore.open(dir, clock, fail);
      const g = new RequestGuard();
      g.persistTo(first.store);
      await g.remember(K('a'), 1_000_000 + 60_000, clock.now());
      await g.remember(K('b'), 1_000_000 + 600_000, clock.now());
      await g.remember(K('gone'), 1_000_000, clock.now()); // already expired: not kept
      await first.store.close();

      clock.advance(120_000);
      const second = await ReplayStore.open(dir, clock, fail);
      assert.deepEqual(second.entries, [{ key: K('b'), expiresAtMs: 1_600_000 }]);
      const g2 = new RequestGuard();
      g2.loadReplays(second.entries, clock.now());
      assert.ok(g2.isReplay(K('b'), clock.now()));
      assert.ok(!g2.isReplay(K('a'), clock.now()));
      // Opening compacted the file to the live entry.
      assert.equal((await readFile(ReplayStore.fileFor(dir), 'utf8')).trim().split('\n').length, 1);
      await second.store.close();

      clock.advance(600_000);
      const third = await ReplayStore.open(dir, clock, fail);
      assert.deepEqual(third.entries, []);
      await third.store.close();
      await assert.rejects(stat(ReplayStore.fileFor(dir)), 'an empty replay file is removed on close');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('holds at most its capacity: beyond it the entry expiring first goes, in memory and in the file after a reopen', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-replay-'));
    try {
      const clock = new FakeClock(1_000_000);
      const { store } = await ReplayStore.open(dir, clock, fail, 3);
      for (const [name, ttl] of [['e', 50_000], ['a', 10_000], ['d', 40_000], ['b', 20_000], ['c', 30_000]] as const) {
        await store.add(K(name), clock.now() + ttl);
      }
      assert.equal(store.size, 3);
      await store.close();
      const again = await ReplayStore.open(dir, clock, fail, 3);
      assert.deepEqual(
        again.entries.map((e) => e.key).sort(),
        [K('c'), K('d'), K('e')].sort(),
        'the three latest-expiring kept',
      );
      await again.store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stays bounded: compacts once it holds twice what is live', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-replay-'));
    try {
      const clock = new FakeClock(0);
      const { store } = await ReplayStore.open(dir, clock, fail);
      // 30 batches of 100 (one group commit each); an entry outlives the next 999 only.
      for (let batch = 0; batch < 30; batch++) {
        await Promise.all(Array.from({ length: 100 }, (_, i) => store.add(K(`${batch}-${i}`), clock.now() + 10_000)));
        await store.idle();
        clock.advance(1000);
      }
      assert.ok(store.size <= 2048, `live entries tracked: ${store.size}`);
      const lines = (await readFile(ReplayStore.fileFor(dir), 'utf8')).trim().split('\n').length;
      assert.ok(lines <= 2048, `lines in the file: ${lines}`);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes off the event loop, in groups: an add resolves once its line is in the file, and the adds of a tick share one write', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-replay-'));
    const probe = await open(process.execPath, 'r');
    const proto = Object.getPrototypeOf(probe) as { write: (...args: unknown[]) => unknown };
    await probe.close();
    const original = proto.write;
    let writes = 0;
    proto.write = function (this: unknown, ...args: unknown[]) {
      writes++;
      return original.apply(this, args);
    };
    try {
      const clock = new FakeClock(0);
      const { store } = await ReplayStore.open(dir, clock, fail);
      writes = 0;
      const file = ReplayStore.fileFor(dir);
      const inFileWhenResolved: boolean[] = [];
      const adds = Array.from({ length: 50 }, (_, i) =>
        store.add(K(`t${i}`), 60_000).then(() => inFileWhenResolved.push(readFileSync(file, 'utf8').includes(K(`t${i}`)))),
      );
      assert.equal(readFileSync(file, 'utf8'), '', 'nothing written synchronously');
      await Promise.all(adds);
      assert.equal(writes, 1, 'one write for the tick');
      assert.deepEqual(inFileWhenResolved, Array.from({ length: 50 }, () => true));
      await store.close();
    } finally {
      proto.write = original;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the lines added while a rewrite runs (they go to the new file)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-replay-'));
    try {
      const clock = new FakeClock(0);
      const { store } = await ReplayStore.open(dir, clock, fail);
      // 1,024 lines make the next write start a rewrite; adds keep coming meanwhile.
      const first = Array.from({ length: 1024 }, (_, i) => store.add(K(`a${i}`), 60_000));
      await Promise.all(first);
      const more: Array<Promise<void>> = [];
      for (let i = 0; i < 40; i++) {
        more.push(store.add(K(`b${i}`), 60_000));
        await Promise.resolve();
      }
      await Promise.all(more);
      await store.close();
      const again = await ReplayStore.open(dir, clock, fail);
      assert.equal(again.entries.length, 1064);
      await again.store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an add resolves only once its line is in the file at its path, also while a rewrite replaces the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-replay-'));
    try {
      const clock = new FakeClock(0);
      const { store } = await ReplayStore.open(dir, clock, fail);
      const file = ReplayStore.fileFor(dir);
      const rewriting = (): boolean => (store as unknown as { rewriting?: Promise<void> }).rewriting !== undefined;
      // 1,024 lines make the next write start a rewrite.
      await Promise.all(Array.from({ length: 1024 }, (_, i) => store.add(K(`a${i}`), 60_000)));
      // One add at a time while it runs: a crash at the moment one resolves must find its line.
      const missing: number[] = [];
      let during = 0;
      for (let i = 0; i < 2_000 && (i === 0 || rewriting()); i++) {
        if (rewriting()) during++;
        await store.add(K(`b${i}`), 60_000);
        if (!readFileSync(file, 'utf8').includes(K(`b${i}`))) missing.push(i);
      }
      assert.ok(during > 0, 'adds were made while the rewrite ran');
      assert.deepEqual(missing, [], 'lines not at the file path when their add resolved');
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('ignores a torn last line (a write cut short) with a warning', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-replay-'));
    try {
      const whole = `5000 ${K('a')}\n`;
      await writeFile(ReplayStore.fileFor(dir), `${whole}6000 ${K('b').slice(0, 20)}`);
      const { store, entries, warnings } = await ReplayStore.open(dir, new FakeClock(0), fail);
      assert.deepEqual(entries, [{ key: K('a'), expiresAtMs: 5000 }]);
      assert.equal(warnings.length, 1);
      await store.close();
      assert.equal(await readFile(ReplayStore.fileFor(dir), 'utf8'), whole, 'rewritten without the torn line');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
