/**
 * "Daemon restart under a running nsregc — registrations restored": our
 * nsregd (real process, built-in zone server as its upstream) restarts on
 * the same port and data dir, once after SIGTERM (which removes the
 * records upstream) and once after kill -9; the in-process NsregClient's
 * liveness probe notices and registers everything again, and the zone
 * server answers with the addresses within a few seconds.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NsregClient } from '../../src/client/client.js';
import { loadClientKey } from '../../src/client/keys.js';
import { LIFETIME_FOREVER, type AddressSource, type LocalAddress } from '../../src/client/addresses/source.js';
import { defaultClientConfig, mergeClientFlags } from '../../src/config/client.js';
import { Opcode, RRClass, RRType } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../src/dns/message.js';
import { tcpExchange } from '../../src/net/transport.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { logSink as sink } from '../helpers/log-sink.js';
import { LOOPBACK_ZONE, serveUpstream, zoneYaml } from '../helpers/config-yaml.js';

const ZONE = 'dynamic.example.org.';
const NAME = `lab.${ZONE}`;


function local(address: string): LocalAddress {
  return {
    address,
    family: address.includes(':') ? 6 : 4,
    ifindex: 2,
    ifname: 'eth0',
    prefixLen: 24,
    flags: 0x80,
    validLifetime: LIFETIME_FOREVER,
    preferredLifetime: LIFETIME_FOREVER,
  };
}

/** Fixed addresses; nothing changes during the test. */
const staticSource = (addresses: LocalAddress[]): AddressSource => ({
  kind: 'netlink',
  list: () => Promise.resolve([...addresses]),
  subscribe: () => Promise.resolve(),
  close: () => Promise.resolve(),
});

describe('daemon restart under a running nsregc', () => {
  let dir: string;
  let dnsPort: number;
  let port: number;
  let d: NsregdLab | undefined;
  let zonesYaml: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregc-restart-'));
    dnsPort = await freePort();
    port = await freePort();
    zonesYaml = zoneYaml(ZONE, {
      ...LOOPBACK_ZONE,
      upstreams: [serveUpstream(dnsPort, { 'record-ttl': '30s', 'negative-ttl': '1s', hostmaster: 'admin.example.org' })],
    });
  });
  after(async () => {
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (): Promise<NsregdLab> => startNsregd({ zonesYaml, port, dir: path.join(dir, 'daemon') });

  /** A records of NAME from the zone server ([] when it has none or does not answer). */
  async function served(): Promise<string[]> {
    const q = emptyMessage(7, Opcode.QUERY);
    q.questions.push({ name: NAME, type: RRType.A, class: RRClass.IN });
    try {
      const r = decodeMessage(await tcpExchange({ host: '127.0.0.1', port: dnsPort, message: encodeMessage(q), timeoutMs: 1000 }));
      return r.answers.filter((rr) => rr.type === 'A').map((rr) => String(rr.data)).sort();
    } catch {
      return [];
    }
  }

  async function waitServed(want: string[], timeoutMs: number): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const got = await served();
      if (JSON.stringify(got) === JSON.stringify(want)) return Date.now() - t0;
      if (Date.now() - t0 > timeoutMs) assert.fail(`zone server answers ${JSON.stringify(got)}, want ${JSON.stringify(want)} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('re-registers after SIGTERM + restart and after kill -9 + restart', async () => {
    await mkdir(path.join(dir, 'daemon'), { recursive: true });
    d = await start();
    const { logger, lines } = sink();
    const cfg = mergeClientFlags(defaultClientConfig(dir, { hostname: 'lab' }), {
      dnsServer: `127.0.0.1@${port}`,
      dnsTcp: true,
      zones: [ZONE],
    });
    const key = await loadClientKey({ keyFile: path.join(dir, 'k.key'), privateKeyFile: path.join(dir, 'k.private'), genKey: true, name: 'lab' });
    const client = await NsregClient.start({
      config: { ...cfg, discoverZones: false },
      key,
      logger,
      openSource: () => Promise.resolve(staticSource([local('192.0.2.1'), local('192.0.2.2')])),
      probeIntervalMs: 300,
    });
    try {
      await client.idle();
      await waitServed(['192.0.2.1', '192.0.2.2'], 5000);

      // SIGTERM: the daemon removes our records upstream on its way out.
      d.signal('SIGTERM');
      await d.exited();
      await new Promise((r) => setTimeout(r, 500));
      d = await start();
      const took = await waitServed(['192.0.2.1', '192.0.2.2'], 8000);
      assert.ok(took < 8000);
      // The daemon publishes the withdrawn records again by itself, so they may be back before the client re-registers.
      for (let i = 0; i < 50 && lines.filter((l) => l['msg'] === 'server is back; re-registering 2 addresses').length < 1; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(lines.filter((l) => l['msg'] === 'server is back; re-registering 2 addresses').length, 1);
      assert.equal(lines.filter((l) => String(l['msg']).includes('server is not answering')).length, 1, 'down logged once');

      // kill -9: nothing cleaned up; whatever the daemon kept, the records are back.
      d.signal('SIGKILL');
      await d.exited();
      await new Promise((r) => setTimeout(r, 500));
      d = await start();
      await waitServed(['192.0.2.1', '192.0.2.2'], 8000);
      const backs = (): number => lines.filter((l) => l['msg'] === 'server is back; re-registering 2 addresses').length;
      for (let i = 0; i < 50 && backs() < 2; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(lines.filter((l) => l['msg'] === 'server is back; re-registering 2 addresses').length, 2);
      assert.equal(client.registrars[0]?.state, 'running');
    } finally {
      await client.shutdown(false);
    }
  });
});
