import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { loadDaemonConfig, parseDaemonConfig } from '../../../src/config/daemon.js';
import { LIMITS_DEFAULTS } from '../../../src/config/limits.js';
import { loadClientConfig, parseClientConfig } from '../../../src/config/client.js';

// dist/test/unit/config/ → repository root
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

describe('shipped example configurations', () => {
  it('nsregd.example.yaml loads without warnings and runs the built-in zone server', async () => {
    const file = path.join(ROOT, 'nsregd.example.yaml');
    const { config, warnings } = await loadDaemonConfig(file);
    assert.deepEqual(warnings, []);
    assert.equal(config.listenAddr, 'localhost');
    assert.equal(config.listenPort, 8053);
    assert.equal(config.dataDir, path.join(ROOT, '.nsregd-data'));
    const zone = config.zones['dynamic.example.org.'];
    assert.ok(zone);
    assert.equal(zone.upstreams.length, 1);
    assert.equal(zone.disabledUpstreams, 1);
    const up = zone.upstreams[0];
    assert.ok(up?.type === 'serve');
    assert.equal(up.listenAddr, '127.0.0.1');
    assert.equal(up.listenPort, 5300);
    assert.ok(zone.reservedNames.includes('ns'), 'the default primary ns.<zone> cannot be claimed');
    // The limits: section shows every key with its default.
    const text = await readFile(file, 'utf8');
    assert.deepEqual(config.limits, parseDaemonConfig('zones: {}\n', file).config.limits);
    for (const key of Object.keys(LIMITS_DEFAULTS)) assert.match(text, new RegExp(`^  ${key}: `, 'm'), key);
  });

  it('nsregd.example.yaml with the nsupdate and unbound blocks switched on still loads', async () => {
    const file = path.join(ROOT, 'nsregd.example.yaml');
    const lines = (await readFile(file, 'utf8')).split('\n');
    // Uncomment each "# - type: X" block: its lines start with "      # " and end at the first other line.
    for (const type of ['nsupdate', 'unbound']) {
      const start = lines.findIndex((l) => l.includes(`# - type: ${type}`));
      assert.ok(start > 0, type);
      for (let i = start; i < lines.length && /^ {6}#( |$)/.test(lines[i] ?? ''); i++) {
        lines[i] = (lines[i]).replace(/^( {6})# ?/, '$1');
      }
    }
    const { config, warnings } = parseDaemonConfig(lines.join('\n'), file);
    assert.deepEqual(warnings, []);
    const types = config.zones['dynamic.example.org.']?.upstreams.map((u) => u.type);
    assert.deepEqual(types, ['serve', 'nsupdate', 'unbound']);
  });

  it('nsregc.example.yaml loads without warnings and matches the defaults', async () => {
    const file = path.join(ROOT, 'nsregc.example.yaml');
    const { config, warnings } = await loadClientConfig({ file, home: '/nonexistent-home', hostname: 'examplehost' });
    assert.deepEqual(warnings, []);
    const defaults = await loadClientConfig({ home: '/nonexistent-home', searchPaths: [], hostname: 'examplehost' });
    const strip = (c: typeof config): object => ({ ...c, file: null, configDir: '', keyFile: '', privateKeyFile: '' });
    assert.deepEqual(strip(config), strip(defaults.config));
    assert.equal(config.keyFile, path.join(ROOT, 'nsregc.key'));
    assert.equal(parseClientConfig(await readFile(file, 'utf8'), file).warnings.length, 0);
  });
});
