import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Outbox } from '../../../src/daemon/outbox.js';
import type { AddrRecord } from '../../../src/daemon/records.js';
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
