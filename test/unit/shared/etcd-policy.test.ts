/**
 * The etcd client's fault handling: a call failing at the connection level
 * is tried again a bounded number of times (each time the pool picks
 * another endpoint), one that ran out of its deadline or failed at etcd is
 * not, and an endpoint that just failed is passed over for a while.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdError, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { pausePolicy, retryPolicy } from '../../../src/daemon/shared/etcd.js';

function failing(errors: Error[]): { fn: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    fn: async () => {
      const err = errors[calls++];
      if (err !== undefined) throw err;
      return 'ok';
    },
    calls: () => calls,
  };
}

describe('etcd fault handling', () => {
  it('retries connection-level failures up to the bound', async () => {
    const twice = failing([new GRPCUnavailableError('down'), new GRPCUnavailableError('down')]);
    assert.equal(await retryPolicy(3).execute(twice.fn), 'ok');
    assert.equal(twice.calls(), 3);
    const always = failing(Array.from({ length: 10 }, () => new GRPCUnavailableError('down')));
    await assert.rejects(retryPolicy(3).execute(always.fn), GRPCUnavailableError);
    assert.equal(always.calls(), 3);
  });

  it('does not retry a call that ran out of its deadline, or an answer from etcd', async () => {
    for (const err of [new GRPCDeadlineExceededError('late'), new EtcdError('etcdserver: permission denied')]) {
      const once = failing([err]);
      await assert.rejects(retryPolicy(3).execute(once.fn), err.constructor as new () => Error);
      assert.equal(once.calls(), 1);
    }
  });

  it('passes an endpoint over for a while after a connection-level failure only', async () => {
    const policy = pausePolicy(60_000);
    await assert.rejects(policy.execute(failing([new EtcdError('compare failed')]).fn), EtcdError);
    assert.equal(await policy.execute(failing([]).fn), 'ok', 'an answer from etcd does not pause the endpoint');
    await assert.rejects(policy.execute(failing([new GRPCUnavailableError('down')]).fn), GRPCUnavailableError);
    const next = failing([]);
    await assert.rejects(policy.execute(next.fn), /paused/);
    assert.equal(next.calls(), 0);
  });
});
