/**
 * A site of three nsregd on a three-member etcd cluster loses etcd members
 * (README, "Several daemons as one service", "No split brain"): with one
 * member stopped the service goes on at every daemon; with two stopped
 * (no quorum) every update is answered SERVFAIL "Shared store unavailable,
 * try another server" within the store timeout and no daemon changes
 * anything at named, not even records whose deadlines pass meanwhile; when
 * the members are back, claims are accepted again and everything
 * converges: what was claimed before is still served, what expired during
 * the outage is removed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Rcode } from '../../src/dns/constants.js';
import type { DecodedMessage } from '../../src/dns/message.js';
import { eventually, letTimePass } from '../helpers/eventually.js';
import { claimOf, hosts, lines, mapLimit, outcome, reasons, startSharedSite, type Host, type SharedSite } from '../helpers/shared-site.js';

const STORE_TIMEOUT_MS = 1000;
const UNAVAILABLE = 'Shared store unavailable, try another server';
/** Records whose deadlines pass during the outage. */
const SHORT_TTL = 4;

describe('a site of three nsregd losing etcd members', () => {
  let site: SharedSite;

  before(async () => {
    site = await startSharedSite({ name: 'quorum', timeout: `${STORE_TIMEOUT_MS}ms` });
  });

  after(async () => {
    await site?.close();
  });

  /** Sends `h`'s claim (or refresh) to daemon `i % 3`, `h`'s records living `ttl` s. */
  const send = (i: number, h: Host, ttl = 300): Promise<DecodedMessage> => site.daemons[i % site.daemons.length].send(claimOf(h.c, h.address, ttl));

  const claimAll = async (hs: readonly Host[], ttl = 300): Promise<void> => {
    await mapLimit(hs, 3, async (h, i) => {
      const r = await send(i, h, ttl);
      assert.equal(r.rcode, Rcode.NOERROR, `claim of ${h.c.name} at daemon ${i % 3}: ${outcome(r)}`);
    });
  };

  /** The etcd member that is the raft leader now (etcdctl endpoint status). */
  const raftLeader = async (): Promise<number | undefined> => {
    for (const i of [0, 1, 2]) {
      const r = await site.etcd.etcdctl(['endpoint', 'status', '-w', 'fields'], i);
      const field = (name: string): string | undefined => new RegExp(`^"${name}" : (\\d+)$`, 'm').exec(r.stdout)?.[1];
      if (r.code === 0 && field('MemberID') !== undefined && field('MemberID') === field('Leader')) return i;
    }
    return undefined;
  };

  const snapshot = async (): Promise<{ named: string[]; store: string[] }> => ({ named: await site.namedRecords(), store: await site.storeRecords() });

  it('one member down: service goes on; two down: SERVFAIL and nothing published; back: everything converges', async () => {
    await eventually('one daemon to publish', () => site.publisher(), (v) => v !== undefined, 10_000);
    const before = hosts('before', 6, 1);
    await claimAll(before);

    // One member of three stopped, the raft leader: every daemon still takes claims and refreshes.
    const leader = await eventually('etcd to have a leader', raftLeader, (v) => v !== undefined, 5000);
    assert.ok(leader !== undefined);
    const [second] = [0, 1, 2].filter((i) => i !== leader);
    await site.etcd.stop(leader);
    const oneDown = hosts('onedown', 6, 2);
    await claimAll(oneDown);
    await mapLimit(before, 3, async (h, i) => {
      const r = await send(i + 1, h);
      assert.equal(r.rcode, Rcode.NOERROR, `refresh of ${h.c.name} with one member down: ${outcome(r)}`);
    });
    const short = hosts('short', 3, 3);
    await claimAll(short, SHORT_TTL);
    const shortDeadline = Date.now() + SHORT_TTL * 1000;
    const up = [...lines(before), ...lines(oneDown), ...lines(short)].sort();
    await eventually('named to hold every claimed record', snapshot, (v) => JSON.stringify(v.named) === JSON.stringify(up), 5000);

    // Two stopped: no quorum.
    await site.etcd.stop(second);
    const namedBefore = await site.namedRecords();
    const serialBefore = await site.namedSerial();
    assert.deepEqual(namedBefore, up, 'the short records are still served when the quorum goes');
    const during = hosts('during', 3, 4);
    const tries = [
      ...during.map((h, i) => ({ what: `claim of ${h.c.name} at daemon ${i}`, send: () => send(i, h) })),
      ...before.slice(0, 3).map((h, i) => ({ what: `refresh of ${h.c.name} at daemon ${i}`, send: () => send(i, h) })),
    ];
    for (const t of tries) {
      const started = Date.now();
      const r = await t.send();
      const tookMs = Date.now() - started;
      assert.equal(r.rcode, Rcode.SERVFAIL, `${t.what} without quorum: ${outcome(r)}`);
      assert.deepEqual(reasons(r), [UNAVAILABLE], t.what);
      assert.ok(tookMs < STORE_TIMEOUT_MS + 1000, `${t.what} answered after ${tookMs} ms`);
    }
    // The publisher, cut off, stops within half its lease (README: before its lease can run out at etcd).
    await eventually('no daemon to publish', () => site.publishers(), (v) => v.length === 0, 2000);
    // Nothing reaches named while there is no quorum, not even the removal of records past their deadlines.
    await letTimePass(Math.max(0, shortDeadline - Date.now()) + 2000);
    assert.deepEqual(await site.namedRecords(), namedBefore, 'named changed without an etcd quorum');
    assert.equal(await site.namedSerial(), serialBefore, 'named changed without an etcd quorum');
    assert.deepEqual(site.publishers(), [], 'a daemon publishes without an etcd quorum');

    // The members come back: claims are accepted again at every daemon, and everything converges.
    await site.etcd.start(leader, { waitHealthy: false });
    await site.etcd.start(second);
    await eventually('every member healthy', async () => Promise.all([0, 1, 2].map((i) => site.etcd.healthy(i))), (v) => v.every(Boolean), 20_000);
    const back = hosts('back', 3, 5);
    await Promise.all(
      back.map((h, i) =>
        eventually(
          `claim of ${h.c.name} at daemon ${i} to be accepted after the outage`,
          () => send(i, h),
          (r) => {
            assert.ok(r.rcode === Rcode.NOERROR || (r.rcode === Rcode.SERVFAIL && reasons(r)[0] === UNAVAILABLE), `${h.c.name}: ${outcome(r)}`);
            return r.rcode === Rcode.NOERROR;
          },
          15_000,
        ),
      ),
    );
    const wanted = [...lines(before), ...lines(oneDown), ...lines(back)].sort();
    // A claim answered SERVFAIL may still have been written when the quorum came back: it is served then too.
    const converged = (v: { named: string[]; store: string[] }): boolean =>
      JSON.stringify(v.named) === JSON.stringify(v.store) && JSON.stringify(v.store.filter((l) => !lines(during).includes(l))) === JSON.stringify(wanted);
    await eventually('one daemon to publish again', () => site.publishers(), (v) => v.length === 1, 10_000);
    await eventually('named and the store to converge', snapshot, converged, 15_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\nwanted ${JSON.stringify(wanted)}\nnow ${JSON.stringify(await snapshot())}`);
    });
  });
});
