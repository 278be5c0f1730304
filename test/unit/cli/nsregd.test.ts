/**
 * What `nsregd --check-config` prints: the effective settings, the
 * `limits:` section with every key (defaults included) on one line.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { configSummary } from '../../../src/cli/nsregd.js';
import { parseDaemonConfig } from '../../../src/config/daemon.js';

const FILE = '/etc/nsregd/nsregd.yaml';
const ZONE = 'zones:\n  dyn.example.org:\n    max-key-ttl: 1h\n    max-addr-ttl: 1h\n    allowed-nets: [10.0.0.0/8]\n    upstreams: [{ type: serve }]\n';

describe('nsregd --check-config summary', () => {
  it('prints every limit, defaults included', () => {
    const lines = configSummary(parseDaemonConfig(ZONE, FILE).config).split('\n');
    assert.deepEqual(lines, [
      `config ${FILE}: OK`,
      'listen localhost port 8053 (TCP), data-dir /var/lib/nsregd',
      'limits: sig-rate-per-source 50, sig-burst-per-source 100, checks-in-flight 16, checks-per-source 16, connections 512, ' +
        'connections-per-source 32, idle-timeout 30s, message-timeout 5s, max-message-size 65535, records-per-name 16, replay-window 1h0m0s',
      'store: type: files',
      'zone dyn.example.org.: max-key-ttl 1h0m0s, max-addr-ttl 1h0m0s, allowed-nets [10.0.0.0/8], max-records-per-name 16, upstreams: serve',
    ]);
  });

  it('prints configured limits, and a zone\'s records cap from limits or its own key', () => {
    const text =
      'limits:\n  sig-rate-per-source: 0\n  checks-per-source: 4096\n  message-timeout: 1500ms\n  records-per-name: 3\n' +
      ZONE +
      '  b.example.org:\n    max-key-ttl: 1h\n    max-addr-ttl: 1h\n    allowed-nets: [10.0.0.0/8]\n    max-records-per-name: 40\n    upstreams: [{ type: serve }]\n';
    const summary = configSummary(parseDaemonConfig(text, FILE).config);
    assert.match(summary, /^limits: sig-rate-per-source 0, sig-burst-per-source 100, checks-in-flight 16, checks-per-source 4096, .* message-timeout 1\.5s, .* records-per-name 3, replay-window 1h0m0s$/m);
    assert.match(summary, /^zone dyn\.example\.org\.: .*max-records-per-name 3, /m);
    assert.match(summary, /^zone b\.example\.org\.: .*max-records-per-name 40, /m);
  });
});
