/**
 * NsregClient (src/client/client.ts) in-process against our nsregd running
 * as a real process on loopback: the SRV answered by the daemon itself,
 * zone discovery queries it refuses (not fatal), extra addresses, address
 * events fanned out to the registrar, a source that fails mid-run replaced
 * by its fallback (what went away removed, what appeared added), and
 * shutdown removing everything. A zone whose server cannot be found is
 * looked up again until the daemon serves it. The address sources are in-memory stand-ins
 * for the kernel, which the namespace test (nsregc-netns) covers for real.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NsregClient } from '../../src/client/client.js';
import { loadClientKey } from '../../src/client/keys.js';
import { LIFETIME_FOREVER, type AddressEvent, type AddressSource, type LocalAddress } from '../../src/client/addresses/source.js';
import { defaultClientConfig, mergeClientFlags, type ClientConfig } from '../../src/config/client.js';
import { daemonYaml, startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { logSink as sink } from '../helpers/log-sink.js';
import { serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';

const ZONE = 'dynamic.example.org.';


function local(address: string, prefixLen: number, ifname = 'eth0'): LocalAddress {
  return {
    address,
    family: address.includes(':') ? 6 : 4,
    ifindex: 2,
    ifname,
    prefixLen,
    flags: 0x80,
    validLifetime: LIFETIME_FOREVER,
    preferredLifetime: LIFETIME_FOREVER,
  };
}

/** The kernel as the test describes it. */
class MemorySource implements AddressSource {
  readonly kind = 'netlink' as const;
  addresses: LocalAddress[];
  onEvent: ((e: AddressEvent) => void) | undefined;
  onFailure: ((err: Error) => void) | undefined;
  closed = false;

