/**
 * The publisher of a site of three nsregd on one etcd store is killed with
 * SIGKILL (README, "Several daemons as one service": another daemon is
 * elected within about twice the lease and finishes what was pending):
 * a claim sent to a surviving daemon right after the kill is answered
 * NOERROR within 5 s and served by named; records claimed, refreshed or
 * expiring around the fail-over, and claims the killed daemon was taking
 * when it died, end up exactly right at named — nothing missing, nothing
 * left behind.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RRClass, Rcode } from '../../src/dns/constants.js';
import { eventually, letTimePass } from '../helpers/eventually.js';
import { a } from '../helpers/sig0-client.js';
import { claimOf, hosts, lines, mapLimit, outcome, startSharedSite, updateOf, type Host, type SharedSite } from '../helpers/shared-site.js';

/** A client's refresh interval in this test (its records live REFRESH_TTL s). */
const REFRESH_EVERY_MS = 1000;
const REFRESH_TTL = 4;
/** Records that expire around the fail-over. */
const SHORT_TTL = 3;

describe('kill -9 of the publisher of a site of three nsregd', () => {
  let site: SharedSite;

  before(async () => {
    site = await startSharedSite({ name: 'failover' });
  });

  after(async () => {
    await site?.close();
  });

  it('another daemon publishes within 5 s, and named ends up holding exactly the live records', async () => {
    const found = await eventually('one daemon to publish', () => site.publisher(), (v) => v !== undefined, 10_000);
    assert.ok(found !== undefined);
    const p: number = found;
    const victim = site.daemons[p];
    const survivors = site.daemons.filter((_, i) => i !== p);
    const claimAt = async (ds: typeof site.daemons, hs: readonly Host[], ttl: number): Promise<void> => {
      await mapLimit(hs, 4, async (h, i) => {
        const r = await ds[i % ds.length].send(claimOf(h.c, h.address, ttl));
        assert.equal(r.rcode, Rcode.NOERROR, `claim of ${h.c.name}: ${outcome(r)}`);
      });
    };

    // Long-lived records, claimed at every daemon (the publisher too).
    const keep = hosts('keep', 6, 1);
    await claimAt(site.daemons, keep, 300);
    // Records a client keeps refreshing, at the survivors, through the fail-over.
    const refreshed = hosts('refresh', 6, 2);
    await claimAt(site.daemons, refreshed, REFRESH_TTL);
    const refreshReplies: Array<{ name: string; reply: string }> = [];
    let refreshing = true;
    const refresher = (async () => {
      for (let round = 0; refreshing; round++) {
        await mapLimit(refreshed, 6, async (h, i) => {
          const reply = await survivors[(round + i) % survivors.length].send(claimOf(h.c, h.address, REFRESH_TTL)).then(outcome, (err: unknown) => String(err));
          refreshReplies.push({ name: h.c.name, reply });
        });
        await letTimePass(REFRESH_EVERY_MS);
      }
    })();
    try {
      await failOver();
    } finally {
      refreshing = false;
      await refresher;
    }
    for (const { name, reply } of refreshReplies) assert.equal(reply, 'NOERROR', `refresh of ${name}`);
    assert.ok(refreshReplies.length >= 12, `refreshes sent: ${refreshReplies.length}`);

    async function failOver(): Promise<void> {
      // Names whose records a client moves or removes right after the kill.
      const moved = hosts('moved', 4, 6);
      await claimAt(site.daemons, moved, 300);
      const dropped = hosts('dropped', 4, 7);
      await claimAt(site.daemons, dropped, 300);
      // Records whose deadlines pass while the publisher is being replaced.
      const expiring = hosts('short', 6, 3);
      await claimAt(site.daemons, expiring, SHORT_TTL);

      // Claims in flight at the publisher when it dies: their clients retry at the survivors (below).
      const inflight = hosts('inflight', 12, 4);
      let killed: Promise<void> | undefined;
      let killedAt = 0;
      const kill = (): Promise<void> =>
        (killed ??= (async () => {
          victim.child.kill('SIGKILL');
          await victim.exited();
          killedAt = Date.now();
        })());
      const inflightReplies = await Promise.all(
        inflight.map(async (h) => {
          try {
            const reply = await victim.send(claimOf(h.c, h.address, 300));
            void kill();
            return reply;
          } catch {
            return undefined;
          }
        }),
      );
      await kill();

      // Right after the kill, at the survivors: new claims, clients of the dead daemon retrying there, a
      // move to another address and removals, each answered NOERROR within 5 s and served so by named.
      const late = hosts('late', 6, 5);
      const unanswered = inflight.filter((_, i) => inflightReplies[i]?.rcode !== Rcode.NOERROR);
      const movedTo = (h: Host): string => h.address.replace(/^10\.6\./, '10.8.');
      const work = [
        ...late.map((h) => ({ h, what: 'claim', msg: () => claimOf(h.c, h.address, 300), served: [h.address] })),
        ...unanswered.map((h) => ({ h, what: 'retried claim', msg: () => claimOf(h.c, h.address, 300), served: [h.address] })),
        ...moved.map((h) => ({ h, what: 'move', msg: () => updateOf(h.c, [a(h.c.name, h.address, 0, RRClass.NONE), a(h.c.name, movedTo(h), 300)]), served: [movedTo(h)] })),
        ...dropped.map((h) => ({ h, what: 'removal', msg: () => updateOf(h.c, [a(h.c.name, h.address, 0, RRClass.NONE)]), served: [] as string[] })),
      ];
      // All at once (13 or so connections per survivor), so each is sent right after the kill.
      await mapLimit(work, work.length, async ({ h, what, msg, served }, i) => {
        const r = await survivors[i % survivors.length].send(msg());
        const tookMs = Date.now() - killedAt;
        assert.equal(r.rcode, Rcode.NOERROR, `${what} of ${h.c.name} after the kill: ${outcome(r)}`);
        assert.ok(tookMs < 5000, `${what} of ${h.c.name} answered ${tookMs} ms after the kill`);
        assert.deepEqual(await site.named.query(h.c.name, 'A', { tcp: true }), served, `${what} of ${h.c.name}`);
      });
      const dead = new Set([p]);
      const next = site.publisher(dead);
      assert.ok(next !== undefined, 'a surviving daemon says it publishes');

      const wanted = [
        ...lines(keep),
        ...lines(refreshed),
        ...lines(late),
        ...lines(inflight),
        ...moved.map((h) => `${h.c.name} ${movedTo(h)}`),
      ].sort();
      const converged = (v: { named: string[]; store: string[] }): boolean =>
        JSON.stringify(v.named) === JSON.stringify(wanted) && JSON.stringify(v.store) === JSON.stringify(wanted);
      const final = await eventually(
        'named and the store to hold exactly the live records',
        async () => ({ named: await site.namedRecords(), store: await site.storeRecords() }),
        converged,
        15_000,
      ).catch(async (err: unknown) => {
        throw new Error(`${String(err)}\nwanted ${JSON.stringify(wanted)}\nnamed ${JSON.stringify(await site.namedRecords())}`);
      });
      for (const h of expiring) assert.ok(!final.named.includes(h.line), `${h.line} expired but is still served`);
    }
  });
});
