/**
 * Roaming, end to end inside a network namespace made for the test: a
 * laptop moves from one network to another. Two nsregd serve the same
 * zone, each the DNS server of "its" network (port 53 on 127.0.0.1 and
 * 127.0.0.2, answering the zone's SRV with itself) with its own built-in
 * zone server. bin/nsregc, on the namespace's /etc/resolv.conf (`ip netns
 * exec` mounts /etc/netns/<name>/resolv.conf there), registers with the
 * first; then the resolver changes and veth0's address is replaced by one
 * on another prefix. The client notices the network change, looks the
 * zone up again through the new resolver, registers the new address with
 * the second daemon and, the two daemons having different start-up
 * identifiers, removes its records from the first.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LOOPBACK_ZONE, serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';
import { daemonYaml } from '../helpers/nsregd-lab.js';
import { addVeth, createNetns, digInNetns, LoggedProcess, REPO_ROOT, type Netns } from '../helpers/netns.js';
import { errorMessage } from '../../src/errors.js';

const ZONE = 'roam.example.org.';
const NAME = `laptop.${ZONE}`;
/** Zone server ports of the two networks' daemons (the namespace is ours: any port is free). */
const SERVE_PORTS = [5301, 5302] as const;
/**
 * From the move to the new address resolving at the new network's daemon:
 * the network-change settle window (1 s), the look-up, the registration.
 */
const ROAM_MS = 5000;

describe('nsregc roaming between two networks', () => {
  let ns: Netns | undefined;
  let work = '';
  let resolvDir = '';
  const procs: LoggedProcess[] = [];

  function spawn(label: string, bin: 'nsregd' | 'nsregc', args: readonly string[]): LoggedProcess {
    assert.ok(ns);
    const p = new LoggedProcess(label, ns.spawn(process.execPath, [path.join(REPO_ROOT, 'bin', bin), ...args], { env: { ...process.env, HOME: work } }));
    procs.push(p);
    return p;
  }

  const records = (i: 0 | 1): Promise<string[]> => digInNetns(ns!, SERVE_PORTS[i], NAME, 'A');

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'nsregc-roam-'));
    ns = await createNetns('nsregc-roam');
    await addVeth(ns, 'veth0', 'veth1');
    resolvDir = path.join('/etc/netns', ns.name);
    await mkdir(resolvDir, { recursive: true });
    // Written before any process starts in the namespace: `ip netns exec` mounts it then.
    await writeFile(path.join(resolvDir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
    for (const [i, listen] of ['127.0.0.1', '127.0.0.2'].entries()) {
      const conf = path.join(work, `nsregd${i}.yaml`);
      await writeFile(
        conf,
        daemonYaml(53, path.join(work, `data${i}`), zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(SERVE_PORTS[i as 0 | 1])] }), listen),
      );
      await spawn(`nsregd@${listen}`, 'nsregd', ['-c', conf]).waitForMsg('listening for registrations');
    }
  });

  after(async () => {
    try {
      for (const p of procs.reverse()) await p.kill();
    } finally {
      await ns?.destroy();
      if (resolvDir !== '') await rm(resolvDir, { recursive: true, force: true });
      if (work !== '') await rm(work, { recursive: true, force: true });
    }
  });

  it('a new resolver and a new prefix: the zone is looked up again, the new address goes to the new daemon, the lost one leaves the old', async () => {
    await ns!.ip('addr', 'add', '192.0.2.10/24', 'dev', 'veth0');
    const conf = path.join(work, 'nsregc.yaml');
    await writeFile(
      conf,
      ['zones: [roam.example.org]', 'discover-zones: false', 'dns-tcp: true', 'interfaces: [veth0]', 'name: laptop', 'probe-interval: 1s', ''].join('\n'),
    );
    const c = spawn('nsregc', 'nsregc', ['-c', conf]);
    await c.waitForMsg('found nsregd server for zone', { zone: ZONE, target: '127.0.0.1.' });
    await eventually('the first network\'s record', () => records(0), (v) => v.join() === '192.0.2.10', ROAM_MS);

    // The move: another resolver (rewritten in place, so the mount shows it) and another prefix.
    await writeFile(path.join(resolvDir, 'resolv.conf'), 'nameserver 127.0.0.2\n');
    const t0 = Date.now();
    await ns!.ip('addr', 'del', '192.0.2.10/24', 'dev', 'veth0');
    await ns!.ip('addr', 'add', '198.51.100.10/24', 'dev', 'veth0');
    const fail = (err: unknown): never => {
      throw new Error(`${errorMessage(err)}\n${c.dump()}`);
    };
    await eventually('the new address at the second network\'s daemon', () => records(1), (v) => v.join() === '198.51.100.10', ROAM_MS).catch(fail);
    assert.ok(Date.now() - t0 <= ROAM_MS, `${Date.now() - t0} ms`);
    await c.waitForMsg('the zone\'s nsregd server changed; registering with the new one', { zone: ZONE });
    // The two daemons answered with different start-up identifiers: certainly not one daemon, so nothing stays behind.
    await c.waitForMsg('the previous nsregd server is another daemon; removing our records there', { zone: ZONE });
    await eventually('the lost address gone from the first network\'s daemon', () => records(0), (v) => v.length === 0, ROAM_MS).catch(fail);

    c.child.kill('SIGTERM');
    assert.equal(await c.exited(), 0, c.dump());
    assert.deepEqual(await records(1), [], 'SIGTERM removes the record at the daemon in use');
  });
});
