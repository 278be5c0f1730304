/**
 * The etcd test harness itself: a three-member cluster on loopback comes up
 * healthy, a write at one member is read at another, and with one member
 * killed the other two still serve; a killed member comes back with its
 * data.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../../helpers/etcd.js';

describe('etcd cluster harness', () => {
  let cluster: EtcdCluster;
  const clients: Etcd3[] = [];
  const client = (i: number): Etcd3 => {
    const c = new Etcd3({ hosts: cluster.endpoints[i], dialTimeout: 2000 });
    clients.push(c);
    return c;
  };

  before(async () => {
    cluster = await startEtcdCluster({ members: 3 });
  });
  after(async () => {
    for (const c of clients) c.close();
    await cluster.close();
  });

  it('starts three healthy members on distinct non-default ports', async () => {
    assert.equal(cluster.endpoints.length, 3);
    assert.equal(new Set(cluster.endpoints).size, 3);
    for (const e of cluster.endpoints) assert.doesNotMatch(e, /:(2379|2380)$/);
    for (let i = 0; i < 3; i++) assert.equal(await cluster.healthy(i), true);
    const status = await cluster.etcdctl(['endpoint', 'health']);
    assert.equal(status.code, 0, status.stderr);
  });

  it('shows a write at one member at another', async () => {
    await client(0).put('harness/k').value('v1');
    assert.equal(await client(2).get('harness/k').string(), 'v1');
  });

  it('keeps serving with one member killed, and the member comes back with its data', async () => {
    await cluster.kill(0);
    assert.equal(cluster.running(0), false);
    const c1 = client(1);
    await c1.put('harness/k').value('v2');
    assert.equal(await client(2).get('harness/k').string(), 'v2');
    await cluster.start(0);
    assert.equal(cluster.running(0), true);
    const got = await cluster.etcdctl(['get', '--print-value-only', 'harness/k'], 0);
    assert.equal(got.stdout.trim(), 'v2');
    assert.match(cluster.logTail(0), /\S/);
  });

  it('removes its directory on close', async () => {
    const single = await startEtcdCluster({ members: 1 });
    assert.ok(existsSync(single.dir));
    await single.close();
    await single.close();
    assert.equal(existsSync(single.dir), false);
  });
});
