/**
 * Group commit of request transactions (src/daemon/shared/batch.ts) on a
 * real etcd: transactions submitted together share one outer transaction,
 * yet each keeps its own compare and outcome — one name's conflict fails no
 * other name, reads back what is there, and writes nothing of its own — and
 * the zone's `serial`, written by several, is written once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Namespace } from 'etcd3';
import { TxnBatcher, type NameCompare, type NameTxn } from '../../../src/daemon/shared/batch.js';
import { openSharedStore } from '../../../src/daemon/shared/etcd.js';
import { claimKey, deadlinesKey, recordsOfNamePrefix, SERIAL_KEY } from '../../../src/daemon/shared/layout.js';
import { startEtcdCluster, type EtcdCluster } from '../../helpers/etcd.js';

const ZONE = 'batch.example.';
const logger = pino({ level: 'silent' });

function txn(name: string, compare: NameCompare | readonly NameCompare[], value: string): NameTxn {
  return {
    compares: Array.isArray(compare) ? compare : [compare as NameCompare],
    puts: [
      [claimKey(name), value],
      [`${recordsOfNamePrefix(name)}A/192.0.2.1`, value],
      [SERIAL_KEY, '1700000000'],
    ],
    deletes: [],
    readBack: { keys: [claimKey(name), deadlinesKey(name)], prefix: recordsOfNamePrefix(name) },
  };
}

describe('shared store: request transactions in batches', () => {
  let cluster: EtcdCluster;
  before(async () => {
    cluster = await startEtcdCluster({ members: 1 });
  });
  after(async () => {
    await cluster.close();
  });

  /** Runs `test` with the zone's namespace under `prefix` and a batcher on it; the store is closed after. */
  async function withBatcher(prefix: string, timeoutMs: number, test: (ns: Namespace, batcher: TxnBatcher) => Promise<void>): Promise<void> {
    const store = await openSharedStore({ type: 'etcd', endpoints: cluster.endpoints, prefix, timeoutMs, leaseMs: 1000 }, logger);
    try {
      const ns = store.zoneNamespace(ZONE);
      await test(ns, new TxnBatcher(ns, (what, op) => store.run(what, op)));
    } finally {
      await store.close();
    }
  }

  it('each name keeps its own compare and outcome; serial is written once', async () => {
    await withBatcher('/batch-test', 2000, async (ns, batcher) => {
      // taken.batch.example. exists already: a create-only-if-absent of it must fail, and only it.
      const taken = `taken.${ZONE}`;
      await ns.put(claimKey(taken)).value('theirs').exec();
      const names = [`a.${ZONE}`, taken, `b.${ZONE}`];
      const results = await Promise.all(names.map((n) => batcher.submit(txn(n, { key: claimKey(n), target: 'Create', revision: '0' }, `mine:${n}`))));
      assert.deepEqual(
        results.map((r) => r.succeeded),
        [true, false, true],
      );
      // One batch: one revision for all three.
      assert.equal(new Set(results.map((r) => r.revision)).size, 1);
      // The loser read back what is there, and wrote nothing.
      assert.deepEqual(
        results[1]?.kvs.map((kv) => kv.value.toString()),
        ['theirs'],
      );
      assert.equal(await ns.get(claimKey(taken)).string(), 'theirs');
      assert.equal(await ns.get(`${recordsOfNamePrefix(taken)}A/192.0.2.1`).string(), null);
      for (const n of [`a.${ZONE}`, `b.${ZONE}`]) assert.equal(await ns.get(claimKey(n)).string(), `mine:${n}`);
      // serial: one write for the batch (etcd refuses a transaction that writes one key twice).
      const serial = (await ns.get(SERIAL_KEY).exec()).kvs[0];
      assert.equal(serial?.value.toString(), '1700000000');
      assert.equal(serial?.version, '1');
      // A later compare on the mod revision the batch gave holds; a stale one fails.
      const a = `a.${ZONE}`;
      const fresh = await batcher.submit(txn(a, { key: claimKey(a), target: 'Mod', revision: results[0]?.revision ?? '' }, 'again'));
      assert.equal(fresh.succeeded, true);
      const stale = await batcher.submit(txn(a, { key: claimKey(a), target: 'Mod', revision: results[0]?.revision ?? '' }, 'stale'));
      assert.equal(stale.succeeded, false);
      assert.equal(await ns.get(claimKey(a)).string(), 'again');
      // Several compares: all must hold. The claim's create revision holds, the deadlines' mod revision does not.
      await ns.put(deadlinesKey(a)).value('d1').exec();
      const created = results[0]?.revision ?? '';
      const both = await batcher.submit(
        txn(
          a,
          [
            { key: claimKey(a), target: 'Create', revision: created },
            { key: deadlinesKey(a), target: 'Mod', revision: '0' },
          ],
          'both',
        ),
      );
      assert.equal(both.succeeded, false);
      // What it read back: the claim, the deadlines, the name's records.
      assert.deepEqual(
        both.kvs.map((kv) => kv.value.toString()),
        ['again', 'd1', 'again'],
      );
      const mod = both.kvs[1]?.mod_revision ?? '';
      const retried = await batcher.submit(
        txn(
          a,
          [
            { key: claimKey(a), target: 'Create', revision: created },
            { key: deadlinesKey(a), target: 'Mod', revision: mod },
          ],
          'both',
        ),
      );
      assert.equal(retried.succeeded, true);
      assert.equal(await ns.get(claimKey(a)).string(), 'both');
    });
  });

  it('a batch stays under etcd\'s request size: large transactions submitted together go in several, and all are written', async () => {
    await withBatcher('/batch-bytes', 5000, async (ns, batcher) => {
      // 20 × 2 × 150 kB = 6 MB at once: four times etcd's 1.5 MiB limit, each one alone well within it.
      const big = 'x'.repeat(150_000);
      const names = Array.from({ length: 20 }, (_, i) => `big${i}.${ZONE}`);
      const results = await Promise.all(names.map((n) => batcher.submit(txn(n, { key: claimKey(n), target: 'Create', revision: '0' }, big))));
      assert.ok(results.every((r) => r.succeeded));
      assert.ok(new Set(results.map((r) => r.revision)).size > 1, 'split into several batches');
      for (const n of names) assert.equal((await ns.get(claimKey(n)).string())?.length, big.length);
    });
  });
});
