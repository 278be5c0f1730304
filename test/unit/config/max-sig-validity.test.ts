import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { DAEMON_DEFAULTS, parseDaemonConfig } from '../../../src/config/daemon.js';

const FILE = '/etc/nsregd/nsregd.yaml';

describe('daemon config: max-sig-validity', () => {
  it('defaults to 1h and takes a duration up to 24h', () => {
    assert.equal(parseDaemonConfig('zones:\n', FILE).config.limits.replayWindow, 3600_000);
    assert.equal(DAEMON_DEFAULTS['max-sig-validity'], 3600_000);
    assert.equal(parseDaemonConfig('max-sig-validity: 10m\nzones:\n', FILE).config.limits.replayWindow, 600_000);
    assert.equal(parseDaemonConfig('max-sig-validity: 24h\nzones:\n', FILE).config.limits.replayWindow, 86_400_000);
  });

  it('refuses more than 24h, zero and bare numbers, naming file, key and value', () => {
    assert.throws(() => parseDaemonConfig('max-sig-validity: 8760h\nzones:\n', FILE), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.match(err.message, /^\/etc\/nsregd\/nsregd\.yaml: max-sig-validity: .*24h.*8760h/);
      return true;
    });
    assert.throws(() => parseDaemonConfig('max-sig-validity: 0s\nzones:\n', FILE), { code: 'ERR_CONFIG', keyPath: 'max-sig-validity' });
    assert.throws(() => parseDaemonConfig('max-sig-validity: 3600\nzones:\n', FILE), { code: 'ERR_CONFIG', keyPath: 'max-sig-validity' });
  });
});
