/**
 * nsregc end to end, inside a network namespace made for the test: a real
 * named, our nsregd forwarding to it, and nsregc (bin/nsregc, no
 * configuration file, a fresh HOME) registering the addresses `ip` puts on
 * a veth interface. Also the interop checks over the real wire: the
 * client's generated key and SIG(0) are accepted by the daemon, a second
 * key for the same name is refused (exit 1), and zone discovery through a
 * DNS-SD PTR record (RFC 6763 §11) served by named.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TsigKeySpec } from '../helpers/named.js';
import { daemonYaml } from '../helpers/nsregd-lab.js';
import { addVeth, createNetns, LoggedProcess, REPO_ROOT, startNamedInNetns, type Netns, type NetnsNamed } from '../helpers/netns.js';
import { nsupdateUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';
import { errorMessage } from '../../src/errors.js';

const ZONE = 'dynamic.example.org.';
const NAME = `e2e.${ZONE}`;
const NSREGD_PORT = 8053;
const key: TsigKeySpec = { name: 'nsregd.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
/** The brief: a new address shows up in named within 2 s. */
const PROPAGATION_MS = 2000;
/** A client waiting for its daemon registers within one probe back-off step (capped at probe-interval, 1 s here) and a round trip. */
const REGISTER_AFTER_DAEMON_MS = 5000;

