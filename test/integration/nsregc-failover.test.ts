/**
 * "nsregc with two SRV targets keeps its name through the loss of either
 * daemon": two nsregd (real processes, each with its built-in zone server
 * as upstream) on loopback, named by two SRV records (priorities 0 and 10)
 * that a test DNS server answers; the in-process NsregClient registers
 * with the first. kill -9 of that daemon: the client registers with the
 * second within a few seconds, and stays there when the first comes back.
 * kill -9 of the second: it wraps around to the first (restarted with an
 * empty data dir, so the records there are the client's doing).
 *
 * These two daemons have separate stores and no site identifier: the move
 * is a change of server, retired by today's rules (the dead one is out of
 * reach: nothing is removed there).
 *
 * Then one site: two nsregd on one etcd store (a one-member cluster),
 * each with its built-in zone server; the client registers with the
 * first, which is killed; the name stays served by the second, which the
 * client's refreshes now go through, and nothing is removed anywhere.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Opcode, RRClass, RRType } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../src/dns/message.js';
import { tcpExchange } from '../../src/net/transport.js';
import { LOOPBACK_ZONE, serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { startSrvServer, type SrvServer } from '../helpers/srv-server.js';
import { startStaticClient } from '../helpers/static-client.js';

const ZONE = 'dynamic.example.org.';
const NAME = `twice.${ZONE}`;
const ADDRESSES = ['192.0.2.21', '192.0.2.22'];
/** "Within a few seconds": a probe interval, a refused connection, one update, the zone server's publication. */
const FAILOVER_MS = 5_000;

/** A records of `name` from the zone server on `port` ([] when it has none or does not answer). */
async function served(port: number, name = NAME): Promise<string[]> {
  const q = emptyMessage(7, Opcode.QUERY);
  q.questions.push({ name, type: RRType.A, class: RRClass.IN });
  try {
    const r = decodeMessage(await tcpExchange({ host: '127.0.0.1', port, message: encodeMessage(q), timeoutMs: 1000 }));
    return r.answers.flatMap((rr) => (rr.type === 'A' && rr.data !== null ? [rr.data] : [])).sort();
  } catch {
    return [];
  }
}

/** The zone's SOA serial as the zone server on `port` answers it (undefined when it does not). */
async function soaSerial(port: number): Promise<number | undefined> {
  const q = emptyMessage(8, Opcode.QUERY);
  q.questions.push({ name: ZONE, type: RRType.SOA, class: RRClass.IN });
  try {
    const r = decodeMessage(await tcpExchange({ host: '127.0.0.1', port, message: encodeMessage(q), timeoutMs: 1000 }));
    const soa = r.answers.find((rr) => rr.type === 'SOA');
    return soa?.type === 'SOA' && soa.data !== null ? soa.data.serial : undefined;
  } catch {
    return undefined;
  }
}

const same = (got: string[]): boolean => JSON.stringify(got) === JSON.stringify(ADDRESSES);

describe('nsregc with two SRV targets', () => {
  let dir: string;
  const daemons: Array<NsregdLab | undefined> = [undefined, undefined];
  let ports: number[];
  let dnsPorts: number[];
  let srv: SrvServer | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregc-failover-'));
    ports = [await freePort(), await freePort()];
    dnsPorts = [await freePort(), await freePort()];
  });
  after(async () => {
    for (const d of daemons) await d?.stop();
    await srv?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Daemon `i` on its port, with its own zone server and the data dir `data`. */
  const start = async (i: number, data: string): Promise<NsregdLab> => {
    const zonesYaml = zoneYaml(ZONE, {
      ...LOOPBACK_ZONE,
      upstreams: [serveUpstream(dnsPorts[i] ?? 0, { 'record-ttl': '30s', 'negative-ttl': '1s', hostmaster: 'admin.example.org' })],
    });
    await mkdir(path.join(dir, data));
    const d = await startNsregd({ zonesYaml, port: ports[i], dir: path.join(dir, data) });
    daemons[i] = d;
    return d;
  };

  const kill = async (i: number): Promise<void> => {
    const d = daemons[i];
    assert.ok(d);
    d.signal('SIGKILL');
    await d.exited();
  };

  it('keeps its name through the loss of either daemon', async () => {
    const [portA, portB] = ports as [number, number];
    const [dnsA, dnsB] = dnsPorts as [number, number];
    await start(0, 'a');
    const b = await start(1, 'b');
    srv = await startSrvServer(ZONE, [
      { priority: 10, weight: 0, port: portB, target: '127.0.0.1.' },
      { priority: 0, weight: 0, port: portA, target: '127.0.0.1.' },
    ]);
    const { client, count } = await startStaticClient({ dir, label: 'twice', zone: ZONE, dnsPort: srv.port, addresses: ADDRESSES, probeIntervalMs: 300 });
    const moves = (): number => count('nsregd server failed; registering with the next of the zone\'s servers');
    try {
      await client.idle();
      assert.deepEqual(client.servers.map((s) => s.port), [portA], 'the lower priority first');
      await eventually('A serves the name', () => served(dnsA), same, 5_000);
      assert.deepEqual(await served(dnsB), [], 'nothing at B yet');

      // kill -9 A: the client continues at B within a few seconds.
      await kill(0);
      const t0 = Date.now();
      await eventually('B serves the name', () => served(dnsB), same, FAILOVER_MS);
      assert.ok(Date.now() - t0 < FAILOVER_MS);
      assert.deepEqual(client.servers.map((s) => s.port), [portB]);
      assert.equal(moves(), 1);
      assert.equal(client.registrars[0]?.state, 'running');

      // A comes back (empty): the client stays with B while B works (several probes answered there).
      await start(0, 'a2');
      const handled = b.logs().filter((l) => l['msg'] === 'request handled').length;
      await b.waitForLogCount('request handled', handled + 5, 10_000);
      assert.deepEqual(client.servers.map((s) => s.port), [portB], 'no move back');
      assert.deepEqual(await served(dnsA), [], 'nothing registered at the restarted A');
      assert.equal(moves(), 1);

      // kill -9 B: wraps around to A, which gets the full registration.
      await kill(1);
      const t1 = Date.now();
      await eventually('A serves the name again', () => served(dnsA), same, FAILOVER_MS);
      assert.ok(Date.now() - t1 < FAILOVER_MS);
      assert.deepEqual(client.servers.map((s) => s.port), [portA]);
      assert.equal(moves(), 2);
      assert.equal(count('may be the same daemon or is out of reach'), 2, 'each dead daemon retired without removals');
    } finally {
      await client.shutdown(false);
    }
  });
});

