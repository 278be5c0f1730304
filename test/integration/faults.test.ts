/**
 * Fault injection with a real named behind a switchable relay: the upstream
 * goes away during claims, expiries and shutdown and comes back — named
 * must end with exactly the live records; and nsregd killed with SIGKILL
 * still expires its records on time after a restart.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RRClass, Rcode } from '../../src/dns/constants.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { a, makeClient, signedUpdate, type TestClient } from '../helpers/sig0-client.js';
import { nsupdateUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';

const ZONE = 'dynamic.example.org.';
const key: TsigKeySpec = { name: 'nsregd.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
const now = (): number => Math.floor(Date.now() / 1000);

function zonesYaml(upstreamPort: number, maxAddrTtl = '1h'): string {
  return zoneYaml(ZONE, {
    'max-key-ttl': '720h',
    'max-addr-ttl': maxAddrTtl,
    'allowed-nets': ['127.0.0.0/8', '192.0.2.0/24'],
    upstreams: [nsupdateUpstream(ZONE, upstreamPort, key)],
  });
}

/** Every A record of registered names in the zone (the lab's own ns. left out), as "name address" lines (AXFR). */
async function zoneA(named: NamedLab): Promise<string[]> {
  const out = await named.dig(['+noall', '+answer', ZONE, 'AXFR']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[3] === 'A' && f[0] !== `ns.${ZONE}`)
    .map((f) => `${f[0]} ${f[4]}`)
    .sort();
}

const claim = (d: NsregdLab, c: TestClient, addr: string, ttl = 300, id = 1): Promise<number> =>
  d.send(signedUpdate(c, [a(c.name, addr, ttl)], { now: now(), id })).then((m) => m.rcode);

describe('upstream faults and crashes', () => {
  let named: NamedLab;
  let proxy: FaultProxy;
  let dir: string;

  before(async () => {
    named = await startNamed({ tsigKeys: [key], zones: [{ name: ZONE, allowUpdateKey: key.name }] });
    proxy = await startFaultProxy(named.port);
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-faults-'));
  });

  after(async () => {
    await proxy?.close();
    await named?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('upstream down during claims, expiry, removal and shutdown: named converges to exactly the live records', async () => {
    const d = await startNsregd({ zonesYaml: zonesYaml(proxy.port), dir });
    try {
      const keep = makeClient('keep', ZONE);
      const gone = makeClient('gone', ZONE);
      const short = makeClient('short', ZONE);
      assert.equal(await claim(d, keep, '192.0.2.1'), Rcode.NOERROR);
      assert.equal(await claim(d, gone, '192.0.2.2'), Rcode.NOERROR);
      assert.equal(await claim(d, short, '192.0.2.3', 2), Rcode.NOERROR);
      assert.deepEqual(await zoneA(named), [`gone.${ZONE} 192.0.2.2`, `keep.${ZONE} 192.0.2.1`, `short.${ZONE} 192.0.2.3`]);

      await proxy.down();
      const late = makeClient('late', ZONE);
      assert.equal(await claim(d, late, '192.0.2.4'), Rcode.SERVFAIL, 'a claim while the upstream is down fails');
      assert.equal(await claim(d, keep, '192.0.2.5', 300, 2), Rcode.SERVFAIL, 'a new address while down fails');
      const removal = await d.send(signedUpdate(gone, [a(gone.name, '192.0.2.2', 0, RRClass.NONE)], { now: now(), id: 3 }));
      assert.equal(removal.rcode, Rcode.SERVFAIL, 'the client hears of the failure, but the removal stays queued');
      // "short" (TTL 2 s) expires while the upstream is down: its removal is queued too.
      assert.deepEqual((await d.waitForLog('records expired', 5000))['count'], 1);
      await proxy.restore();

      // Live now: keep 192.0.2.1 only. The queued removals and the expiry reach named on retry.
      await eventually('named to converge', () => zoneA(named), (v) => v.length === 1, 15_000);
      assert.deepEqual(await zoneA(named), [`keep.${ZONE} 192.0.2.1`]);

      // Down again, then shut down: the removal cannot be delivered now; it is kept for the next start.
      await proxy.down();
      d.signal('SIGTERM');
      assert.equal(await d.exited(), 0);
      assert.deepEqual(await zoneA(named), [`keep.${ZONE} 192.0.2.1`]);
    } finally {
      await d.stop();
    }
    await proxy.restore();
    // Restarted within the record's lifetime: the record withdrawn at the stop
    // is installed again, and the removal the stop could not deliver is
    // superseded, never sent: named keeps exactly the live record throughout.
    const again = await startNsregd({ zonesYaml: zonesYaml(proxy.port), dir });
    try {
      await again.waitForLog('installing again the records withdrawn at the last stop');
      await again.waitForLog('forward update accepted');
      assert.deepEqual(await zoneA(named), [`keep.${ZONE} 192.0.2.1`]);
      assert.ok(!again.logs().some((l) => l.msg === 'forward update accepted' && Number(l['remove']) > 0), 'no removal was sent at the restart');
    } finally {
      await again.stop();
    }
    // A clean stop with the upstream reachable leaves nothing behind.
    await eventually('the clean stop to remove the record', () => zoneA(named), (v) => v.length === 0, 15_000);
  });

  it('after kill -9 and a restart, records still expire at their deadlines and are removed upstream', async () => {
    const crashDir = await mkdtemp(path.join(tmpdir(), 'nsregd-crash-'));
    try {
      const d = await startNsregd({ zonesYaml: zonesYaml(proxy.port), dir: crashDir });
      const c = makeClient('crash', ZONE);
      const lasting = makeClient('lasting', ZONE);
      const t0 = Date.now();
      assert.equal(await claim(d, c, '192.0.2.10', 4), Rcode.NOERROR);
      assert.equal(await claim(d, lasting, '192.0.2.11', 3600), Rcode.NOERROR);
      d.signal('SIGKILL');
      await d.exited();
      await d.stop();
      assert.deepEqual(await zoneA(named), [`crash.${ZONE} 192.0.2.10`, `lasting.${ZONE} 192.0.2.11`]);
      const restarted = await startNsregd({ zonesYaml: zonesYaml(proxy.port), dir: crashDir });
      try {
        await eventually('the expiry', () => zoneA(named), (v) => !v.includes(`crash.${ZONE} 192.0.2.10`), 8000);
        const took = Date.now() - t0;
        assert.ok(took >= 3900 && took < 6000, `removed ${took} ms after the claim (deadline 4000 ms)`);
        assert.deepEqual(await zoneA(named), [`lasting.${ZONE} 192.0.2.11`], 'the lasting record survived the crash');
        // The restored record is known: the owner's refresh is a refresh, not a new add.
        assert.equal(await claim(restarted, lasting, '192.0.2.11', 3600, 5), Rcode.NOERROR);
      } finally {
        await restarted.stop();
      }
    } finally {
      await rm(crashDir, { recursive: true, force: true });
    }
  });
});
