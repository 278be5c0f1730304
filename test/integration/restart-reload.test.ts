/**
 * Restarts and reloads are non-events for registered hosts: after SIGTERM
 * and a start on the same data directory the names resolve again within
 * 5 s with no client traffic (built-in zone server and real named); a
 * restart after the records' deadlines publishes nothing again; an
 * nsupdate upstream added by SIGHUP receives every live record within 5 s;
 * a changed exclude-nets or record-ttl is applied to the live records.
 * The same with a real Unbound, plus an upstream removed by SIGHUP.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Rcode } from '../../src/dns/constants.js';
import { LOOPBACK_ZONE, nsupdateUpstream, serveUpstream, unboundUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually, letTimePass } from '../helpers/eventually.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';
import { daemonYaml, startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { a, makeClient, signedUpdate, type TestClient } from '../helpers/sig0-client.js';
import { requireTool, run } from '../helpers/tools.js';
import { startUnbound, type UnboundLab } from '../helpers/unbound.js';

const ZONE = 'dynamic.example.org.';
const REV = '2.0.192.in-addr.arpa.';
const key: TsigKeySpec = { name: 'nsregd.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
/** The bound of the issue: resolvable again within 5 s. */
const CONVERGE_MS = 5000;

const now = (): number => Math.floor(Date.now() / 1000);

async function claim(d: NsregdLab, c: TestClient, addresses: readonly string[]): Promise<void> {
  const r = await d.send(signedUpdate(c, addresses.map((x) => a(c.name, x, 300)), { now: now(), id: Math.floor(Math.random() * 65535) }));
  assert.equal(r.rcode, Rcode.NOERROR);
}

/** `dig +short` against the built-in zone server. */
async function digServe(port: number, name: string, type: string): Promise<string[]> {
  const r = await run(requireTool('dig'), ['@127.0.0.1', '-p', String(port), '+time=1', '+tries=1', '+norecurse', '+short', name, type]);
  return r.stdout.split('\n').filter((l) => l !== '');
}

const sorted = (l: readonly string[]): string[] => [...l].sort();

describe('restart with the built-in zone server', () => {
  let dir: string;
  let d: NsregdLab | undefined;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-restart-serve-'));
  });
  after(async () => {
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('SIGTERM, then a start on the same data directory: the name and its PTR resolve again within 5 s, no client traffic', async () => {
    const dnsPort = await freePort();
    const zones = zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(dnsPort, { 'record-ttl': '30s', 'reverse-zones': [REV] })] });
    const port = await freePort();
    d = await startNsregd({ zonesYaml: zones, dir, port });
    const c = makeClient('restarted', ZONE);
    await claim(d, c, ['192.0.2.1']);
    assert.deepEqual(await digServe(dnsPort, c.name, 'A'), ['192.0.2.1']);
    await d.stop();
    d = undefined;
    d = await startNsregd({ zonesYaml: zones, dir, port });
    await eventually('the A record after the restart', () => digServe(dnsPort, c.name, 'A'), (v) => v.join() === '192.0.2.1', CONVERGE_MS);
    await eventually('the PTR after the restart', () => digServe(dnsPort, `1.${REV}`, 'PTR'), (v) => v.join() === c.name, CONVERGE_MS);
    await d.stop();
    d = undefined;
  });

  it('SIGHUP adding a second zone server: it answers with the live records; a reverse zone dropped from the first takes its PTRs', async () => {
    const first = await freePort();
    const second = await freePort();
    const port = await freePort();
    const reloadDir = path.join(dir, 'reload');
    await mkdir(reloadDir);
    const zones = (upstreams: Array<Record<string, unknown>>): string => zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams });
    d = await startNsregd({ zonesYaml: zones([serveUpstream(first, { 'reverse-zones': [REV] })]), dir: reloadDir, port });
    const c = makeClient('served', ZONE);
    await claim(d, c, ['192.0.2.5']);
    assert.deepEqual(await digServe(first, `5.${REV}`, 'PTR'), [c.name]);
    await d.writeConfig(daemonYaml(port, path.join(reloadDir, 'data'), zones([serveUpstream(first), serveUpstream(second, { 'reverse-zones': [REV] })])));
    d.signal('SIGHUP');
    await eventually('the record on the added zone server', () => digServe(second, c.name, 'A'), (v) => v.join() === '192.0.2.5', CONVERGE_MS);
    await eventually('its PTR there', () => digServe(second, `5.${REV}`, 'PTR'), (v) => v.join() === c.name, CONVERGE_MS);
    await eventually('no PTR on the first any more', () => digServe(first, `5.${REV}`, 'PTR'), (v) => v.length === 0, CONVERGE_MS);
    assert.deepEqual(await digServe(first, c.name, 'A'), ['192.0.2.5']);
  });
});

