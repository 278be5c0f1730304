import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as path from 'node:path';
import { loadDaemonConfig } from '../../../src/config/daemon.js';
import { loadClientConfig, parseClientConfig } from '../../../src/config/client.js';

// dist/test/unit/config/ → repository root
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

describe('shipped example configurations', () => {
  it('nsregd.example.yaml loads without warnings', async () => {
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
    assert.ok(up?.type === 'nsupdate');
    assert.equal(up.hostname, '127.0.0.1');
    assert.equal(up.port, 53);
  });

  it('nsregd.example.yaml with the unbound block switched on still loads', async () => {
    const file = path.join(ROOT, 'nsregd.example.yaml');
    const text = await readFile(file, 'utf8');
    // Uncomment the "# - type: unbound" block: lines starting with "      # " / "      #   ".
    const lines = text.split('\n');
    const start = lines.findIndex((l) => l.includes('# - type: unbound'));
    assert.ok(start > 0);
    let i = start;
    while (i < lines.length && /^ {6}#( |$)/.test(lines[i] ?? '')) {
      lines[i] = (lines[i] as string).replace(/^( {6})# ?/, '$1');
      i++;
    }
    const { parseDaemonConfig } = await import('../../../src/config/daemon.js');
    const { config } = parseDaemonConfig(lines.join('\n'), file);
    const types = config.zones['dynamic.example.org.']?.upstreams.map((u) => u.type);
    assert.deepEqual(types, ['nsupdate', 'unbound']);
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
