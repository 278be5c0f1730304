/**
 * A key database that cannot be written (disk full: the journal is
 * /dev/full) with the real KeyStore behind the handler: new claims get
 * SERVFAIL with a reason, the existing file stays intact, and owners of
 * existing names keep refreshing.
 */
import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { RecordCache } from '../../../src/daemon/cache.js';
import { handleMessage } from '../../../src/daemon/handler.js';
import { KeyStore } from '../../../src/daemon/keydb/keystore.js';
import { formatRfc3339 } from '../../../src/daemon/keydb/rfc3339.js';
import { Zone } from '../../../src/daemon/zone.js';
import { Rcode } from '../../../src/dns/constants.js';
import { decodeMessage } from '../../../src/dns/message.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { FakeUpstream } from '../../helpers/fake-upstream.js';
import { labZoneConfig, LAB_REMOTE, LAB_ZONE } from '../../helpers/handler-lab.js';
import { a, makeClient, signedUpdate } from '../../helpers/sig0-client.js';

describe('key database write failures', () => {
  it('refuse new claims with SERVFAIL, keep the file intact, keep refreshes working', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'keydb-full-'));
    try {
      const clock = new FakeClock(Date.UTC(2026, 10, 22, 12));
      const owner = makeClient('owner', LAB_ZONE);
      const snapshot = path.join(dir, `${LAB_ZONE}keydb`);
      const text = JSON.stringify({
        [owner.name]: {
          Name: owner.name,
          Flags: owner.rdata.flags,
          Protocol: owner.rdata.protocol,
          Algorithm: owner.rdata.algorithm,
          KeyTag: owner.keyTag,
          PublicKey: owner.rdata.publicKey.toString('base64'),
          Expiry: formatRfc3339(clock.now() + 86_400_000),
        },
      });
      await writeFile(snapshot, text, { mode: 0o600 });
      const errors: string[] = [];
      const { store } = await KeyStore.open(dir, LAB_ZONE, clock, { onBackgroundError: (e) => errors.push(e.reason) });
      // The journal is opened on the first write: make that land on a full device (ENOSPC even for root).
      await symlink('/dev/full', `${snapshot}.journal`);
      const zone = new Zone(labZoneConfig(), store, new RecordCache(), [new FakeUpstream()], pino({ level: 'silent' }), clock);
      const ctx = { zones: new Map([[LAB_ZONE, zone]]), listenAddr: 'x', listenPort: 1, clock, logger: pino({ level: 'silent' }) };
      const send = async (m: Buffer) => decodeMessage((await handleMessage(m, LAB_REMOTE, ctx)).reply as Buffer);
      const now = Math.floor(clock.now() / 1000);

      const newcomer = makeClient('newcomer', LAB_ZONE);
      const r = await send(signedUpdate(newcomer, [a(newcomer.name, '192.0.2.9')], { now }));
      assert.equal(r.rcode, Rcode.SERVFAIL);
      assert.deepEqual(r.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data) || []), ['Unable to store key']);
      assert.equal(store.get(newcomer.name), undefined);

      const refresh = await send(signedUpdate(owner, [a(owner.name, '192.0.2.1')], { now }));
      assert.equal(refresh.rcode, Rcode.NOERROR, 'the existing owner is still served');
      assert.equal(await readFile(snapshot, 'utf8'), text, 'the key database file is untouched');
      await store.idle();
      assert.ok(errors.includes('write-failed'), 'the failed background write was reported');
      await rm(`${snapshot}.journal`);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
