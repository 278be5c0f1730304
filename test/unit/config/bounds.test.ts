import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientConfig } from '../../../src/config/client.js';
import { parseDaemonConfig } from '../../../src/config/daemon.js';
import { ConfigError } from '../../../src/config/errors.js';
import { MINIMAL_UPSTREAMS } from '../../helpers/upstream-trees.js';

const FILE = '/etc/nsregd/nsregd.yaml';
type Tree = Record<string, unknown>;

const UPSTREAMS: Record<string, Tree> = MINIMAL_UPSTREAMS;

function daemon(zone: Tree, upstream: Tree): string {
  return JSON.stringify({
    zones: { 'dynamic.example.org': { 'max-key-ttl': '720h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], ...zone, upstreams: [upstream] } },
  });
}

// Timers: setTimeout holds at most 2^31 − 1 ms (596h31m23.647s). TTLs: RFC 2181 §8, 2^31 − 1 s (596523h14m7s).
const TIMER_MAX = '596h31m23.647s';
const TIMER_OVER = '596h31m23.648s';
const TTL_MAX = '596523h14m7s';
const TTL_OVER = '596523h14m8s';

/** [config, key path, largest value, one past it, the limit as the message names it] */
const CASES: Array<[string, string, (v: string) => string, string, string, string]> = [
  ['daemon', 'zones."dynamic.example.org".max-key-ttl', (v) => daemon({ 'max-key-ttl': v }, UPSTREAMS.nsupdate), TTL_MAX, TTL_OVER, TTL_MAX],
  ['daemon', 'zones."dynamic.example.org".max-addr-ttl', (v) => daemon({ 'max-addr-ttl': v }, UPSTREAMS.nsupdate), TTL_MAX, TTL_OVER, TTL_MAX],
  ['daemon', 'zones."dynamic.example.org".upstreams[0].timeout', (v) => daemon({}, { ...UPSTREAMS.nsupdate, timeout: v }), TIMER_MAX, TIMER_OVER, TIMER_MAX],
  ['daemon', 'zones."dynamic.example.org".upstreams[0].record-ttl', (v) => daemon({}, { ...UPSTREAMS.nsupdate, 'record-ttl': v }), TTL_MAX, TTL_OVER, TTL_MAX],
  ['daemon', 'zones."dynamic.example.org".upstreams[0].timeout', (v) => daemon({}, { ...UPSTREAMS.unbound, timeout: v }), TIMER_MAX, TIMER_OVER, TIMER_MAX],
  ['daemon', 'zones."dynamic.example.org".upstreams[0].record-ttl', (v) => daemon({}, { ...UPSTREAMS.unbound, 'record-ttl': v }), TTL_MAX, TTL_OVER, TTL_MAX],
  ['daemon', 'zones."dynamic.example.org".upstreams[0].record-ttl', (v) => daemon({}, { ...UPSTREAMS.serve, 'record-ttl': v }), TTL_MAX, TTL_OVER, TTL_MAX],
  ['daemon', 'zones."dynamic.example.org".upstreams[0].negative-ttl', (v) => daemon({}, { ...UPSTREAMS.serve, 'negative-ttl': v }), TTL_MAX, TTL_OVER, TTL_MAX],
  ['client', 'key-ttl', (v) => JSON.stringify({ 'key-ttl': v }), TTL_MAX, TTL_OVER, TTL_MAX],
  ['client', 'addr-ttl', (v) => JSON.stringify({ 'addr-ttl': v }), TTL_MAX, TTL_OVER, TTL_MAX],
  ['client', 'dns-timeout', (v) => JSON.stringify({ 'dns-timeout': v }), TIMER_MAX, TIMER_OVER, TIMER_MAX],
];

function parse(kind: string, text: string): void {
  if (kind === 'daemon') parseDaemonConfig(text, FILE);
  else parseClientConfig(text, FILE, { hostname: 'h' });
}

describe('every duration is bounded by what its use can hold', () => {
  for (const [kind, key, config, max, over, limit] of CASES) {
    const upstream = /upstreams/.test(key) ? (JSON.parse(config('1s')) as { zones: Record<string, { upstreams: Tree[] }> }).zones['dynamic.example.org'].upstreams[0] : undefined;
    const type = upstream === undefined ? '' : ` (${String(upstream.type)})`;
    it(`${kind} ${key}${type}: ${max} passes, ${over} is an error naming file, key, value and limit`, () => {
      assert.doesNotThrow(() => parse(kind, config(max)));
      assert.throws(
        () => parse(kind, config(over)),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError, String(err));
          assert.equal(err.reason, 'range');
          assert.equal(err.file, FILE);
          assert.equal(err.keyPath, key);
          assert.equal(err.value, over);
          assert.ok(err.message.startsWith(`${FILE}: ${key}: `), err.message);
          assert.ok(err.message.includes(limit) && err.message.includes(over), err.message);
          return true;
        },
      );
    });
  }

  it('the issue\'s case: timeout: 600h is refused (it would fire after 1 ms)', () => {
    assert.throws(() => parse('daemon', daemon({}, { ...UPSTREAMS.nsupdate, timeout: '600h' })), /timeout: duration must be at most 596h31m23\.647s \(the longest timer Node\.js can set\)/);
  });
});