  constructor(addresses: LocalAddress[]) {
    this.addresses = addresses;
  }
  list(): Promise<LocalAddress[]> {
    return Promise.resolve([...this.addresses]);
  }
  subscribe(onEvent: (e: AddressEvent) => void, onFailure: (err: Error) => void): Promise<void> {
    this.onEvent = onEvent;
    this.onFailure = onFailure;
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
  add(a: LocalAddress): void {
    this.addresses.push(a);
    this.onEvent?.({ kind: 'added', address: a });
  }
  remove(address: string): void {
    const a = this.addresses.find((x) => x.address === address);
    assert.ok(a);
    this.addresses = this.addresses.filter((x) => x !== a);
    this.onEvent?.({ kind: 'removed', address: a });
  }
}

describe('NsregClient against nsregd on loopback', () => {
  let d: NsregdLab;
  let dir: string;
  let zonesYaml: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregc-client-'));
    zonesYaml = zoneYaml(ZONE, { 'max-key-ttl': '720h', 'max-addr-ttl': '10m', 'allowed-nets': ['127.0.0.0/8', '192.0.2.0/24'], upstreams: [serveUpstream(await freePort())] });
    d = await startNsregd({ zonesYaml });
  });
  after(async () => {
    await d?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  function config(extra: Partial<{ addresses: string[] }> = {}): ClientConfig {
    const base = defaultClientConfig(dir, { hostname: 'lab' });
    return mergeClientFlags(base, {
      dnsServer: `127.0.0.1@${d.port}`,
      dnsTcp: true,
      zones: [ZONE],
      ...(extra.addresses === undefined ? {} : { addresses: extra.addresses }),
    });
  }

  it('registers, follows events, survives a source failure, removes everything on shutdown', async () => {
    const { logger, lines } = sink();
    const cfg = config({ addresses: ['192.0.2.99'] });
    const key = await loadClientKey({ keyFile: path.join(dir, 'k.key'), privateKeyFile: path.join(dir, 'k.private'), genKey: true, name: 'lab' });
    const kernel = new MemorySource([local('127.0.0.1', 8, 'lo'), local('192.0.2.1', 24)]);
    const fallback = new MemorySource([local('192.0.2.2', 24), local('192.0.2.3', 24)]);
    const client = await NsregClient.start({
      config: cfg,
      key,
      logger,
      openSource: () => Promise.resolve(kernel),
      fallbackSource: () => fallback,
    });
    try {
      await client.idle();
      assert.equal(client.servers.length, 1);
      const server = client.servers[0];
      assert.deepEqual(
        { zone: server?.zone, name: server?.name, target: server?.target, host: server?.host, port: server?.port },
        { zone: ZONE, name: `lab.${ZONE}`, target: '127.0.0.1.', host: '127.0.0.1', port: d.port },
      );
      // Browse queries went to the daemon, which refuses them: logged as nothing found, not fatal.
      assert.ok(!lines.some((l) => l['msg'] === 'zone discovery query failed'), 'REFUSED is an answer, not a failure');

      const registrar = client.registrars[0];
      assert.ok(registrar);
      assert.deepEqual(registrar.registeredAddresses().sort(), ['192.0.2.1', '192.0.2.99']);
      const registered = (want: readonly string[]): Promise<string[]> =>
        eventually(`registered ${want.join(', ')}`, () => registrar.registeredAddresses().sort(), (l) => l.join() === want.join(), 5000);
      const echoed = lines.find((l) => l['msg'] === 'address registered' && l['address'] === '192.0.2.1');
      assert.equal(echoed?.['ttl'], 600, 'the server clamps to its max-addr-ttl; the echoed TTL counts');

      kernel.add(local('192.0.2.2', 24));
      await registered(['192.0.2.1', '192.0.2.2', '192.0.2.99']);

      // The source dies; the fallback sees .2 and .3 but no longer .1.
      kernel.onFailure?.(new Error('netlink socket closed'));
      await eventually('the subscription to the fallback', () => fallback.onEvent, (f) => f !== undefined, 1000);
      assert.ok(kernel.closed);
      await registered(['192.0.2.2', '192.0.2.3', '192.0.2.99']);
      assert.ok(lines.some((l) => l['msg'] === 'record removed' && l['address'] === '192.0.2.1'));

      fallback.remove('192.0.2.3');
      await registered(['192.0.2.2', '192.0.2.99']);
    } finally {
      await client.shutdown(false);
    }
    assert.ok(fallback.closed);
    assert.equal(client.registrars[0]?.state, 'stopped');
    const removed = lines.find((l) => l['msg'] === 'records removed');
    assert.equal(removed?.['count'], 2);
    assert.equal(client.refusedEverywhere, false);
  });

  it('a zone whose server cannot be found yet: looked up again with back-off, registered once the daemon serves it', async () => {
    const OTHER = 'elsewhere.example.';
    const { logger, lines } = sink();
    const cfg = { ...config(), zones: [OTHER], discoverZones: false };
    const key = await loadClientKey({ keyFile: path.join(dir, 'k.key'), privateKeyFile: path.join(dir, 'k.private'), genKey: true, name: 'lab' });
    const kernel = new MemorySource([local('192.0.2.5', 24)]);
    const client = await NsregClient.start({
      config: cfg,
      key,
      logger,
      openSource: () => Promise.resolve(kernel),
      lookupRetryInitialMs: 100,
      lookupRetryCapMs: 400,
    });
    try {
      const retries = (): number => lines.filter((l) => l['msg'] === 'looking for nsregd servers again').length;
      await eventually('two look-ups that found no server', retries, (n) => n >= 2, 5000);
      assert.equal(client.servers.length, 0);
      assert.equal(kernel.closed, false, 'the client keeps running');
      await d.writeConfig(
        daemonYaml(
          d.port,
          d.dataDir,
          zonesYaml + zoneYaml(OTHER, { 'max-key-ttl': '720h', 'max-addr-ttl': '10m', 'allowed-nets': ['127.0.0.0/8', '192.0.2.0/24'], upstreams: [serveUpstream(await freePort())] }),
        ),
      );
      d.signal('SIGHUP');
      await eventually(
        'the registration in the zone added by the reload',
        () => client.registrars[0]?.registeredAddresses(),
        (l) => l?.join() === '192.0.2.5',
        10_000,
      );
      assert.equal(client.servers[0]?.zone, OTHER);
    } finally {
      await client.shutdown(false);
    }
    assert.ok(kernel.closed);
  });

  it('refused in one zone while another has no server yet: still running; refused in every zone: allRefused', async () => {
    const { logger } = sink();
    // Another key for `lab`, which the first test claimed: the daemon refuses it.
    const intruder = await loadClientKey({ keyFile: path.join(dir, 'i.key'), privateKeyFile: path.join(dir, 'i.private'), genKey: true, name: 'lab' });
    const kernel = (): Promise<MemorySource> => Promise.resolve(new MemorySource([local('192.0.2.7', 24)]));
    const both = await NsregClient.start({
      config: { ...config(), zones: [ZONE, 'nowhere.example.'], discoverZones: false },
      key: intruder,
      logger,
      openSource: kernel,
    });
    try {
      await eventually('the refusal', () => both.registrars[0]?.state, (st) => st === 'refused', 5000);
      assert.equal(both.refusedEverywhere, false, 'nowhere.example. may still find a server');
      const settled = await Promise.race([both.allRefused.then(() => 'refused'), both.idle().then(() => 'running')]);
      assert.equal(settled, 'running');
    } finally {
      await both.shutdown(false);
    }
    const one = await NsregClient.start({ config: { ...config(), discoverZones: false }, key: intruder, logger, openSource: kernel });
    try {
      await one.allRefused;
      assert.equal(one.refusedEverywhere, true);
    } finally {
      await one.shutdown(false);
    }
  });

  it('no zone at all: ClientStartError no-zones', async () => {
    const { logger } = sink();
    const cfg = { ...config(), zones: [], discoverZones: false };
    const key = await loadClientKey({ keyFile: path.join(dir, 'k.key'), privateKeyFile: path.join(dir, 'k.private'), genKey: true, name: 'lab' });
    await assert.rejects(
      NsregClient.start({ config: cfg, key, logger, openSource: () => Promise.resolve(new MemorySource([])) }),
      (err: unknown) => (err as { reason?: string }).reason === 'no-zones',
    );
  });
});