describe('nsregc end to end in a network namespace', () => {
  let ns: Netns | undefined;
  let named: NetnsNamed | undefined;
  let nsregd: LoggedProcess | undefined;
  let nsregdConf = '';
  let work: string;
  const clients: LoggedProcess[] = [];

  /** Starts bin/nsregc inside the namespace with HOME=`home` (no configuration file there). */
  function nsregc(home: string, ...args: string[]): LoggedProcess {
    assert.ok(ns);
    const child = ns.spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'nsregc'), ...args], {
      env: { ...process.env, HOME: home },
    });
    const p = new LoggedProcess(`nsregc ${args.join(' ')}`, child);
    clients.push(p);
    return p;
  }

  const direct = ['--dns-server', `127.0.0.1@${NSREGD_PORT}`, '--dns-tcp', '-i', 'veth0', '-n', 'e2e'];
  const a = (): Promise<string[]> => named!.query(NAME, 'A').then((l) => l.sort());
  const aaaa = (): Promise<string[]> => named!.query(NAME, 'AAAA').then((l) => l.sort());

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'nsregc-e2e-'));
    ns = await createNetns('nsregc-e2e');
    await addVeth(ns, 'veth0', 'veth1');
    named = await startNamedInNetns(
      ns,
      [
        // The SRV record discovery finds; its target is an IP literal FQDN, as nsregd itself answers.
        { name: ZONE, allowUpdateKey: key.name, records: [`_nsreg._tcp IN SRV 0 0 ${NSREGD_PORT} 127.0.0.1.`] },
        // RFC 6763 §11: browse domain of 192.0.2.0/24 is 0.2.0.192.in-addr.arpa.
        { name: '2.0.192.in-addr.arpa.', allowUpdateKey: key.name, records: [`r._dns-sd._udp.0 IN PTR ${ZONE}`] },
      ],
      [key],
    );
    const conf = path.join(work, 'nsregd.yaml');
    await writeFile(
      conf,
      daemonYaml(
        NSREGD_PORT,
        path.join(work, 'nsregd-data'),
        zoneYaml(ZONE, {
          'max-key-ttl': '720h',
          'max-addr-ttl': '1h',
          'allowed-nets': ['127.0.0.0/8', '192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'],
          upstreams: [nsupdateUpstream(ZONE, named.port, key, { timeout: '3s' })],
        }),
      ),
    );
    nsregdConf = conf;
    await startDaemon();
  });

  async function startDaemon(): Promise<void> {
    assert.ok(ns);
    nsregd = new LoggedProcess('nsregd', ns.spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'nsregd'), '-c', nsregdConf, '--debug']));
    await nsregd.waitForMsg('listening for registrations');
  }

  after(async () => {
    try {
      for (const c of clients) await c.kill();
      await nsregd?.kill();
      await named?.stop();
    } finally {
      await ns?.destroy();
      if (work !== undefined) await rm(work, { recursive: true, force: true });
    }
  });

  it('registers on defaults, follows address changes, skips deprecated ones; SIGTERM removes all and exits 0', async () => {
    const home = path.join(work, 'home1');
    const c = nsregc(home, ...direct, 'dynamic.example.org');
    await c.waitForMsg('found nsregd server for zone', { zone: ZONE, target: '127.0.0.1.', port: NSREGD_PORT });
    await c.waitForMsg('registering with nsregd server');

    // No configuration file: ~/.nsregc made private, a P-384 key (algorithm 14) generated there.
    const dirStat = await stat(path.join(home, '.nsregc'));
    assert.equal(dirStat.mode & 0o777, 0o700);
    const pub = await readFile(path.join(home, '.nsregc', 'nsregc.key'), 'utf8');
    assert.match(pub, /\sKEY\s+256\s+3\s+14\s/);
    assert.equal((await stat(path.join(home, '.nsregc', 'nsregc.private'))).mode & 0o777, 0o600);

    // The daemon accepted the client's key and signature: the name is claimed.
    await nsregd!.waitForMsg('new name claimed', { name: NAME });

    let t0 = Date.now();
    await ns!.ip('addr', 'add', '192.0.2.10/24', 'dev', 'veth0');
    await ns!.ip('addr', 'add', '2001:db8::10/64', 'dev', 'veth0', 'nodad');
    await eventually('A 192.0.2.10', a, (v) => v.includes('192.0.2.10'), PROPAGATION_MS - (Date.now() - t0));
    await eventually('AAAA 2001:db8::10', aaaa, (v) => v.includes('2001:db8::10'), PROPAGATION_MS - (Date.now() - t0));
    const reg = await c.waitForMsg('address registered', { address: '192.0.2.10' });
    assert.equal(reg['ttl'], 3600, 'addr-ttl for a permanent address');

    // Deprecated (preferred_lft 0) addresses are never sent; a usable one added after them is.
    await ns!.ip('addr', 'add', '198.51.100.20/24', 'dev', 'veth0', 'preferred_lft', '0');
    await ns!.ip('addr', 'add', '2001:db8::20/64', 'dev', 'veth0', 'nodad', 'preferred_lft', '0');
    t0 = Date.now();
    await ns!.ip('addr', 'add', '203.0.113.30/24', 'dev', 'veth0');
    await eventually('A 203.0.113.30', a, (v) => v.includes('203.0.113.30'), PROPAGATION_MS);
    await c.waitForMsg('address registered', { address: '203.0.113.30' });
    assert.deepEqual(await a(), ['192.0.2.10', '203.0.113.30']);
    assert.deepEqual(await aaaa(), ['2001:db8::10']);
    const mentioned = c.lines.filter((l) => l['address'] === '198.51.100.20' || l['address'] === '2001:db8::20');
    assert.deepEqual(mentioned, [], 'deprecated addresses are not registered');

    // ip addr del → the record goes away.
    t0 = Date.now();
    await ns!.ip('addr', 'del', '192.0.2.10/24', 'dev', 'veth0');
    await ns!.ip('addr', 'del', '2001:db8::10/64', 'dev', 'veth0');
    await eventually('A without 192.0.2.10', a, (v) => !v.includes('192.0.2.10'), PROPAGATION_MS);
    await eventually('no AAAA', aaaa, (v) => v.length === 0, PROPAGATION_MS - (Date.now() - t0));
    await c.waitForMsg('record removed', { address: '192.0.2.10' });
    assert.deepEqual(await a(), ['203.0.113.30']);

    c.child.kill('SIGTERM');
    assert.equal(await c.exited(), 0, c.dump());
    assert.deepEqual(await a(), []);
    assert.deepEqual(await aaaa(), []);
    await c.waitForMsg('records removed');
  });

  it('-k keeps the records on exit (SIGTERM, exit 0)', async () => {
    const c = nsregc(path.join(work, 'home1'), ...direct, '-k', 'dynamic.example.org');
    await c.waitForMsg('address registered', { address: '203.0.113.30' });
    assert.deepEqual(await a(), ['203.0.113.30']);
    c.child.kill('SIGTERM');
    assert.equal(await c.exited(), 0, c.dump());
    await c.waitForMsg('keeping records on exit');
    assert.deepEqual(await a(), ['203.0.113.30']);
  });

  it('SIGINT removes the records and exits 2', async () => {
    const c = nsregc(path.join(work, 'home1'), ...direct, 'dynamic.example.org');
    await c.waitForMsg('address registered', { address: '203.0.113.30' });
    c.child.kill('SIGINT');
    assert.equal(await c.exited(), 2, c.dump());
    assert.deepEqual(await a(), []);
  });

  it('a second client with another key for the same name is refused and exits 1', async () => {
    const first = nsregc(path.join(work, 'home1'), ...direct, 'dynamic.example.org');
    await first.waitForMsg('address registered', { address: '203.0.113.30' });

    const intruder = nsregc(path.join(work, 'home2'), ...direct, 'dynamic.example.org');
    assert.equal(await intruder.exited(), 1, intruder.dump());
    const refused = await intruder.waitForMsg('server refused registration');
    assert.equal(refused['rcode'], 'REFUSED');
    assert.equal(refused['reason'], 'Invalid key for name');
    assert.equal(intruder.stderr.trim().split('\n').length, 1, intruder.stderr);
    // The owner's record is untouched.
    assert.deepEqual(await a(), ['203.0.113.30']);

    first.child.kill('SIGTERM');
    assert.equal(await first.exited(), 0, first.dump());
    assert.deepEqual(await a(), []);
  });

  it('no nsregd server for the zone: keeps looking, with a log line each try; SIGTERM ends it with exit 0', async () => {
    const c = nsregc(path.join(work, 'home1'), ...direct, 'nowhere.example');
    await c.waitForMsg('no nsregd server for zone (no SRV record)', { zone: 'nowhere.example.' });
    await c.waitForMsg('looking for nsregd servers again');
    c.child.kill('SIGTERM');
    assert.equal(await c.exited(), 0, c.dump());
    assert.equal(c.stderr, '');
  });

  it('a signal during discovery (waiting for its retry) ends the run at once with its exit code', async () => {
    // UDP to a port nobody listens on: every browse query fails, and the retry waits dns-timeout (10 s).
    const c = nsregc(path.join(work, 'home1'), '--dns-server', '127.0.0.1@9', '-i', 'veth0', '-n', 'e2e');
    await c.waitForMsg('zone discovery failed; retrying once');
    const t0 = Date.now();
    c.child.kill('SIGINT');
    assert.equal(await c.exited(), 2, c.dump());
    assert.ok(Date.now() - t0 < 3000, `exited after ${Date.now() - t0} ms`);
    await c.waitForMsg('stopped');
  });

  it('discovers the zone through a DNS-SD PTR in named, finds nsregd by SRV and registers', async () => {
    await ns!.ip('addr', 'add', '192.0.2.10/24', 'dev', 'veth0');
    const c = nsregc(path.join(work, 'home1'), '--dns-server', `127.0.0.1@${named!.port}`, '--dns-tcp', '-i', 'veth0', '-n', 'e2e');
    await c.waitForMsg('found registration zone', { zone: ZONE, domain: '0.2.0.192.in-addr.arpa.' });
    await c.waitForMsg('found nsregd server for zone', { zone: ZONE, target: '127.0.0.1.', port: NSREGD_PORT });
    await eventually('A records', a, (v) => v.length === 2, 5000);
    assert.deepEqual(await a(), ['192.0.2.10', '203.0.113.30']);
    c.child.kill('SIGTERM');
    assert.equal(await c.exited(), 0, c.dump());
    assert.deepEqual(await a(), []);
  });

  it('a burst of 50 address events within a second gives one update; the next change another', async () => {
    await ns!.ip('addr', 'flush', 'dev', 'veth0');
    await ns!.ip('addr', 'add', '192.0.2.10/24', 'dev', 'veth0', 'valid_lft', '3000', 'preferred_lft', '3000');
    const c = nsregc(path.join(work, 'home1'), ...direct, '--print', 'dynamic.example.org');
    await c.waitForMsg('address registered', { address: '192.0.2.10' });
    const updates = (): number => c.lines.filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('update to ')).length;
    const before = updates();
    // NetworkManager-style churn: the registered address re-announced with new lifetimes, and another
    // address added, removed and added again; `ip -batch` makes it one burst of kernel events.
    const batch: string[] = [];
    for (let i = 0; i < 47; i++) batch.push(`address change 192.0.2.10/24 dev veth0 valid_lft ${3000 - i} preferred_lft ${3000 - i}`);
    batch.push('address add 192.0.2.20/24 dev veth0', 'address del 192.0.2.20/24 dev veth0', 'address add 192.0.2.20/24 dev veth0');
    const file = path.join(work, 'burst.batch');
    await writeFile(file, `${batch.join('\n')}\n`);
    const t0 = Date.now();
    await ns!.ip('-batch', file);
    assert.ok(Date.now() - t0 < 1000, 'the burst fits in one second');
    await c.waitForMsg('address registered', { address: '192.0.2.20' });
    assert.equal(updates(), before + 1, 'one update for the whole burst');
    // A change after the window closed is a new update: the count above was final.
    await ns!.ip('addr', 'add', '192.0.2.21/24', 'dev', 'veth0');
    await c.waitForMsg('address registered', { address: '192.0.2.21' });
    assert.equal(updates(), before + 2);
    assert.deepEqual(await a(), ['192.0.2.10', '192.0.2.20', '192.0.2.21']);
    c.child.kill('SIGTERM');
    assert.equal(await c.exited(), 0, c.dump());
    await ns!.ip('addr', 'flush', 'dev', 'veth0');
  });

  it('started before its network and its daemon: registers once the address and then nsregd appear', async () => {
    await nsregd!.kill();
    await ns!.ip('addr', 'flush', 'dev', 'veth0');
    // No zone given: discovery browses the networks of veth0, which has none yet.
    const conf = path.join(work, 'early.yaml');
    await writeFile(conf, ['probe-interval: 1s', 'interfaces: [veth0]', `dns-server: 127.0.0.1@${named!.port}`, 'dns-tcp: true', 'name: e2e',
      // The key the other tests claimed e2e with (relative names resolve beside the configuration file).
      `key-file: ${path.join(work, 'home1', '.nsregc', 'nsregc.key')}`, `private-key-file: ${path.join(work, 'home1', '.nsregc', 'nsregc.private')}`, ''].join('\n'));
    const c = nsregc(path.join(work, 'home1'), '-c', conf);
    await c.waitForMsg('no zone found yet; looking again');
    // The network comes up: the zone is found through its reverse browse domain, the server through SRV.
    await ns!.ip('addr', 'add', '192.0.2.10/24', 'dev', 'veth0');
    await c.waitForMsg('found registration zone', { zone: ZONE });
    await c.waitForMsg('found nsregd server for zone', { zone: ZONE });
    // nsregd is not running: the update fails on the network and the client waits for the server.
    await c.waitForMsg('server is not answering');
    const t0 = Date.now();
    await startDaemon();
    await eventually('A 192.0.2.10', a, (v) => v.includes('192.0.2.10'), REGISTER_AFTER_DAEMON_MS).catch((err: unknown) => {
      throw new Error(`${errorMessage(err)}\n${c.dump()}`);
    });
    assert.ok(Date.now() - t0 <= REGISTER_AFTER_DAEMON_MS);
    assert.equal(c.lines.some((l) => l['level'] === 60), false, 'no fatal line');
    c.child.kill('SIGTERM');
    assert.equal(await c.exited(), 0, c.dump());
    assert.deepEqual(await a(), []);
  });
});
