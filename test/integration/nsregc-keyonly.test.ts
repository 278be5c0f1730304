/**
 * An nsregc with no address to register keeps its claim on the name past
 * `key-ttl`: a real nsregd, a client whose key-ttl is 4 s and whose host
 * has no eligible address. The client's KEY-only updates keep the key
 * alive, so another key asking for the name well after the first key-ttl
 * is refused.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NsregClient } from '../../src/client/client.js';
import { loadClientKey } from '../../src/client/keys.js';
import type { AddressSource } from '../../src/client/addresses/source.js';
import { defaultClientConfig, mergeClientFlags } from '../../src/config/client.js';
import { Rcode } from '../../src/dns/constants.js';
import { LOOPBACK_ZONE, serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { logSink as sink } from '../helpers/log-sink.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { makeClient, signedUpdate } from '../helpers/sig0-client.js';

const ZONE = 'dynamic.example.org.';
const KEY_TTL_MS = 4000;

/** A host with no address at all. */
const noAddresses: AddressSource = {
  kind: 'netlink',
  list: () => Promise.resolve([]),
  subscribe: () => Promise.resolve(),
  close: () => Promise.resolve(),
};

describe('an address-less nsregc keeps its claim', () => {
  let dir: string;
  let d: NsregdLab | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregc-keyonly-'));
    const zonesYaml = zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(await freePort())] });
    d = await startNsregd({ zonesYaml, dir });
  });
  after(async () => {
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('KEY-only updates at half the key TTL; another key is refused after 2.5 key TTLs', async () => {
    assert.ok(d);
    const { logger, lines } = sink();
    const cfg = mergeClientFlags(defaultClientConfig(dir, { hostname: 'idle' }), {
      dnsServer: `127.0.0.1@${d.port}`,
      dnsTcp: true,
      zones: [ZONE],
    });
    const key = await loadClientKey({ keyFile: path.join(dir, 'i.key'), privateKeyFile: path.join(dir, 'i.private'), genKey: true, name: 'idle' });
    const client = await NsregClient.start({
      config: { ...cfg, discoverZones: false, keyTtl: KEY_TTL_MS },
      key,
      logger,
      openSource: () => Promise.resolve(noAddresses),
    });
    const refreshes = (): number => lines.filter((l) => String(l['msg']).startsWith('refreshing the key claim')).length;
    try {
      await client.idle();
      await d.waitForLog('new name claimed');
      const t0 = Date.now();
      // Five refreshes, every 2 s: 10 s, two and a half key TTLs after the claim.
      for (let i = 0; i < 300 && refreshes() < 5; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(refreshes(), 5, 'five key-only refreshes');
      assert.ok(Date.now() - t0 >= 2.5 * KEY_TTL_MS - 500);
      await client.idle();
      assert.equal(client.registrars[0]?.state, 'running');

      const thief = makeClient('idle', ZONE);
      const stolen = await d.send(signedUpdate(thief, [], { now: Math.floor(Date.now() / 1000), keyTtl: 60 }));
      assert.equal(stolen.rcode, Rcode.REFUSED, 'the name is still claimed by the client\'s key');
    } finally {
      await client.shutdown(false);
    }
  });
});
