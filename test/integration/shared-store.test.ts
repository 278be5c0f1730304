/**
 * Three real nsregd on one etcd store (a three-member cluster) with one
 * real named upstream (README, "Several daemons as one service"): claims
 * spread over the daemons are published once and honoured by every daemon
 * (another key is refused everywhere, a refresh at any daemon is
 * accepted), and of two conflicting claims of one name at two daemons at
 * the same moment exactly one wins, at named too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Algorithm, Rcode } from '../../src/dns/constants.js';
import { makeClient } from '../helpers/sig0-client.js';
import { claimOf, mapLimit, outcome, reasons, SITE_ZONE, startSharedSite, type SharedSite } from '../helpers/shared-site.js';

const WRONG_KEY = 'Invalid key for name';

describe('several nsregd on one etcd store, one named', () => {
  let site: SharedSite;
  /** What named must serve: `name address`. */
  const expected: string[] = [];

  before(async () => {
    site = await startSharedSite({ name: 'spread' });
  });

  after(async () => {
    await site?.close();
  });

  it('claims spread over the daemons: published, refused to other keys at every daemon, refreshed at any', async () => {
    const hosts = Array.from({ length: 30 }, (_, i) => ({ c: makeClient(`spread${i}`, SITE_ZONE, Algorithm.ECDSAP256SHA256), address: `192.0.2.${i + 1}` }));
    await mapLimit(hosts, 3, async ({ c, address }, i) => {
      const home = site.daemons[i % 3];
      const r = await home.send(claimOf(c, address));
      assert.equal(r.rcode, Rcode.NOERROR, `claim of ${c.name}: ${outcome(r)}`);
      expected.push(`${c.name} ${address}`);
      // At once, at every daemon (the one that took the claim too): another key is refused.
      const thief = makeClient(`spread${i}`, SITE_ZONE, Algorithm.ECDSAP256SHA256);
      for (const d of site.daemons) {
        const t = await d.send(claimOf(thief, '192.0.2.250'));
        assert.equal(t.rcode, Rcode.REFUSED, `theft of ${c.name} at :${d.port}: ${outcome(t)}`);
        assert.deepEqual(reasons(t), [WRONG_KEY], `theft of ${c.name} at :${d.port}`);
      }
    });
    expected.sort();
    assert.deepEqual(await site.namedRecords(), expected);
    // A refresh at a daemon other than the one that took the claim.
    await mapLimit(hosts, 3, async ({ c, address }, i) => {
      const other = site.daemons[(i + 1) % 3];
      const r = await other.send(claimOf(c, address));
      assert.equal(r.rcode, Rcode.NOERROR, `refresh of ${c.name} at another daemon: ${outcome(r)}`);
    });
    assert.deepEqual(await site.namedRecords(), expected);
    assert.deepEqual(await site.storeRecords(), expected);
    assert.deepEqual(await site.storeClaims(), hosts.map(({ c }) => c.name).sort());
  });

  it('of two conflicting claims of each of 100 names at two daemons at once, exactly one wins, at named too', async () => {
    const [x, y] = site.daemons;
    const names = Array.from({ length: 100 }, (_, i) => i);
    const results = await mapLimit(names, 8, async (i) => {
      const one = makeClient(`race${i}`, SITE_ZONE, Algorithm.ECDSAP256SHA256);
      const two = makeClient(`race${i}`, SITE_ZONE, Algorithm.ECDSAP256SHA256);
      const ones = `10.1.${i >> 8}.${i & 255}`;
      const twos = `10.2.${i >> 8}.${i & 255}`;
      const [r1, r2] = await Promise.all([x.send(claimOf(one, ones)), y.send(claimOf(two, twos))]);
      return { name: one.name, r1, r2, ones, twos };
    });
    const refusedWhy = new Map<string, number>();
    for (const { name, r1, r2, ones, twos } of results) {
      const codes = [r1.rcode, r2.rcode].sort();
      assert.deepEqual(codes, [Rcode.NOERROR, Rcode.REFUSED], `${name}: ${outcome(r1)} / ${outcome(r2)}`);
      const loser = r1.rcode === Rcode.REFUSED ? r1 : r2;
      const why = reasons(loser).join('; ');
      refusedWhy.set(why, (refusedWhy.get(why) ?? 0) + 1);
      expected.push(`${name} ${r1.rcode === Rcode.NOERROR ? ones : twos}`);
    }
    expected.sort();
    assert.deepEqual([...refusedWhy.keys()], [WRONG_KEY], `the losers' reasons: ${JSON.stringify([...refusedWhy])}`);
    assert.deepEqual(await site.namedRecords(), expected);
    assert.deepEqual(await site.storeRecords(), expected);
    assert.equal((await site.storeClaims()).length, 130);
  });
});
