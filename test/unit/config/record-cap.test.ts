import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDaemonConfig, ZONE_DEFAULTS } from '../../../src/config/daemon.js';
import { ConfigError } from '../../../src/config/errors.js';

const FILE = '/etc/nsregd/nsregd.yaml';

function zoneWith(extra: Record<string, unknown>): string {
  return JSON.stringify({
    zones: { 'dyn.example.org': { 'max-key-ttl': '1h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [], ...extra } },
  });
}

describe('daemon config: max-records-per-name', () => {
  it('defaults to 16 and takes 1 to 4096', () => {
    assert.equal(ZONE_DEFAULTS['max-records-per-name'], 16);
    assert.equal(parseDaemonConfig(zoneWith({}), FILE).config.zones['dyn.example.org.']?.maxRecordsPerName, 16);
    for (const n of [1, 4096]) {
      assert.equal(parseDaemonConfig(zoneWith({ 'max-records-per-name': n }), FILE).config.zones['dyn.example.org.']?.maxRecordsPerName, n);
    }
  });

  for (const [value, reason] of [[0, 'range'], [4097, 'range'], [2.5, 'range'], ['many', 'type']] as const) {
    it(`refuses ${JSON.stringify(value)} naming file, key path and value`, () => {
      assert.throws(
        () => parseDaemonConfig(zoneWith({ 'max-records-per-name': value }), FILE),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.reason, reason);
          assert.ok(err.message.startsWith(`${FILE}: zones."dyn.example.org".max-records-per-name: `), err.message);
          assert.ok(err.message.includes(String(value)), err.message);
          return true;
        },
      );
    });
  }
});
