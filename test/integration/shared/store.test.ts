/**
 * The etcd connection of the shared store against a real etcd on loopback:
 * it opens only when etcd answers, bounds every operation by the timeout,
 * maps every failure to StoreUnavailableError, tracks health (and notices
 * the store coming back by itself), and logs no secret.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import type { StoreConfig } from '../../../src/daemon/shared/contract.js';
import { openSharedStore } from '../../../src/daemon/shared/etcd.js';
import { StoreUnavailableError } from '../../../src/daemon/shared/errors.js';
import { LayoutError, claimKey } from '../../../src/daemon/shared/layout.js';
import { startEtcdCluster, type EtcdCluster } from '../../helpers/etcd.js';
import { eventually } from '../../helpers/eventually.js';
import { logSink } from '../../helpers/log-sink.js';
import { freePort } from '../../helpers/ports.js';

function config(endpoints: readonly string[], extra: Partial<Extract<StoreConfig, { type: 'etcd' }>> = {}): StoreConfig {
  return { type: 'etcd', endpoints, prefix: '/nsregd-test', timeoutMs: 1000, leaseMs: 1000, ...extra };
}

describe('shared store: etcd connection', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster({ members: 1 });
  });
  after(async () => {
    await cluster.close();
  });

  it('runs operations in a zone namespace under the prefix', async () => {
    const { logger } = logSink();
    const store = await openSharedStore(config(cluster.endpoints), logger);
    const raw = new Etcd3({ hosts: cluster.endpoints[0] });
    try {
      assert.equal(store.healthy, true);
      const ns = store.zoneNamespace('Example.TEST');
      await store.run('put', () => ns.put(claimKey('h.example.test.')).value('x').exec());
      assert.equal(await raw.get('/nsregd-test/v1/zones/example.test./keys/h.example.test.').string(), 'x');
      assert.equal(await store.run('get', () => ns.get(claimKey('h.example.test.')).string()), 'x');
    } finally {
      raw.close();
      await store.close();
    }
  });

  it('refuses to open when no endpoint answers, naming the endpoint', async () => {
    const { logger } = logSink();
    const dead = `http://127.0.0.1:${await freePort()}`;
    await assert.rejects(openSharedStore(config([dead]), logger), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError);
      assert.equal(err.code, 'ERR_STORE_UNAVAILABLE');
      assert.match(err.message, new RegExp(dead.replace(/[.:/]/g, '\\$&')));
      return true;
    });
  });

  it('bounds an operation by the timeout and maps failures, tracking health', async () => {
    const { logger } = logSink();
    const store = await openSharedStore(config(cluster.endpoints, { timeoutMs: 300 }), logger);
    try {
      await assert.rejects(
        store.run('slow op', () => new Promise<never>(() => undefined)),
        (err: unknown) => err instanceof StoreUnavailableError && /slow op: etcd did not answer within 300 ms/.test(err.message),
      );
      assert.equal(store.healthy, false);
      await store.run('get', () => store.zoneNamespace('example.test').get('serial').string());
      assert.equal(store.healthy, true);
      await assert.rejects(
        store.run('failing op', () => Promise.reject(new Error('boom'))),
        (err: unknown) => err instanceof StoreUnavailableError && err.message === 'failing op: boom' && err.cause instanceof Error,
      );
      assert.equal(store.healthy, false);
      await store.run('get', () => store.zoneNamespace('example.test').get('serial').string());
      // Our own errors pass through and say nothing about etcd.
      await assert.rejects(
        store.run('encode', () => Promise.resolve().then(() => claimKey('NOT canonical'))),
        LayoutError,
      );
      assert.equal(store.healthy, true);
    } finally {
      await store.close();
    }
    await assert.rejects(store.run('after close', async () => 1), StoreUnavailableError);
  });

  it('is unhealthy while etcd is down and notices by itself when it is back', async () => {
    const { logger, lines } = logSink();
    const store = await openSharedStore(config(cluster.endpoints), logger);
    try {
      await cluster.stop(0);
      await assert.rejects(
        store.run('get while down', () => store.zoneNamespace('example.test').get('serial').string()),
        StoreUnavailableError,
      );
      assert.equal(store.healthy, false);
      await cluster.start(0);
      await eventually('the store to be healthy again', () => store.healthy, (h) => h, 10_000);
      assert.ok(lines.some((l) => l.msg.includes('etcd answers again')));
    } finally {
      await store.close();
    }
  });

  it('talks TLS with a client certificate, and never logs the key', async () => {
    const secure = await startEtcdCluster({ members: 1, tls: true });
    try {
      assert.match(secure.endpoints[0], /^https:/);
      const tls = secure.tls;
      assert.ok(tls !== undefined);
      const { logger, lines } = logSink('trace');
      const store = await openSharedStore(config(secure.endpoints, { tls }), logger);
      await store.run('put', () => store.zoneNamespace('example.test').put('serial').value('1').exec());
      await store.close();
      const keyBody = tls.key.split('\n')[1];
      assert.ok(!JSON.stringify(lines).includes(keyBody));
      // Without a client certificate etcd refuses the connection.
      await assert.rejects(openSharedStore(config(secure.endpoints, { tls: { ca: tls.ca } }), logSink().logger), StoreUnavailableError);
    } finally {
      await secure.close();
    }
  });

  it('authenticates with a username and password and never logs them', async () => {
    const auth = await startEtcdCluster({ members: 1 });
    try {
      for (const args of [['user', 'add', 'root', '--new-user-password=s3cret-pw'], ['auth', 'enable']]) {
        const r = await auth.etcdctl(args);
        assert.equal(r.code, 0, r.stderr);
      }
      const { logger, lines } = logSink('trace');
      const store = await openSharedStore(config(auth.endpoints, { username: 'root', password: 's3cret-pw' }), logger);
      await store.run('put', () => store.zoneNamespace('example.test').put('serial').value('1').exec());
      await store.close();
      assert.ok(lines.length > 0);
      assert.ok(!JSON.stringify(lines).includes('s3cret-pw'));
      const wrong = logSink('trace');
      await assert.rejects(openSharedStore(config(auth.endpoints, { username: 'root', password: 'wrong' }), wrong.logger), StoreUnavailableError);
      assert.ok(!JSON.stringify(wrong.lines).includes('wrong"'));
    } finally {
      await auth.close();
    }
  });
});
