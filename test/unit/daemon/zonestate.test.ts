import { strict as assert } from 'node:assert';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { appendFile, copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { AddrRecord } from '../../../src/daemon/records.js';
import { ZoneState } from '../../../src/daemon/zonestate.js';

const rec = (address: string, name = 'h.z.example.'): AddrRecord => ({ name, type: 'A', address, ttl: 60 });
const noErrors = (err: Error): void => assert.fail(err);

/** Runs `fn` with a fresh data directory and the path of its zone state file; removes the directory after. */
async function withStateDir(fn: (dir: string, file: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'zonestate-'));
  try {
    await fn(dir, ZoneState.fileFor(dir, 'z.example.'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('zone state', () => {
  it('restores records and unacknowledged operations; an add never installed comes back as a removal', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'zonestate-'));
    const onError = (err: Error): void => assert.fail(err);
    try {
      const { state } = await ZoneState.open(dir, 'z.example.', onError);
      const r1 = rec('192.0.2.1');
      const r2 = rec('192.0.2.2');
      state.recordInstalled(r1, 5000);
      const ops = [
        { key: 'a', kind: 'add' as const, seq: state.nextSeq(), record: r1 },
        { key: 'b', kind: 'add' as const, seq: state.nextSeq(), record: r2 },
        { key: 'c', kind: 'remove' as const, seq: state.nextSeq(), record: rec('192.0.2.3') },
      ].map((o) => ({ ...o, key: `${o.record.name} A ${o.record.address}` }));
      await state.persist('up1', ops);
      state.acked('up1', [ops[0]]);
      // No close(): a crash once the lazy lines have landed.
      await state.idle();
      const again = await ZoneState.open(dir, 'z.example.', onError);
      assert.deepEqual(again.loaded.records, [{ record: r1, expiresAt: 5000 }]);
      assert.deepEqual(
        again.loaded.ops.get('up1')?.map((o) => [o.kind, o.record?.address]),
        [['remove', '192.0.2.2'], ['remove', '192.0.2.3']],
      );
      await again.state.close();
      const text = await readFile(ZoneState.fileFor(dir, 'z.example.'), 'utf8');
      assert.equal(text.trim().split('\n').length, 3, 'compacted on open and close');
      await appendFile(ZoneState.fileFor(dir, 'z.example.'), '{"r":["x.z.example.","A","192.0.2.9",60,9');
      const torn = await ZoneState.open(dir, 'z.example.', onError);
      assert.equal(torn.loaded.warnings.length, 1);
      assert.equal(torn.loaded.records.length, 1);
      await torn.state.close();
      await state.close().catch(() => undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a deadline-only refresh waits to share a write; a new install does not wait, and takes it along', async () => {
    await withStateDir(async (dir, file) => {
      const { state } = await ZoneState.open(dir, 'z.example.', noErrors);
      const r1 = rec('192.0.2.1');
      state.recordInstalled(r1, 5000);
      await state.idle();
      const lines = async (): Promise<number> => (await readFile(file, 'utf8')).trim().split('\n').length;
      const before = await lines();
      state.recordInstalled(r1, 6000, true);
      for (let i = 0; i < 3; i++) await Promise.resolve();
      // A crash copy now: the refresh is not in it, and r1 keeps its old deadline.
      // Synchronously, so that no timer can run before the copy is taken.
      const crash = mkdtempSync(path.join(tmpdir(), 'zonestate-crash-'));
      try {
        copyFileSync(file, ZoneState.fileFor(crash, 'z.example.'));
        assert.equal((await readFile(ZoneState.fileFor(crash, 'z.example.'), 'utf8')).trim().split('\n').length, before);
        const crashed = await ZoneState.open(crash, 'z.example.', noErrors);
        assert.deepEqual(crashed.loaded.records, [{ record: r1, expiresAt: 5000 }]);
        await crashed.state.close();
      } finally {
        await rm(crash, { recursive: true, force: true });
      }
      // A new install is written in the next tick, with the waiting refresh before it.
      const r2 = rec('192.0.2.2');
      state.recordInstalled(r2, 7000);
      await state.idle();
      assert.equal(await lines(), before + 2);
      // No close() (it compacts from the zone's cache, which this test has not): the file as the lines left it.
      const again = await ZoneState.open(dir, 'z.example.', noErrors);
      assert.deepEqual(again.loaded.records, [
        { record: r1, expiresAt: 6000 },
        { record: r2, expiresAt: 7000 },
      ]);
      await again.state.close();
      await state.close().catch(() => undefined);
    });
  });

  it('loads a file written before checksums (plain JSON lines), then writes checksummed lines', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'zonestate-'));
    try {
      const file = ZoneState.fileFor(dir, 'z.example.');
      await writeFile(
        file,
        ['{"r":["h.z.example.","A","192.0.2.1",60,5000]}', '{"o":["up1",7,"remove","h.z.example. A 192.0.2.3",["h.z.example.","A","192.0.2.3",60]]}', ''].join('\n'),
      );
      const { state, loaded } = await ZoneState.open(dir, 'z.example.', (err) => assert.fail(err));
      assert.deepEqual(loaded.records, [{ record: rec('192.0.2.1'), expiresAt: 5000 }]);
      assert.deepEqual(loaded.ops.get('up1')?.map((o) => [o.kind, o.seq]), [['remove', 7]]);
      assert.equal(loaded.lastSeq, 7);
      await state.close();
      const lines = (await readFile(file, 'utf8')).trim().split('\n');
      assert.equal(lines.length, 2);
      for (const l of lines) assert.match(l, /^\{.*\}\t[0-9a-f]{8}$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a compaction interrupted by a crash (state.old left behind) loads the same state', () =>
    withStateDir(async (dir, file) => {
      const { state } = await ZoneState.open(dir, 'z.example.', noErrors);
      state.recordInstalled(rec('192.0.2.1'), 5000);
      state.recordInstalled(rec('192.0.2.2'), 6000);
      state.recordRemoved(rec('192.0.2.1'));
      await state.idle();
      // The hand-over set the file aside and the fresh file holds the state; .old was not deleted yet.
      await copyFile(file, `${file}.old`);
      await writeFile(file, '');
      const { state: again, loaded } = await ZoneState.open(dir, 'z.example.', noErrors);
      assert.deepEqual(loaded.records, [{ record: rec('192.0.2.2'), expiresAt: 6000 }]);
      await again.close();
      assert.deepEqual((await readdir(dir)).sort(), ['z.example.state']);
      await state.close().catch(() => undefined);
    }));

  it('damage before good lines does not stop the open: each damaged line is an error with its offset, the rest loads, the file is rewritten clean', () =>
    withStateDir(async (dir, file) => {
      const { state } = await ZoneState.open(dir, 'z.example.', noErrors);
      for (const [i, at] of [5000, 6000, 7000].entries()) state.recordInstalled(rec(`192.0.2.${i + 1}`), at);
      await state.idle();
      const lines = (await readFile(file, 'utf8')).split('\n');
      const offset = Buffer.byteLength(lines[0]) + 1;
      lines[1] = lines[1].replace('192.0.2.2', '192.0.2.9'); // checksum no longer matches
      await writeFile(file, lines.join('\n'));
      const { state: again, loaded } = await ZoneState.open(dir, 'z.example.', noErrors);
      assert.deepEqual(
        loaded.records.map((r) => r.record.address),
        ['192.0.2.1', '192.0.2.3'],
      );
      assert.equal(loaded.errors.length, 1);
      assert.ok(loaded.errors[0].startsWith(`${file}: byte offset ${offset} `), loaded.errors[0]);
      assert.deepEqual(loaded.warnings, []);
      await again.close();
      const reopened = await ZoneState.open(dir, 'z.example.', noErrors);
      assert.deepEqual(reopened.loaded.errors, [], 'compacted: the damaged line is gone');
      await reopened.state.close();
      await state.close().catch(() => undefined);
    }));
});
