/**
 * The publisher election on a real three-member etcd, three daemons (each
 * its own client): exactly one leader; a leader that dies without a word
 * (its keep-alives stop, as with kill -9) is replaced within 5 s; without
 * a quorum the leader steps down within about the lease and nobody leads;
 * with the quorum back there is exactly one leader again.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import type { Election, SharedStore, StoreConfig } from '../../../src/daemon/shared/contract.js';
import { LeaseElection, leaseTtlSeconds } from '../../../src/daemon/shared/election.js';
import { openSharedStore } from '../../../src/daemon/shared/etcd.js';
import { zoneNamespacePrefix } from '../../../src/daemon/shared/layout.js';
import { startEtcdCluster, type EtcdCluster } from '../../helpers/etcd.js';
import { eventually } from '../../helpers/eventually.js';
import { logSink } from '../../helpers/log-sink.js';

const ZONE = 'example.test.';
const PREFIX = '/election-test';
const LEASE_MS = 2000;

interface Daemon {
  readonly id: string;
  readonly store: SharedStore;
  readonly election: Election;
  readonly changes: boolean[];
}

const leaders = (daemons: readonly Daemon[]): string[] => daemons.filter((d) => d.election.isLeader).map((d) => d.id);

describe('lease TTL', () => {
  it('is whole seconds, at least one', () => {
    assert.equal(leaseTtlSeconds(1), 1);
    assert.equal(leaseTtlSeconds(1000), 1);
    assert.equal(leaseTtlSeconds(1001), 2);
    assert.equal(leaseTtlSeconds(2000), 2);
  });
});

describe('publisher election', () => {
  let cluster: EtcdCluster;
  let raw: Etcd3;
  const daemons: Daemon[] = [];

  const join = async (id: string): Promise<Daemon> => {
    const config: StoreConfig = { type: 'etcd', endpoints: cluster.endpoints, prefix: PREFIX, timeoutMs: 1000, leaseMs: LEASE_MS };
    const store = await openSharedStore(config, logSink().logger);
    const election = store.election(ZONE, id);
    const changes: boolean[] = [];
    election.onChange((leader) => changes.push(leader));
    const d = { id, store, election, changes };
    daemons.push(d);
    return d;
  };

  before(async () => {
    cluster = await startEtcdCluster({ members: 3 });
    raw = new Etcd3({ hosts: [...cluster.endpoints] });
  });
  after(async () => {
    for (const d of daemons) await d.store.close();
    raw.close();
    await cluster.close();
  });

  it('elects exactly one of three daemons, whose fence is the leader key', async () => {
    const three = [await join('d1'), await join('d2'), await join('d3')];
    const [leader] = await eventually('one leader', () => leaders(three), (l) => l.length === 1, 10_000);
    const d = three.find((x) => x.id === leader) as Daemon;
    assert.deepEqual(d.changes, [true]);
    for (const other of three) if (other !== d) assert.equal(other.election.fence(), undefined);
    const fence = d.election.fence();
    assert.ok(fence !== undefined);
    const kv = (await raw.namespace(zoneNamespacePrefix(PREFIX, ZONE)).get(fence.key).exec()).kvs[0];
    assert.equal(kv.value.toString(), leader);
    assert.equal(kv.create_revision, fence.createRevision);
    assert.notEqual(kv.lease, '0');
  });

  it('replaces a leader that dies without a word within 5 s', async () => {
    const [leader] = leaders(daemons);
    const dead = daemons.find((d) => d.id === leader) as Daemon;
    const started = Date.now();
    (dead.election as LeaseElection).abandon();
    const [next] = await eventually('another leader', () => leaders(daemons), (l) => l.length === 1 && l[0] !== leader, 5000);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.notEqual(next, leader);
    // The dead one is out of the running; a new daemon takes its place.
    daemons.splice(daemons.indexOf(dead), 1);
    await dead.store.close();
    await join('d4');
  });

  it('has no leader without a quorum, and exactly one again when it returns', async () => {
    await eventually('one leader', () => leaders(daemons), (l) => l.length === 1, 10_000);
    await Promise.all([cluster.stop(1), cluster.stop(2)]);
    const trueBefore = daemons.map((x) => x.changes.filter((c) => c).length);
    // The leader's own timer ends it: no keep-alive is answered without a quorum.
    await eventually(
      'every daemon to have stepped down',
      () => daemons.map((x) => ({ leader: x.election.isLeader, last: x.changes.at(-1) })),
      (all) => all.every((x) => !x.leader && x.last !== true),
      3 * LEASE_MS,
    );
    assert.deepEqual(daemons.map((x) => x.changes.filter((c) => c).length), trueBefore, 'nobody became leader without a quorum');
    await Promise.all([cluster.start(1), cluster.start(2)]);
    await eventually('one leader again', () => leaders(daemons), (l) => l.length === 1, 20_000);
    const fence = daemons.find((x) => x.election.isLeader)?.election.fence();
    const kv = (await raw.namespace(zoneNamespacePrefix(PREFIX, ZONE)).get('leader').exec()).kvs[0];
    assert.equal(kv.create_revision, fence?.createRevision);
  });

  it('gives leadership up at once on close', async () => {
    const [leader] = await eventually('one leader', () => leaders(daemons), (l) => l.length === 1, 10_000);
    const d = daemons.find((x) => x.id === leader) as Daemon;
    const fence = d.election.fence();
    await d.election.close();
    assert.equal(d.changes.at(-1), false);
    assert.equal(d.election.isLeader, false);
    assert.equal(d.election.fence(), undefined);
    // Revoked, not left to run out: its leader key is gone when close() returns.
    const kv = (await raw.namespace(zoneNamespacePrefix(PREFIX, ZONE)).get('leader').exec()).kvs[0] as { create_revision: string } | undefined;
    assert.notEqual(kv?.create_revision, fence?.createRevision);
    await eventually('another leader', () => leaders(daemons), (l) => l.length === 1 && l[0] !== leader, 5000);
  });
});
