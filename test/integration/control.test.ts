/**
 * The control channel against a running bin/nsregd with a real named
 * upstream: `nsregd status` and `nsregd names list|show|release` (the
 * commands as an operator types them, `-c` naming the configuration and so
 * the socket); release removes the name's records at BIND and lets another
 * key claim the name; the socket is 0600 and refuses another user; a stale
 * socket left by kill -9 is replaced; a second daemon on the same socket
 * does not start; a stopped daemon gives a clear one-line error; a release
 * while the upstream is down frees the name and says the removal waits.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Rcode } from '../../src/dns/constants.js';
import { LOOPBACK_ZONE, nsupdateUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';
import { daemonYaml, startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { a, makeClient, signedUpdate, type TestClient } from '../helpers/sig0-client.js';
import { requireTool, run, type RunResult } from '../helpers/tools.js';

const ZONE = 'dynamic.example.org.';
const REV = '2.0.192.in-addr.arpa.';
const key: TsigKeySpec = { name: 'nsregd.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
const BIN = path.resolve('bin/nsregd');

const now = (): number => Math.floor(Date.now() / 1000);

describe('nsregd control socket and admin commands', () => {
  let named: NamedLab;
  let d: NsregdLab | undefined;
  let zones: string;
  let dir: string;
  let port: number;

  const admin = (...args: string[]): Promise<RunResult> => run(process.execPath, [BIN, ...args, '-c', d!.configPath]);
  async function claim(c: TestClient, address: string): Promise<number> {
    const r = await d!.send(signedUpdate(c, [a(c.name, address, 300)], { now: now(), id: Math.floor(Math.random() * 65535) }));
    return r.rcode;
  }

  before(async () => {
    named = await startNamed({ tsigKeys: [key], zones: [ZONE, REV].map((name) => ({ name, allowUpdateKey: key.name })) });
    zones = zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [nsupdateUpstream(ZONE, named.port, key, { timeout: '3s', 'reverse-zones': [REV] })] });
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-control-'));
    // `nobody` must reach the socket's directory for the permission test: the socket's own mode is what refuses it.
    await chmod(dir, 0o755);
    port = await freePort();
    d = await startNsregd({ zonesYaml: zones, dir, port });
    await chmod(d.dataDir, 0o755);
  });
  after(async () => {
    await d?.stop();
    await named?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('status, names list and show describe the daemon and its claims', async () => {
    const host = makeClient('laptop', ZONE);
    assert.equal(await claim(host, '192.0.2.10'), Rcode.NOERROR);

    const status = await admin('status', '--json');
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as { zones: Array<{ zone: string; names: number; records: number; upstreams: Array<{ state: string }> }>; limits: Record<string, string> };
    assert.deepEqual(
      s.zones.map((z) => [z.zone, z.names, z.records, z.upstreams.map((u) => u.state)]),
      [[ZONE, 1, 1, ['up']]],
    );
    assert.equal(s.limits['sig-rate-per-source'], '50');
    const human = await admin('status');
    assert.match(human.stdout, /^nsregd \S+, instance [0-9a-f]{16}, up \d+ s/);

    const list = await admin('names', 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    const names = JSON.parse(list.stdout) as Array<{ name: string; keyTag: number; algorithm: string; records: Array<{ address: string; upstreams: Array<{ state: string }> }> }>;
    assert.deepEqual(names.map((n) => [n.name, n.keyTag, n.algorithm]), [[host.name, host.keyTag, 'ECDSAP384SHA384']]);
    assert.deepEqual(names[0]?.records.map((r) => [r.address, r.upstreams.map((u) => u.state)]), [['192.0.2.10', ['installed']]]);

    const show = await admin('names', 'show', host.name.toUpperCase());
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, new RegExp(`^${host.name.replace(/\./g, '\\.')}  key ${host.keyTag} ECDSAP384SHA384`));
    assert.match(show.stdout, /A 192\.0\.2\.10 ttl 300/);

    const missing = await admin('names', 'show', `nobody.${ZONE}`);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `nsregd: nobody.${ZONE} is not claimed\n`);
    const elsewhere = await admin('names', 'list', '--zone', 'other.example.');
    assert.equal(elsewhere.code, 1);
    assert.match(elsewhere.stderr, /other\.example\. is not a served zone/);
  });

  it('release removes the records at BIND, durably, and the next key claims the name anew', async () => {
    const owner = makeClient('retired', ZONE);
    assert.equal(await claim(owner, '192.0.2.20'), Rcode.NOERROR);
    assert.deepEqual(await named.query(owner.name, 'A'), ['192.0.2.20']);
    const thief = makeClient('retired', ZONE);
    assert.notEqual(await claim(thief, '192.0.2.21'), Rcode.NOERROR, 'another key is refused while the name is claimed');

    const released = await admin('names', 'release', owner.name);
    assert.equal(released.code, 0, released.stderr);
    assert.equal(released.stdout, `released ${owner.name} (removed A 192.0.2.20); the next key to claim it owns it\n`);
    assert.deepEqual(await named.query(owner.name, 'A'), []);
    assert.deepEqual(await named.query(`20.${REV}`, 'PTR'), []);

    // Durable: a restart does not bring the old key back.
    await d!.stop();
    d = await startNsregd({ zonesYaml: zones, dir, port });
    const newcomer = makeClient('retired', ZONE);
    assert.equal(await claim(newcomer, '192.0.2.22'), Rcode.NOERROR);
    assert.deepEqual(await named.query(owner.name, 'A'), ['192.0.2.22']);
    const again = await admin('names', 'release', owner.name, '--keep-records');
    assert.equal(again.stdout, `released ${owner.name} (no records removed); the next key to claim it owns it\n`);
    assert.deepEqual(await named.query(owner.name, 'A'), ['192.0.2.22'], '--keep-records leaves them');
    const twice = await admin('names', 'release', owner.name);
    assert.equal(twice.code, 1);
    assert.equal(twice.stderr, `nsregd: ${owner.name} is not claimed\n`);
  });

  it('the socket is 0600: another user is refused with a clear message', async () => {
    const socket = path.join(d!.dataDir, 'control.sock');
    const st = await stat(socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    const runuser = requireTool('runuser');
    // `nobody` may traverse the temporary directories but not open the socket.
    const r = await run(runuser, ['-u', 'nobody', '--', process.execPath, '-e', `
      const net = require('node:net');
      const s = net.connect(${JSON.stringify(socket)});
      s.on('connect', () => { console.log('connected'); process.exit(0); });
      s.on('error', (e) => { console.log(e.code); process.exit(0); });
    `]);
    assert.equal(r.stdout.trim(), 'EACCES', r.stderr);
  });

  it('kill -9 leaves a stale socket that the next start replaces; a second daemon on the socket does not start; a stopped one is named', async () => {
    d!.child.kill('SIGKILL');
    await d!.exited();
    const down = await admin('status');
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^nsregd: cannot reach nsregd on \S+control\.sock: nsregd is not running/);
    d = await startNsregd({ zonesYaml: zones, dir, port });
    assert.equal((await admin('status')).code, 0);
    // A second daemon on the same data directory (another port): refused before it touches anything.
    const other = path.join(dir, 'second.yaml');
    await writeFile(other, daemonYaml(await freePort(), d.dataDir, zones));
    const second = await run(process.execPath, [BIN, '-c', other]);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /another nsregd answers on \S+control\.sock/);
    assert.equal((await admin('status')).code, 0, 'the first one still answers');
    assert.deepEqual(await named.query(`laptop.${ZONE}`, 'A'), ['192.0.2.10'], 'and its records are untouched');
  });

  it('release while the upstream is down: the name is free at once, the removal waits in the outbox and says so', async () => {
    await named.stop();
    const r = await admin('names', 'release', `laptop.${ZONE}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      `released laptop.${ZONE} (removed A 192.0.2.10; an upstream has not taken the removal yet, it is retried until it does); the next key to claim it owns it\n`,
    );
    const list = JSON.parse((await admin('names', 'list', '--json')).stdout) as Array<{ name: string }>;
    assert.equal(list.some((n) => n.name === `laptop.${ZONE}`), false);
    const status = JSON.parse((await admin('status', '--json')).stdout) as { zones: Array<{ upstreams: Array<{ state: string; pending: number }> }> };
    assert.deepEqual(status.zones[0]?.upstreams.map((u) => [u.state, u.pending > 0]), [['failing', true]]);
  });
});
