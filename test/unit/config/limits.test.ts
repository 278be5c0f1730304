/**
 * The `limits:` section: defaults equal to the values built in before it
 * existed, every key parsed, bad values named with file, key path and value,
 * bounds, and `max-sig-validity` as the other name of `replay-window`.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { DAEMON_DEFAULTS, parseDaemonConfig, ZONE_DEFAULTS } from '../../../src/config/daemon.js';
import { ConfigError, type ConfigErrorReason } from '../../../src/config/errors.js';
import { LIMITS_DEFAULTS, limitEntries, type Limits } from '../../../src/config/limits.js';
import { DEFAULT_GUARD } from '../../../src/daemon/guard.js';
import { DEFAULT_TCP_LIMITS } from '../../../src/net/tcp-server.js';

const FILE = '/etc/nsregd/nsregd.yaml';

/** A zone that draws no warnings of its own. */
const ZONES = {
  'dyn.example.org': { 'max-key-ttl': '1h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [{ type: 'serve', 'listen-addr': '127.0.0.1' }] },
};

function parse(limits: Record<string, unknown> | null, top: Record<string, unknown> = {}): ReturnType<typeof parseDaemonConfig> {
  return parseDaemonConfig(JSON.stringify({ ...top, ...(limits === null ? {} : { limits }), zones: ZONES }), FILE);
}

const DEFAULTS: Limits = {
  sigRatePerSource: 50,
  sigBurstPerSource: 100,
  checksInFlight: 16,
  checksPerSource: 16,
  connections: 512,
  connectionsPerSource: 32,
  idleTimeout: 30_000,
  messageTimeout: 5_000,
  maxMessageSize: 65_535,
  recordsPerName: 16,
  replayWindow: 3600_000,
};

function refuses(limits: Record<string, unknown>, keyPath: string, reason: ConfigErrorReason, top: Record<string, unknown> = {}): void {
  assert.throws(
    () => parse(limits, top),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.reason, reason, err.message);
      assert.equal(err.keyPath, keyPath);
      assert.ok(err.message.startsWith(`${FILE}: ${keyPath}: `), err.message);
      return true;
    },
  );
}