describe('restart and reload with a real named upstream', () => {
  let named: NamedLab;
  let dir: string;
  let d: NsregdLab | undefined;
  let port: number;
  const nsupdate = (settings: Record<string, unknown> = {}): Record<string, unknown> =>
    nsupdateUpstream(ZONE, named.port, key, { timeout: '3s', 'reverse-zones': [REV], ...settings });
  const zonesWith = (upstreams: Array<Record<string, unknown>>): string => zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams });

  before(async () => {
    named = await startNamed({ tsigKeys: [key], zones: [ZONE, REV].map((name) => ({ name, allowUpdateKey: key.name })) });
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-restart-named-'));
    port = await freePort();
  });
  after(async () => {
    await d?.stop();
    await named?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('SIGTERM removes the records from named; a start on the same data directory puts them back within 5 s, no client traffic', async () => {
    const zones = zonesWith([nsupdate()]);
    d = await startNsregd({ zonesYaml: zones, dir, port });
    const c = makeClient('restarted', ZONE);
    await claim(d, c, ['192.0.2.1']);
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.1']);
    await d.stop();
    d = undefined;
    // Stopped (for good, as far as this daemon knows): nothing left behind.
    assert.deepEqual(await named.query(c.name, 'A'), []);
    assert.deepEqual(await named.query(`1.${REV}`, 'PTR'), []);
    d = await startNsregd({ zonesYaml: zones, dir, port });
    await eventually('the A record in named after the restart', () => named.query(c.name, 'A'), (v) => v.join() === '192.0.2.1', CONVERGE_MS);
    await eventually('the PTR in named after the restart', () => named.query(`1.${REV}`, 'PTR'), (v) => v.join() === c.name, CONVERGE_MS);
    await d.stop();
    d = undefined;
  });

  it('a restart after the deadline publishes nothing again: the withdrawn record is dropped', async () => {
    const lapsedDir = path.join(dir, 'lapsed');
    await mkdir(lapsedDir);
    const zones = zonesWith([nsupdate()]);
    d = await startNsregd({ zonesYaml: zones, dir: lapsedDir, port });
    const c = makeClient('lapsed', ZONE);
    const r = await d.send(signedUpdate(c, [a(c.name, '192.0.2.2', 1)], { now: now() }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.2']);
    await d.stop();
    d = undefined;
    await letTimePass(1500); // on purpose: the record's 1 s deadline passes while the daemon is stopped
    d = await startNsregd({ zonesYaml: zones, dir: lapsedDir, port });
    await d.waitForLog('records withdrawn at the last stop have lapsed since; dropped');
    await d.waitForLog('zone ready');
    assert.equal(d.logs().filter((l) => l.msg === 'installing again the records withdrawn at the last stop').length, 0);
    assert.deepEqual(await named.query(c.name, 'A'), []);
    await d.stop();
    d = undefined;
  });

  it('SIGHUP adding an nsupdate upstream: every live record appears within 5 s; a changed exclude-nets and record-ttl apply to the live records', async () => {
    const serveOnly = zonesWith([serveUpstream(await freePort())]);
    const reloadDir = path.join(dir, 'reload');
    await mkdir(reloadDir);
    d = await startNsregd({ zonesYaml: serveOnly, dir: reloadDir, port });
    const one = makeClient('one', ZONE);
    const two = makeClient('two', ZONE);
    await claim(d, one, ['192.0.2.11', '192.0.2.12']);
    await claim(d, two, ['192.0.2.21']);
    for (const h of [one, two]) assert.deepEqual(await named.query(h.name, 'A'), [], 'not in named before the reload');

    const dataDir = path.join(reloadDir, 'data');
    await d.writeConfig(daemonYaml(port, dataDir, zonesWith([serveUpstream(await freePort()), nsupdate()])));
    d.signal('SIGHUP');
    await eventually('every live record in named after the reload', async () => [sorted(await named.query(one.name, 'A')), await named.query(two.name, 'A')], (v) => JSON.stringify(v) === JSON.stringify([['192.0.2.11', '192.0.2.12'], ['192.0.2.21']]), CONVERGE_MS);
    await eventually('the PTRs in named', () => named.query(`12.${REV}`, 'PTR'), (v) => v.join() === one.name, CONVERGE_MS);
    const ttl = async (): Promise<string | undefined> => (await named.dig(['+noall', '+answer', two.name, 'A'])).trim().split(/\s+/)[1];
    assert.equal(await ttl(), '60');

    await d.writeConfig(daemonYaml(port, dataDir, zonesWith([serveUpstream(await freePort()), nsupdate({ 'exclude-nets': ['192.0.2.12/32'], 'record-ttl': '30s' })])));
    d.signal('SIGHUP');
    await eventually('the newly excluded address gone from named', () => named.query(one.name, 'A'), (v) => v.join() === '192.0.2.11', CONVERGE_MS);
    await eventually('its PTR gone too', () => named.query(`12.${REV}`, 'PTR'), (v) => v.length === 0, CONVERGE_MS);
    await eventually('the new record-ttl on the live records', ttl, (v) => v === '30', CONVERGE_MS);
    assert.deepEqual(await named.query(`11.${REV}`, 'PTR'), [one.name], 'a PTR of an address still published stays');
  });
});

describe('reload and restart with a real unbound upstream', () => {
  let unbound: UnboundLab;
  let d: NsregdLab | undefined;
  let dir: string;
  before(async () => {
    unbound = await startUnbound();
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-reload-unbound-'));
  });
  after(async () => {
    await d?.stop();
    await unbound?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('an unbound upstream added by SIGHUP gets every live record; exclude-nets applies; a restart puts the records back; removing the upstream removes them', async () => {
    const unboundUp = (settings: Record<string, unknown> = {}): Record<string, unknown> => unboundUpstream(unbound, { 'reverse-zones': [REV], ...settings });
    const serve = serveUpstream(await freePort());
    const zonesWith = (upstreams: Array<Record<string, unknown>>): string => zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams });
    const port = await freePort();
    d = await startNsregd({ zonesYaml: zonesWith([serve]), dir, port });
    const c = makeClient('ubhost', ZONE);
    await claim(d, c, ['192.0.2.31', '192.0.2.32']);
    const dataDir = path.join(dir, 'data');
    const published = async (): Promise<string[]> => sorted(await unbound.query(c.name, 'A'));

    await d.writeConfig(daemonYaml(port, dataDir, zonesWith([serve, unboundUp()])));
    d.signal('SIGHUP');
    await eventually('every live record in unbound after the reload', published, (v) => v.join() === '192.0.2.31,192.0.2.32', CONVERGE_MS);
    await eventually('the PTR in unbound', () => unbound.query(`32.${REV}`, 'PTR'), (v) => v.join() === c.name, CONVERGE_MS);

    const excluding = zonesWith([serve, unboundUp({ 'exclude-nets': ['192.0.2.32/32'] })]);
    await d.writeConfig(daemonYaml(port, dataDir, excluding));
    d.signal('SIGHUP');
    await eventually('the newly excluded address gone from unbound', published, (v) => v.join() === '192.0.2.31', CONVERGE_MS);
    await eventually('its PTR gone too', () => unbound.query(`32.${REV}`, 'PTR'), (v) => v.length === 0, CONVERGE_MS);

    await d.stop();
    d = undefined;
    assert.deepEqual(await published(), [], 'a stop removes the records');
    d = await startNsregd({ zonesYaml: excluding, dir, port });
    await eventually('the record back in unbound after the restart', published, (v) => v.join() === '192.0.2.31', CONVERGE_MS);

    await d.writeConfig(daemonYaml(port, dataDir, zonesWith([serve])));
    d.signal('SIGHUP');
    await eventually('the records of the removed upstream gone from unbound', published, (v) => v.length === 0, CONVERGE_MS);
  });
});
