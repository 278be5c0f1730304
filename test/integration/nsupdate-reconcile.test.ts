/**
 * nsupdate reconciliation against a real BIND named: a record (and its
 * PTR) deleted behind nsregd's back, as a zone restored from an old file
 * would lose it, comes back within a short reconcile-interval.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import { systemClock } from '../../src/clock.js';
import type { AddrRecord } from '../../src/daemon/records.js';
import { createNsupdateUpstream } from '../../src/daemon/upstreams/nsupdate.js';
import { eventually } from '../helpers/eventually.js';
import { logSink } from '../helpers/log-sink.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';
import { nsupdateUpstreamConfig } from '../helpers/nsupdate-upstream.js';
import { addr, change } from '../helpers/records.js';

const ZONE = 'dyn.example.';
const REV4 = '2.0.192.in-addr.arpa.';
const key: TsigKeySpec = { name: 'nsregd-key.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };

describe('nsupdate reconciliation against named', () => {
  let lab: NamedLab;

  before(async () => {
    const policy = [`grant ${key.name} zonesub ANY;`];
    lab = await startNamed({ tsigKeys: [key], zones: [{ name: ZONE, updatePolicy: policy }, { name: REV4, updatePolicy: policy }] });
  });

  after(async () => {
    await lab?.stop();
  });

  it('puts back a record and PTR deleted behind its back', async () => {
    const sink = logSink();
    const r1 = addr(`r1.${ZONE}`, '192.0.2.51');
    const r2 = addr(`r2.${ZONE}`, '192.0.2.52');
    let live: AddrRecord[] = [];
    const up = createNsupdateUpstream(nsupdateUpstreamConfig(lab, key, { reverseZones: [REV4], reconcileInterval: 1000 }), {
      zone: ZONE,
      logger: sink.logger,
      clock: systemClock,
      liveRecords: (n) => live.filter((r) => r.name === n),
      allLiveRecords: () => live,
      dataDir: '/nonexistent',
      registration: () => ({ host: '127.0.0.1', port: 8053 }),
    });
    await up.start();
    try {
      await up.apply(change({ add: [r1, r2] }));
      live = [r1, r2];
      assert.deepEqual(await lab.query(r1.name, 'A'), ['192.0.2.51']);

      for (const lines of [[`zone ${ZONE}`, `update delete ${r1.name} A`], [`zone ${REV4}`, `update delete 51.${REV4} PTR`]]) {
        const deleted = await lab.nsupdate(lines, { key });
        assert.equal(deleted.code, 0, deleted.stderr);
      }
      // (Not queried: a reconciliation round may already have put them back.)

      await eventually('r1 A back', () => lab.query(r1.name, 'A'), (v) => v.join() === '192.0.2.51', 10_000);
      await eventually('its PTR back', () => lab.query(`51.${REV4}`, 'PTR'), (v) => v.join() === r1.name, 10_000);
      assert.deepEqual(await lab.query(r2.name, 'A'), ['192.0.2.52']);
      assert.ok(sink.lines.some((l) => l.msg === 'reconciliation round done' && l.records === 2));
    } finally {
      await up.close();
    }
  });
});
