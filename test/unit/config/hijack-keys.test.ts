import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDaemonConfig } from '../../../src/config/daemon.js';
import { ConfigError } from '../../../src/config/errors.js';

const FILE = '/etc/nsregd/nsregd.yaml';

function yaml(zoneExtra: string, upstreamExtra = ''): string {
  return `zones:
  dynamic.example.org:
    max-key-ttl: 24h
    max-addr-ttl: 1h
    allowed-nets: [127.0.0.0/8]
${zoneExtra}    upstreams:
      - type: nsupdate
        hostname: 127.0.0.1
        port: 53
        timeout: 10s
        zone: example.org
        record-ttl: 60s
        tsig-name: nsregd
        tsig-secret: c2VjcmV0LWZvci10aGUtZXhhbXBsZS1vbmx5IQ==
${upstreamExtra}`;
}

function zoneOf(text: string) {
  const zone = parseDaemonConfig(text, FILE).config.zones['dynamic.example.org.'];
  assert.ok(zone);
  return zone;
}

describe('config: label-syntax and protect-existing', () => {
  it('defaults: host names only, existing names protected', () => {
    const zone = zoneOf(yaml(''));
    assert.equal(zone.labelSyntax, 'hostname');
    const up = zone.upstreams[0];
    assert.ok(up?.type === 'nsupdate');
    assert.equal(up.protectExisting, true);
  });

  it('takes label-syntax printable (any case) and protect-existing false', () => {
    const zone = zoneOf(yaml('    label-syntax: Printable\n', '        protect-existing: false\n'));
    assert.equal(zone.labelSyntax, 'printable');
    const up = zone.upstreams[0];
    assert.ok(up?.type === 'nsupdate');
    assert.equal(up.protectExisting, false);
  });

  it('refuses other label syntaxes, naming file, key path and value', () => {
    assert.throws(
      () => zoneOf(yaml('    label-syntax: wildcard\n')),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, /^\/etc\/nsregd\/nsregd\.yaml: zones\."dynamic\.example\.org"\.label-syntax: .*hostname, printable.*wildcard/);
        return true;
      },
    );
  });

  it('refuses a protect-existing that is not a boolean', () => {
    assert.throws(() => zoneOf(yaml('', '        protect-existing: maybe\n')), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /protect-existing/);
      return true;
    });
  });
});
