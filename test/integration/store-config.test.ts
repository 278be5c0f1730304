/**
 * The `store:` section on the real bin/nsregd: a SIGHUP that changes it logs
 * that it takes effect at the next start (and the daemon keeps running on
 * the store it started with), without a secret in the log; `--check-config`
 * prints the store settings, `password: (set)` for the password.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { serveUpstream, zoneYaml, LOOPBACK_ZONE } from '../helpers/config-yaml.js';
import { freePort } from '../helpers/ports.js';
import { daemonYaml, startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';

const ZONE = 'dynamic.example.org.';
const zones = zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [serveUpstream(await freePort())] });
const SECRET = 'store-password-never-logged';
const ETCD = `store:\n  type: etcd\n  endpoints: [https://127.0.0.1:1]\n  username: nsregd\n  password: ${SECRET}\n  lease: 5s\n`;

describe('nsregd: the store section', () => {
  let d: NsregdLab | undefined;
  after(() => d?.stop());

  it('SIGHUP with a changed store: a warning, the running store kept, no secret logged', async () => {
    d = await startNsregd({ zonesYaml: zones });
    await d.writeConfig(daemonYaml(d.port, d.dataDir, zones, '127.0.0.1', ETCD));
    d.signal('SIGHUP');
    const warning = await d.waitForLog('store changed: takes effect at the next start');
    assert.deepEqual(warning.old, [['type', 'files']]);
    assert.deepEqual(warning.new, [
      ['type', 'etcd'],
      ['endpoints', 'https://127.0.0.1:1'],
      ['prefix', '/nsregd'],
      ['username', 'nsregd'],
      ['password', '(set)'],
      ['timeout', '2s'],
      ['lease', '5s'],
    ]);
    await d.waitForLogCount('configuration reloaded', 1);
    // Still on the files store: the same file again is again a change from it.
    d.signal('SIGHUP');
    await d.waitForLogCount('configuration reloaded', 2);
    await d.waitForLogCount('store changed', 2);
    // Back to the files store: no warning.
    await d.writeConfig(daemonYaml(d.port, d.dataDir, zones, '127.0.0.1', 'store:\n  type: files\n'));
    d.signal('SIGHUP');
    await d.waitForLogCount('configuration reloaded', 3);
    assert.equal(d.logs().filter((l) => String(l.msg).includes('store changed')).length, 2);
    assert.ok(!d.logs().some((l) => JSON.stringify(l).includes(SECRET)), 'the password is in the log');
  });

  it('--check-config prints the store settings, never the password', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-store-'));
    try {
      const file = path.join(dir, 'nsregd.yaml');
      await writeFile(file, daemonYaml(8053, path.join(dir, 'data'), zones, '127.0.0.1', ETCD), { mode: 0o600 });
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.resolve('bin/nsregd'), '--check-config', '-c', file]);
      assert.equal(stderr, '');
      assert.ok(
        stdout.split('\n').includes('store: type: etcd, endpoints: https://127.0.0.1:1, prefix: /nsregd, username: nsregd, password: (set), timeout: 2s, lease: 5s'),
        stdout,
      );
      assert.ok(!stdout.includes(SECRET));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
