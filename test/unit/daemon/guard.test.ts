import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { RequestGuard, replayKey, sourceKey, type CheckSlot } from '../../../src/daemon/guard.js';
import { RRClass, Rcode } from '../../../src/dns/constants.js';
import { handlerLab, LAB_ZONE } from '../../helpers/handler-lab.js';
import { a, makeClient, signedUpdate } from '../../helpers/sig0-client.js';

describe('request guard', () => {
  it('limits each source to its bucket, refilled at the rate; other sources are unaffected', () => {
    const g = new RequestGuard({ perSourceRate: 10, perSourceBurst: 3, maxInFlight: 100 });
    const take = (src: string, t: number): boolean => g.withinRate(src, t);
    assert.deepEqual([1, 2, 3, 4].map(() => take('198.51.100.1', 0)), [true, true, true, false]);
    assert.equal(take('198.51.100.2', 0), true);
    assert.equal(take('198.51.100.1', 100), true, '100 ms at 10/s gives one token');
    assert.equal(take('198.51.100.1', 100), false);
  });

  it('treats an IPv6 /64 as one source', () => {
    assert.equal(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:2:ffff::9'));
    assert.notEqual(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'));
    assert.equal(sourceKey('192.0.2.1'), '192.0.2.1');
  });

  it('caps checks in flight; a release frees a slot', async () => {
    const g = new RequestGuard({ perSourceRate: 0, maxInFlight: 2 });
    const a1 = await g.acquire('192.0.2.1', 0);
    const a2 = await g.acquire('192.0.2.2', 0);
    assert.ok(a1 && a2);
    let third: CheckSlot | null | undefined;
    const pending = g.acquire('192.0.2.3', 0).then((s) => (third = s));
    await Promise.resolve();
    assert.equal(third, undefined, 'the third check waits for a slot');
    assert.equal(g.checksWaiting, 1);
    a1.release();
    a1.release();
    await pending;
    assert.ok(third);
    assert.equal(g.checksInFlight, 2);
    assert.equal(g.checksWaiting, 0);
  });

  it('answers busy (null) once a source, or everybody, has too many checks waiting', async () => {
    const g = new RequestGuard({ perSourceRate: 0, maxInFlight: 1, maxPerSource: 2, maxQueued: 3 });
    const held = await g.acquire('192.0.2.1', 0);
    assert.ok(held);
    // Each waiting check releases its slot once granted.
    const granted = (src: string): Promise<boolean> =>
      g.acquire(src, 0).then((s) => {
        s?.release();
        return s !== null;
      });
    const waits = [granted('192.0.2.9'), granted('192.0.2.9')];
    assert.equal(await g.acquire('192.0.2.9', 0), null, 'a third check of one source');
    waits.push(granted('192.0.2.8'));
    assert.equal(await g.acquire('192.0.2.7', 0), null, 'queue full for everybody');
    held.release();
    assert.deepEqual(await Promise.all(waits), [true, true, true]);
    assert.equal(g.checksInFlight, 0);
  });

  it('hands freed slots to the sources with the fewest recent checks first: a flood cannot crowd out a rare client', async () => {
    const g = new RequestGuard({ perSourceRate: 0, maxInFlight: 1, maxPerSource: 100, maxQueued: 1000 });
    const use = async (src: string, times: number): Promise<void> => {
      for (let i = 0; i < times; i++) (await g.acquire(src, 0))?.release();
    };
    await use('198.51.100.1', 5);
    await use('198.51.100.2', 2);
    const held = await g.acquire('198.51.100.1', 0);
    assert.ok(held);
    const order: string[] = [];
    const all: Array<Promise<void>> = [];
    const queue = (src: string): void => {
      all.push(
        g.acquire(src, 0).then((s) => {
          order.push(src);
          s?.release();
        }),
      );
    };
    for (let i = 0; i < 3; i++) queue('198.51.100.1');
    for (let i = 0; i < 3; i++) queue('198.51.100.2');
    queue('192.0.2.5');
    held.release();
    await Promise.all(all);
    assert.deepEqual(order, ['192.0.2.5', '198.51.100.2', '198.51.100.2', '198.51.100.2', '198.51.100.1', '198.51.100.1', '198.51.100.1']);
  });

  it('lets a source\'s recent checks count for less as time passes (half-life)', async () => {
    const g = new RequestGuard({ perSourceRate: 0, maxInFlight: 1, usageHalfLifeMs: 1000 });
    for (let i = 0; i < 8; i++) (await g.acquire('198.51.100.1', 0))?.release();
    for (let i = 0; i < 3; i++) (await g.acquire('198.51.100.2', 2500))?.release();
    // At 5 s: source 1 has 8 / 32 = 0.25 recent checks, source 2 has 3 / 2^2.5 ≈ 0.53.
    const held = await g.acquire('192.0.2.9', 5000);
    assert.ok(held);
    const order: string[] = [];
    const waits = ['198.51.100.2', '198.51.100.1'].map((src) => g.acquire(src, 5000).then((s) => (order.push(src), s?.release())));
    held.release();
    await Promise.all(waits);
    assert.deepEqual(order, ['198.51.100.1', '198.51.100.2']);
  });

  it('remembers accepted requests until they expire, within a bounded capacity', async () => {
    const g = new RequestGuard({ replayCapacity: 3 });
    const key = (n: number): string => `k${n}`;
    await g.remember(key(1), 1000, 0);
    assert.ok(g.isReplay(key(1), 999));
    assert.ok(!g.isReplay(key(1), 1000), 'forgotten once expired');
    for (let i = 0; i < 10; i++) await g.remember(key(i), 5000 + i, 0);
    assert.equal(g.remembered, 3);
    assert.ok(g.isReplay(key(9), 0));
  });

  it('keys the replay cache on the signed data, not the signature', () => {
    assert.equal(replayKey(Buffer.from('signed')), replayKey(Buffer.from('signed')));
    assert.notEqual(replayKey(Buffer.from('signed')), replayKey(Buffer.from('signed!')));
  });
});

describe('guard in the handler', () => {
  it('a replayed accepted update is refused; a re-signed one is fine', async () => {
    const lab = handlerLab();
    lab.ctx.guard = new RequestGuard();
    const c = makeClient('host1', LAB_ZONE);
    const msg = signedUpdate(c, [a(c.name, '192.0.2.1')], { now: lab.now });
    assert.equal((await lab.send(msg)).rcode, Rcode.NOERROR);
    // The owner removes the record; a replay of the old add must not bring it back.
    assert.equal((await lab.send(signedUpdate(c, [a(c.name, '192.0.2.1', 0, RRClass.NONE)], { now: lab.now, id: 2 }))).rcode, Rcode.NOERROR);
    const replay = await lab.send(msg);
    assert.equal(replay.rcode, Rcode.REFUSED);
    assert.deepEqual(replay.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data) || []), ['Replayed request']);
    assert.equal(lab.cache.size, 0);
    assert.equal((await lab.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: lab.now, id: 3 }))).rcode, Rcode.NOERROR);
  });

  it('a failed request may be retried with the same bytes (only accepted ones are remembered)', async () => {
    const lab = handlerLab();
    lab.ctx.guard = new RequestGuard();
    (lab.upstreams[0] as { fail: boolean }).fail = true;
    const c = makeClient('host1', LAB_ZONE);
    const msg = signedUpdate(c, [a(c.name, '192.0.2.1')], { now: lab.now });
    assert.equal((await lab.send(msg)).rcode, Rcode.SERVFAIL);
    (lab.upstreams[0] as { fail: boolean }).fail = false;
    assert.equal((await lab.send(msg)).rcode, Rcode.NOERROR);
  });

  it('a flooding source gets SERVFAIL (back off) once over its rate; others are still served', async () => {
    const lab = handlerLab();
    lab.ctx.guard = new RequestGuard({ perSourceRate: 5, perSourceBurst: 5 });
    const attacker = makeClient('victim', LAB_ZONE);
    const rcodes: number[] = [];
    for (let i = 0; i < 20; i++) {
      const m = signedUpdate(attacker, [a(attacker.name, '192.0.2.66')], { now: lab.now, id: i });
      m[m.length - 1] ^= 1; // bogus signature
      rcodes.push((await lab.send(m, '192.0.2.66')).rcode);
    }
    assert.deepEqual(rcodes.slice(0, 5), Array(5).fill(Rcode.NOTAUTH));
    assert.deepEqual(rcodes.slice(5), Array(15).fill(Rcode.SERVFAIL));
    const good = makeClient('good', LAB_ZONE);
    assert.equal((await lab.send(signedUpdate(good, [a(good.name, '192.0.2.5')], { now: lab.now }), '192.0.2.5')).rcode, Rcode.NOERROR);
  });
});
