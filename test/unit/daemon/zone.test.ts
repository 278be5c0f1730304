import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { RecordCache } from '../../../src/daemon/cache.js';
import type { Op } from '../../../src/daemon/outbox.js';
import { recordKey, type AddrRecord } from '../../../src/daemon/records.js';
import { Zone } from '../../../src/daemon/zone.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeUpstream } from '../../helpers/fake-upstream.js';
import { labZoneConfig, LAB_ZONE } from '../../helpers/handler-lab.js';
import { MemoryKeyStore } from '../../helpers/memory-keystore.js';
import { makeClient } from '../../helpers/sig0-client.js';

const rec = (label: string, address: string): AddrRecord => ({ name: `${label}.${LAB_ZONE}`, type: 'A', address, ttl: 60 });

describe('zone: restart after a crash', () => {
  it('records and pending adds of a name without a confirmed key are removed, the rest restored', async () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 22, 12));
    const keys = new MemoryKeyStore();
    const owner = makeClient('owner', LAB_ZONE);
    keys.put(owner.name, owner.rdata, clock.now() + 3600_000);
    const cache = new RecordCache();
    const up = new FakeUpstream('fake0');
    const zone = new Zone(labZoneConfig(), keys, cache, [up], pino({ level: 'silent' }), clock);

    const kept = rec('owner', '192.0.2.1');
    const orphan = rec('crashed', '192.0.2.2');
    const pendingOrphan = rec('crashed', '192.0.2.3');
    const pendingKept = rec('owner', '192.0.2.4');
    const ops: Op[] = [
      { key: recordKey(pendingOrphan), kind: 'add', seq: 1, record: pendingOrphan },
      { key: recordKey(pendingKept), kind: 'add', seq: 2, record: pendingKept },
    ];
    zone.restore(
      [
        { record: kept, expiresAt: clock.now() + 60_000 },
        { record: orphan, expiresAt: clock.now() + 60_000 },
      ],
      new Map([['fake0', ops]]),
    );
    assert.deepEqual(cache.all().map((c) => c.record), [kept], 'only the record of a confirmed key is live');
    await zone.start();
    // Shutdown drains every outbox, so everything queued above has been sent by then.
    await zone.shutdown();
    const sent = up.changes.flatMap((c) => [...c.add.map((r) => `+${r.address}`), ...c.remove.map((r) => `-${r.address}`)]);
    assert.ok(sent.includes('-192.0.2.2'), `the orphan record is removed upstream (${sent.join(' ')})`);
    assert.ok(sent.includes('-192.0.2.3'), 'the pending add of the unconfirmed claim became a removal');
    assert.ok(!sent.includes('+192.0.2.3'), 'the unconfirmed claim never published its record');
    assert.ok(sent.includes('+192.0.2.4'), "the confirmed key's pending add is still sent");
    assert.equal(zone.pendingOperations, 0);
  });
});