describe('daemon config: limits', () => {
  it('defaults to the values built in before the section existed', () => {
    for (const limits of [null, {}]) {
      const { config, warnings } = parse(limits);
      assert.deepEqual(config.limits, DEFAULTS);
      assert.deepEqual(warnings, []);
    }
    assert.ok(Object.isFrozen(parse(null).config.limits));
    // `limits:` with nothing under it is an empty mapping.
    assert.deepEqual(parseDaemonConfig('limits:\nzones: {}\n', FILE).config.limits, DEFAULTS);
    // The homes of the built-in values agree with the defaults table.
    const d = LIMITS_DEFAULTS;
    assert.equal(DEFAULT_GUARD.perSourceRate, d['sig-rate-per-source']);
    assert.equal(DEFAULT_GUARD.perSourceBurst, d['sig-burst-per-source']);
    assert.equal(DEFAULT_GUARD.maxInFlight, d['checks-in-flight']);
    assert.equal(DEFAULT_GUARD.maxPerSource, d['checks-per-source']);
    assert.equal(DEFAULT_TCP_LIMITS.maxConnections, d.connections);
    assert.equal(DEFAULT_TCP_LIMITS.maxPerSource, d['connections-per-source']);
    assert.equal(DEFAULT_TCP_LIMITS.idleTimeoutMs, d['idle-timeout']);
    assert.equal(DEFAULT_TCP_LIMITS.slowReadTimeoutMs, d['message-timeout']);
    assert.equal(DEFAULT_TCP_LIMITS.maxMessageSize, d['max-message-size']);
    assert.equal(ZONE_DEFAULTS['max-records-per-name'], d['records-per-name']);
    assert.equal(DAEMON_DEFAULTS['max-sig-validity'], d['replay-window']);
  });

  it('reads every key', () => {
    const { config, warnings } = parse({
      'sig-rate-per-source': 0,
      'sig-burst-per-source': 7,
      'checks-in-flight': 8,
      'checks-per-source': 4096,
      connections: 100,
      'connections-per-source': 100,
      'idle-timeout': '2m',
      'message-timeout': '1500ms',
      'max-message-size': 512,
      'records-per-name': 4,
      'replay-window': '10m',
    });
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.limits, {
      sigRatePerSource: 0,
      sigBurstPerSource: 7,
      checksInFlight: 8,
      checksPerSource: 4096,
      connections: 100,
      connectionsPerSource: 100,
      idleTimeout: 120_000,
      messageTimeout: 1500,
      maxMessageSize: 512,
      recordsPerName: 4,
      replayWindow: 600_000,
    });
  });

  it('keys are case-insensitive and numbers may be strings, as elsewhere; unknown keys are warned about', () => {
    const { config, warnings } = parse({ 'Checks-In-Flight': '2', 'sig-rate': 5 });
    assert.equal(config.limits.checksInFlight, 2);
    assert.deepEqual(warnings, [`${FILE}: limits.sig-rate: unknown limits key, ignored`]);
  });

  it('records-per-name is the default of every zone; a zone\'s max-records-per-name overrides it', () => {
    const zone = { 'max-key-ttl': '1h', 'max-addr-ttl': '1h', upstreams: [], 'allowed-nets': ['127.0.0.0/8'] };
    const text = JSON.stringify({
      limits: { 'records-per-name': 3 },
      zones: { 'a.example': zone, 'b.example': { ...zone, 'max-records-per-name': 40 } },
    });
    const { config } = parseDaemonConfig(text, FILE);
    assert.equal(config.zones['a.example.']?.maxRecordsPerName, 3);
    assert.equal(config.zones['b.example.']?.maxRecordsPerName, 40);
  });

  it('connections-per-source defaults to at most connections, and may not exceed it', () => {
    assert.equal(parse({ connections: 10 }).config.limits.connectionsPerSource, 10);
    assert.equal(parse({ connections: 10, 'connections-per-source': 10 }).config.limits.connectionsPerSource, 10);
    refuses({ connections: 10, 'connections-per-source': 11 }, 'limits.connections-per-source', 'range');
  });

  describe('bounds', () => {
    // ok: [value, as --check-config shows it].
    const cases: Array<[key: string, ok: Array<[unknown, string]>, bad: unknown[]]> = [
      ['sig-rate-per-source', [[0, '0'], [1_000_000, '1000000']], [-1, 1_000_001, 2.5]],
      ['sig-burst-per-source', [[1, '1'], [1_000_000, '1000000']], [0, 1_000_001]],
      ['checks-in-flight', [[1, '1'], [1024, '1024']], [0, 1025]],
      ['checks-per-source', [[1, '1'], [65_535, '65535']], [0, 65_536]],
      ['connections', [[1, '1'], [65_535, '65535']], [0, 65_536]],
      ['max-message-size', [[512, '512'], [65_535, '65535']], [511, 65_536]],
      ['records-per-name', [[1, '1'], [4096, '4096']], [0, 4097]],
      ['idle-timeout', [['1ms', '1ms'], ['1h', '1h0m0s']], ['0s', '1h0m1s', '1500us']],
      ['message-timeout', [['1ms', '1ms'], ['10m', '10m0s']], ['0s', '10m1s', '1.5ms']],
      ['replay-window', [['1s', '1s'], ['24h', '24h0m0s']], ['0s', '24h0m1s']],
    ];
    for (const [key, ok, bad] of cases) {
      it(`${key}: takes ${ok.map(([v]) => JSON.stringify(v)).join(' and ')}, refuses ${bad.map((v) => JSON.stringify(v)).join(', ')}`, () => {
        for (const [v, shown] of ok) {
          const limits = parse({ [key]: v, ...(key === 'connections' ? { 'connections-per-source': 1 } : {}) }).config.limits;
          assert.deepEqual(limitEntries(limits).find(([k]) => k === key), [key, shown]);
        }
        for (const v of bad) refuses({ [key]: v }, `limits.${key}`, 'range');
      });
    }
    it('connections-per-source: 1 to connections', () => {
      assert.equal(parse({ 'connections-per-source': 1 }).config.limits.connectionsPerSource, 1);
      refuses({ 'connections-per-source': 0 }, 'limits.connections-per-source', 'range');
    });
  });

  it('names file, key path and value of a bad value', () => {
    for (const [key, value, reason] of [
      ['checks-in-flight', 'four', 'type'],
      ['connections', [1], 'type'],
      ['idle-timeout', 30, 'duration'],
      ['message-timeout', 'soon', 'duration'],
      ['replay-window', true, 'type'],
    ] as const) {
      assert.throws(
        () => parse({ [key]: value }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.reason, reason, err.message);
          assert.ok(err.message.startsWith(`${FILE}: limits.${key}: `), err.message);
          assert.ok(err.message.endsWith(`(got ${JSON.stringify(value)})`), err.message);
          return true;
        },
      );
    }
    assert.throws(() => parseDaemonConfig('limits: 5\nzones:\n', FILE), { code: 'ERR_CONFIG', reason: 'type', keyPath: 'limits' });
  });

  describe('replay-window and its other name, max-sig-validity', () => {
    it('either name sets it', () => {
      assert.equal(parse({ 'replay-window': '20m' }).config.limits.replayWindow, 1_200_000);
      assert.equal(parse(null, { 'max-sig-validity': '20m' }).config.limits.replayWindow, 1_200_000);
    });

    it('both may be given when they agree, in any spelling', () => {
      const { config, warnings } = parse({ 'replay-window': '1200s' }, { 'max-sig-validity': '20m' });
      assert.equal(config.limits.replayWindow, 1_200_000);
      assert.deepEqual(warnings, []);
    });

    it('both differing is an error naming both', () => {
      assert.throws(
        () => parse({ 'replay-window': '10m' }, { 'max-sig-validity': '20m' }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.equal(err.reason, 'invalid');
          assert.equal(err.keyPath, 'limits.replay-window');
          assert.match(err.message, /max-sig-validity \(20m0s\).*\(got "10m"\)$/);
          return true;
        },
      );
    });

    it('max-sig-validity keeps its own key path in errors', () => {
      refuses({}, 'max-sig-validity', 'range', { 'max-sig-validity': '25h' });
    });
  });

  it('limitEntries lists every key once, in file order, with durations in Go form', () => {
    assert.deepEqual(limitEntries(DEFAULTS), [
      ['sig-rate-per-source', '50'],
      ['sig-burst-per-source', '100'],
      ['checks-in-flight', '16'],
      ['checks-per-source', '16'],
      ['connections', '512'],
      ['connections-per-source', '32'],
      ['idle-timeout', '30s'],
      ['message-timeout', '5s'],
      ['max-message-size', '65535'],
      ['records-per-name', '16'],
      ['replay-window', '1h0m0s'],
    ]);
    assert.deepEqual(limitEntries(DEFAULTS).map(([k]) => k), Object.keys(LIMITS_DEFAULTS));
  });
});
