import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDaemonConfig } from '../../../src/config/daemon.js';
import { ConfigError } from '../../../src/config/errors.js';
import type { ServeUpstreamConfig } from '../../../src/config/upstreams/serve.js';

const FILE = '/etc/nsregd/nsregd.yaml';
const U = 'zones."dyn.example.org".upstreams[0]';

function serve(extra: Record<string, unknown>): ServeUpstreamConfig {
  const text = JSON.stringify({
    zones: {
      'dyn.example.org': {
        'max-key-ttl': '1h',
        'max-addr-ttl': '1h',
        'allowed-nets': ['127.0.0.0/8'],
        upstreams: [{ type: 'serve', 'listen-port': 5353, ...extra }],
      },
    },
  });
  const u = parseDaemonConfig(text, FILE).config.zones['dyn.example.org.']?.upstreams[0];
  if (u?.type !== 'serve') throw new Error('expected a serve upstream');
  return u;
}

describe('serve upstream: TCP limits', () => {
  it('defaults to 256 connections, 16 per source, 10 s idle; each can be set', () => {
    const d = serve({});
    assert.deepEqual([d.tcpConnections, d.tcpPerSource, d.tcpIdleTimeout], [256, 16, 10_000]);
    const s = serve({ 'tcp-connections': 8, 'tcp-per-source': 2, 'tcp-idle-timeout': '2s' });
    assert.deepEqual([s.tcpConnections, s.tcpPerSource, s.tcpIdleTimeout], [8, 2, 2000]);
    // A connection cap below the default per-source cap lowers that too.
    assert.equal(serve({ 'tcp-connections': 4 }).tcpPerSource, 4);
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['tcp-connections', { 'tcp-connections': 0 }, 'range'],
    ['tcp-connections', { 'tcp-connections': 70_000 }, 'range'],
    ['tcp-per-source', { 'tcp-connections': 4, 'tcp-per-source': 5 }, 'range'],
    ['tcp-idle-timeout', { 'tcp-idle-timeout': '11m' }, 'range'],
    ['tcp-idle-timeout', { 'tcp-idle-timeout': 'soon' }, 'duration'],
  ];
  for (const [key, extra, reason] of bad) {
    it(`refuses ${JSON.stringify(extra)} at ${key}`, () => {
      assert.throws(
        () => serve(extra),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.reason, reason);
          assert.equal(err.keyPath, `${U}.${key}`);
          return true;
        },
      );
    });
  }
});