describe('nsregc with two SRV targets of one site (shared etcd store)', () => {
  const SHARED_NAME = `shared.${ZONE}`;
  let dir: string;
  let etcd: EtcdCluster | undefined;
  const daemons: NsregdLab[] = [];
  let srv: SrvServer | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregc-site-'));
    etcd = await startEtcdCluster({ members: 1 });
  });
  after(async () => {
    for (const d of daemons) await d.stop();
    await srv?.close();
    await etcd?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('kill -9 of the daemon in use: the name stays served, is refreshed through the other, nothing is removed', async () => {
    assert.ok(etcd);
    const ports = [await freePort(), await freePort()];
    const dnsPorts = [await freePort(), await freePort()];
    const store = `store:\n  type: etcd\n  endpoints: [${etcd.endpoints.join(', ')}]\n  prefix: /nsregc-failover\n  lease: 2s\n`;
    for (const i of [0, 1]) {
      const zonesYaml = zoneYaml(ZONE, {
        ...LOOPBACK_ZONE,
        'max-addr-ttl': '6s',
        upstreams: [serveUpstream(dnsPorts[i] ?? 0, { 'record-ttl': '30s', 'negative-ttl': '1s', hostmaster: 'admin.example.org' })],
      });
      await mkdir(path.join(dir, `d${i}`));
      daemons.push(await startNsregd({ zonesYaml, port: ports[i], dir: path.join(dir, `d${i}`), extraYaml: store }));
    }
    const [a, b] = daemons as [NsregdLab, NsregdLab];
    const [dnsA, dnsB] = dnsPorts as [number, number];
    srv = await startSrvServer(ZONE, [
      { priority: 0, weight: 0, port: a.port, target: '127.0.0.1.' },
      { priority: 10, weight: 0, port: b.port, target: '127.0.0.1.' },
    ]);
    const { client, lines, count: msgs } = await startStaticClient({
      dir,
      label: 'shared',
      zone: ZONE,
      dnsPort: srv.port,
      addresses: ADDRESSES,
      // Records of 6 s: refreshed every 3 s, so they lapse within seconds unless the refreshes get through.
      config: { addrTtl: 6_000 },
      probeIntervalMs: 300,
    });
    const sharedServed = (port: number): Promise<string[]> => served(port, SHARED_NAME);
    try {
      await client.idle();
      assert.deepEqual(client.servers.map((s) => s.port), [a.port]);
      // One store: both zone servers answer with the records registered through A.
      await eventually('A serves the name', () => sharedServed(dnsA), same, 10_000);
      await eventually('B serves the name', () => sharedServed(dnsB), same, 10_000);
      // The serial is the shared data's: both zone servers give the same one for the same data.
      await eventually('A and B give one SOA serial', () => Promise.all([soaSerial(dnsA), soaSerial(dnsB)]), ([x, y]) => x !== undefined && x === y, 10_000);

      a.signal('SIGKILL');
      await a.exited();
      await eventually('the client moved to B', () => client.servers.map((s) => s.port), (p) => p[0] === b.port, FAILOVER_MS);
      assert.deepEqual(await sharedServed(dnsB), ADDRESSES, 'still served right after the move');
      // Three refresh rounds (3 s apart) accepted through B, each check finding the name served: it never lapsed.
      const atB = `127.0.0.1:${b.port}`;
      const accepted = (): number => lines.filter((l) => l['msg'] === 'address registered' && l['server'] === atB).length;
      const before = accepted();
      for (let round = 1; round <= 3; round++) {
        await eventually(`refresh ${round} through B`, accepted, (n) => n >= before + 2 * round, 10_000);
        assert.deepEqual(await sharedServed(dnsB), ADDRESSES, `served after refresh ${round}`);
      }
      // Both daemons said they are of one site (nsregd-site): the move is not a server change.
      assert.ok(msgs('the previous nsregd server is of the same site; our records stay with the site') >= 1, 'the client saw one site');
      assert.equal(msgs('removing our records there'), 0);
      assert.equal(msgs('record removed'), 0);
      assert.equal(msgs('removing records before exit'), 0);
      assert.equal(client.registrars[0]?.state, 'running');
    } finally {
      await client.shutdown(false);
    }
  });
});
