import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { AddrRecord } from '../../../../src/daemon/records.js';
import { RepublishGuard } from '../../../../src/daemon/upstreams/republish.js';
import { addr, change } from '../../../helpers/records.js';

describe('RepublishGuard', () => {
  const a = addr('a.dyn.example.', '192.0.2.1');
  const b = addr('b.dyn.example.', '192.0.2.2');
  const b6 = addr('b.dyn.example.', '2001:db8::2');

  it('leaves out records whose removal was applied while the zone still lists them', () => {
    const live: AddrRecord[] = [a, b, b6];
    const g = new RepublishGuard(() => live);
    g.applied(change({ remove: [a] }));
    g.applied(change({ removeNames: [{ name: b.name, addresses: [b, b6] }] }));
    assert.deepEqual(g.stillLive(live), []);
    // Added again: published again.
    g.applied(change({ add: [a] }));
    assert.deepEqual(g.stillLive(live), [a]);
  });

  it('forgets a removal once the zone dropped the record, so a later registration is published', () => {
    const g = new RepublishGuard(() => []);
    g.applied(change({ remove: [a] }));
    assert.deepEqual(g.stillLive([]), []);
    assert.deepEqual(g.stillLive([a]), [a]);
  });

  it('runs jobs one at a time, in order, a failure not stopping the next', async () => {
    const g = new RepublishGuard(() => []);
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = g.serial(async () => {
      await gate;
      order.push('first');
      throw new Error('boom');
    });
    const second = g.serial(() => {
      order.push('second');
      return Promise.resolve(2);
    });
    release();
    await assert.rejects(first, /boom/);
    assert.equal(await second, 2);
    assert.deepEqual(order, ['first', 'second']);
  });
});
