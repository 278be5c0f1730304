/**
 * The replay cache survives a restart: a request accepted before SIGTERM,
 * sent again (as it was, or with its ECDSA signature malleated) to the
 * daemon started again on the same data directory, is refused as replayed —
 * after SIGTERM and after SIGKILL alike.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { Algorithm, RRClass, Rcode } from '../../src/dns/constants.js';
import type { DecodedMessage } from '../../src/dns/message.js';
import { serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { freePort } from '../helpers/ports.js';
import { malleate } from '../helpers/ecdsa-malleate.js';
import { startNsregd } from '../helpers/nsregd-lab.js';
import { a, makeClient, signedUpdate } from '../helpers/sig0-client.js';

const ZONE = 'dynamic.example.org.';
const zones = zoneYaml(ZONE, { 'max-key-ttl': '720h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [serveUpstream(await freePort())] });

const reasons = (m: DecodedMessage): string[] => m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data) || []);

describe('nsregd replay cache across a restart', () => {
  let dir: string | undefined;
  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
    it(`refuses a request accepted before a restart (${sig}), and its malleated twin`, async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'nsregd-replay-'));
      const c = makeClient('host1', ZONE, Algorithm.ECDSAP256SHA256);
      const now = Math.floor(Date.now() / 1000);
      const claim = signedUpdate(c, [a(c.name, '127.0.0.5')], { now, id: 1 });
      const remove = signedUpdate(c, [a(c.name, '127.0.0.5', 0, RRClass.NONE)], { now, id: 2 });

      const first = await startNsregd({ zonesYaml: zones, dir });
      try {
        assert.equal((await first.send(claim)).rcode, Rcode.NOERROR);
        assert.equal((await first.send(remove)).rcode, Rcode.NOERROR);
        first.signal(sig);
        await first.exited();
      } finally {
        await first.stop();
      }

      const second = await startNsregd({ zonesYaml: zones, dir });
      try {
        for (const replay of [claim, malleate(claim, Algorithm.ECDSAP256SHA256)]) {
          const reply = await second.send(replay);
          assert.equal(reply.rcode, Rcode.REFUSED);
          assert.deepEqual(reasons(reply), ['Replayed request']);
        }
        // A fresh request of the owner still works.
        assert.equal((await second.send(signedUpdate(c, [a(c.name, '127.0.0.5')], { now, id: 3 }))).rcode, Rcode.NOERROR);
      } finally {
        await second.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
