/**
 * nsregc configuration: a host name that is a domain name gives its first
 * label, and the liveness probe interval is a key of its own.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CLIENT_DEFAULTS, defaultClientConfig, loadClientConfig, parseClientConfig } from '../../../src/config/client.js';
import { ConfigError } from '../../../src/config/errors.js';

describe('nsregc name from an FQDN host name', () => {
  const cases: Array<{ hostname: string; name: string; warned: boolean }> = [
    { hostname: 'host.example.com', name: 'host', warned: true },
    { hostname: 'Laptop.Home.Arpa.', name: 'laptop', warned: true },
    { hostname: 'plain', name: 'plain', warned: false },
  ];
  for (const c of cases) {
    it(`${c.hostname} → ${c.name}`, async () => {
      const loaded = await loadClientConfig({ home: '/nonexistent-home', hostname: c.hostname, searchPaths: [] });
      assert.equal(loaded.config.name, c.name);
      const said = loaded.warnings.filter((w) => w.includes('registering its first label'));
      assert.equal(said.length, c.warned ? 1 : 0, loaded.warnings.join('\n'));
      if (c.warned) assert.ok(said[0].includes(`"${c.name}"`), said[0]);
    });
  }

  it('a name in the file or on the command line is used as written, without a word about the host name', async () => {
    const fromFile = parseClientConfig('name: other\n', '/etc/nsregc/nsregc.yaml', { hostname: 'host.example.com' });
    assert.equal(fromFile.config.name, 'other');
    assert.deepEqual(fromFile.warnings, []);
    const flagged = await loadClientConfig({ home: '/nonexistent-home', hostname: 'host.example.com', searchPaths: [], nameFlag: true });
    assert.deepEqual(flagged.warnings, []);
  });
});

describe('nsregc probe-interval', () => {
  it('defaults to 15 s', () => {
    assert.equal(CLIENT_DEFAULTS['probe-interval'], 15_000);
    assert.equal(defaultClientConfig('/nonexistent-home', { hostname: 'h' }).probeInterval, 15_000);
  });

  it('takes a duration; zero, no unit and beyond the timer limit are refused naming the key', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregc-probe-'));
    try {
      const file = path.join(dir, 'nsregc.yaml');
      assert.equal(parseClientConfig('probe-interval: 2m30s\n', file, { hostname: 'h' }).config.probeInterval, 150_000);
      for (const bad of ['0s', '15', '600h']) {
        assert.throws(
          () => parseClientConfig(`probe-interval: ${bad}\n`, file, { hostname: 'h' }),
          (err: unknown) => err instanceof ConfigError && err.keyPath === 'probe-interval' && err.message.includes(file),
          bad,
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
