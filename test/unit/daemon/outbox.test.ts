import { strict as assert } from 'node:assert';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Journal, jsonLines, readJournal } from '../../../src/daemon/journal.js';
import { Outbox } from '../../../src/daemon/outbox.js';
import type { AddrRecord } from '../../../src/daemon/records.js';
import { ZoneState } from '../../../src/daemon/zonestate.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeUpstream } from '../../helpers/fake-upstream.js';
import { logSink } from '../../helpers/log-sink.js';

const rec = (address: string, name = 'h.z.example.'): AddrRecord => ({ name, type: 'A', address, ttl: 60 });
const add = (...r: AddrRecord[]) => ({ add: r, remove: [], removeNames: [] });
const del = (...r: AddrRecord[]) => ({ add: [], remove: r, removeNames: [] });
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));


describe('outbox', () => {
  it('applies at once when the upstream is fine', async () => {
    const up = new FakeUpstream();
    const box = new Outbox(up, new FakeClock(), pino({ level: 'silent' }));
    assert.equal(await box.submit(add(rec('192.0.2.1')), { request: true }), true);
    assert.equal(box.pendingCount, 0);
    assert.deepEqual(up.changes.map((c) => c.add.length), [1]);
  });

  it('keeps failed operations, retries with doubling back-off and jitter up to the cap, logs each state change once', async () => {
    const up = new FakeUpstream();
    up.fail = true;
    const clock = new FakeClock();
    const { logger, lines } = logSink();
    const box = new Outbox(up, clock, logger, undefined, undefined, { retryInitialMs: 1000, retryMaxMs: 8000, jitter: 0.2 });
    assert.equal(await box.submit(del(rec('192.0.2.1')), { request: false }), false);
    assert.equal(box.pendingCount, 1);
    const attemptsAt: number[] = [];
    const t0 = clock.now();
    for (let i = 0; i < 7; i++) {
      const before = up.changes.length;
      while (up.changes.length === before) {
        clock.advance(100);
        await tick();
      }
      attemptsAt.push(clock.now() - t0);
    }
    const gaps = attemptsAt.map((t, i) => t - (attemptsAt[i - 1] ?? 0));
    const expected = [1000, 2000, 4000, 8000, 8000, 8000, 8000];
    gaps.forEach((g, i) => assert.ok(Math.abs(g - (expected[i])) <= (expected[i]) * 0.2 + 100, `gap ${i}: ${g}`));
    assert.equal(lines.filter((l) => l.msg.includes('operations kept and retried')).length, 1, 'one warning per outage');
    up.fail = false;
    clock.advance(10_000);
    await tick();
    assert.equal(box.pendingCount, 0);
    assert.equal(lines.filter((l) => l.msg.includes('reachable again')).length, 1);
  });

  it('collapses operations on one record: add then remove is a remove; a name removal swallows its records', async () => {
    const up = new FakeUpstream();
    up.fail = true;
    const clock = new FakeClock();
    const box = new Outbox(up, clock, pino({ level: 'silent' }));
    await box.submit(add(rec('192.0.2.1'), rec('192.0.2.2')), { request: true });
    await box.submit(del(rec('192.0.2.1')), { request: false });
    assert.deepEqual(box.pendingOps().map((o) => [o.kind, o.record?.address]), [['add', '192.0.2.2'], ['remove', '192.0.2.1']]);
    await box.submit({ add: [], remove: [], removeNames: [{ name: 'h.z.example.', addresses: [] }] }, { request: false });
    assert.deepEqual(box.pendingOps().map((o) => o.kind), ['removeName']);
    await box.submit(add(rec('192.0.2.9')), { request: true });
    up.fail = false;
    clock.advance(60_000);
    await tick();
    const last = up.changes.at(-1);
    assert.deepEqual([last?.removeNames.length, last?.add.map((r) => r.address)], [1, ['192.0.2.9']], 'delete-name goes before the newer add');
  });

  it('operations arriving during an attempt ride together in the next one', async () => {
    const up = new FakeUpstream();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const apply = up.apply.bind(up);
    let calls = 0;
    up.apply = async (c) => {
      calls++;
      if (calls === 1) await gate;
      return apply(c);
    };
    const box = new Outbox(up, new FakeClock(), pino({ level: 'silent' }));
    const first = box.submit(add(rec('192.0.2.1')), { request: true });
    const rest = [2, 3, 4].map((i) => box.submit(add(rec(`192.0.2.${i}`)), { request: true }));
    release();
    assert.deepEqual(await Promise.all([first, ...rest]), [true, true, true, true]);
    assert.deepEqual(up.changes.map((c) => c.add.length), [1, 3]);
  });

  it('is bounded: a full outbox refuses new request adds, still takes removals, and says so once', async () => {
    const up = new FakeUpstream();
    up.fail = true;
    const { logger, lines } = logSink();
    const box = new Outbox(up, new FakeClock(), logger, undefined, undefined, { maxPending: 2 });
    await box.submit(add(rec('192.0.2.1'), rec('192.0.2.2')), { request: true });
    assert.equal(await box.submit(add(rec('192.0.2.3')), { request: true }), false);
    assert.equal(await box.submit(add(rec('192.0.2.4')), { request: true }), false);
    assert.equal(box.pendingCount, 2);
    await box.submit(del(rec('192.0.2.5')), { request: false });
    assert.equal(box.pendingCount, 3);
    assert.equal(lines.filter((l) => l.msg.includes('outbox full')).length, 1);
  });

  it('local upstreams are applied directly, never queued', async () => {
    const up = Object.assign(new FakeUpstream(), { local: true });
    up.fail = true;
    const box = new Outbox(up, new FakeClock(), pino({ level: 'silent' }));
    assert.equal(await box.submit(add(rec('192.0.2.1')), { request: true }), false);
    assert.equal(box.pendingCount, 0);
  });
});

describe('journal and zone state', () => {
  it('ignores a torn last line, refuses damage in the middle, keeps appends made during compaction', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'journal-'));
    try {
      const file = path.join(dir, 'j');
      await writeFile(file, '{"x":1}\n{"x":2}\n{"x":');
      const parse = (v: unknown): { x: number } | undefined => (typeof (v as { x?: unknown }).x === 'number' ? (v as { x: number }) : undefined);
      const r = await readJournal(file, jsonLines(parse));
      assert.deepEqual(r.entries.map((e) => e.x), [1, 2]);
      assert.equal(r.tornBytes, 5);
      const j = await Journal.open(file, r.entries.length, r.tornBytes);
      const during = j.rewrite([{ x: 10 }]);
      const appended = j.append({ x: 11 }, true);
      await Promise.all([during, appended]);
      await j.close();
      assert.deepEqual((await readJournal(file, jsonLines(parse))).entries.map((e) => e.x), [10, 11]);
      await writeFile(file, '{"x":1}\nnot json\n{"x":3}\n');
      await assert.rejects(readJournal(file, jsonLines(parse)), { code: 'ERR_JOURNAL', reason: 'damaged' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

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
      // No close(): a crash. The lazy lines were queued; give them a moment to land.
      await new Promise((r) => setTimeout(r, 50));
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
});
