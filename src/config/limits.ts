/**
 * The `limits:` section of nsregd.yaml (README, "Limits"): the registration
 * server's defences against floods and slow clients, as configuration, so
 * that operators behind NAT (many hosts on one address) or running
 * benchmarks tune the shipped daemon. Every key has today's built-in value
 * as its default; every value is bounded.
 *
 * `replay-window` is the longest validity window (expiration − inception)
 * of an accepted SIG(0) signature: the replay cache keeps every accepted
 * request until its signature expires, so this is also how long it may have
 * to remember one. The top-level `max-sig-validity` is its other name
 * (configurations in the field use it): either may be given, both only
 * with the same value.
 */
import { formatDuration } from './duration.js';
import { fail, MapReader, TIMER_LIMIT, type DurationLimit } from './validate.js';

export interface Limits {
  /** Signature checks per second per source (IPv4 address, IPv6 /64); 0: no per-source limit. */
  readonly sigRatePerSource: number;
  /** Signature checks one source may make at once after a quiet spell. */
  readonly sigBurstPerSource: number;
  /** Signature checks running at once, all sources together. */
  readonly checksInFlight: number;
  /** Signature checks of one source running or waiting. */
  readonly checksPerSource: number;
  /** TCP connections open at once. */
  readonly connections: number;
  /** TCP connections from one source at once. */
  readonly connectionsPerSource: number;
  /** A connection with no complete message for this long is closed, ms. */
  readonly idleTimeout: number;
  /** A message begun must be complete within this, ms (slow-read defence). */
  readonly messageTimeout: number;
  /** Largest request accepted, octets. */
  readonly maxMessageSize: number;
  /** A/AAAA records one name may hold, for zones without their own `max-records-per-name`. */
  readonly recordsPerName: number;
  /** Longest SIG(0) validity (expiration − inception) accepted, ms; also how long the replay cache keeps a request. */
  readonly replayWindow: number;
}

/**
 * The defaults table (documented in nsregd.example.yaml): the values built
 * in before `limits:` existed, except checks-in-flight (4 then, the thread
 * pool's size; 16 keeps the pool's threads from waiting on the event loop).
 */
export const LIMITS_DEFAULTS = Object.freeze({
  'sig-rate-per-source': 50,
  'sig-burst-per-source': 100,
  'checks-in-flight': 16,
  'checks-per-source': 16,
  connections: 512,
  'connections-per-source': 32,
  'idle-timeout': 30_000,
  'message-timeout': 5_000,
  'max-message-size': 65_535,
  'records-per-name': 16,
  'replay-window': 3600_000,
});

/**
 * Upper bound of `records-per-name` and a zone's `max-records-per-name`,
 * far beyond any real host. Even at this bound every reply stays
 * well-formed: an echo is no larger than the request it answers (names
 * compressed), and a zone-server answer too large for TCP is sent
 * truncated (TC).
 */
export const MAX_RECORDS_PER_NAME_LIMIT = 4096;

/** Rates and bursts: far beyond what one process can verify. */
const MAX_RATE = 1_000_000;
/** Checks run on libuv's thread pool, which holds at most 1024 threads. */
const MAX_CHECKS_IN_FLIGHT = 1024;
/** Checks of one source running or waiting; the guard queues 4,096 at most anyway. */
const MAX_CHECKS_PER_SOURCE = 65_535;
/** Each connection holds a file descriptor. */
const MAX_CONNECTIONS = 65_535;
/** RFC 1035 section 2.3.4: every DNS implementation handles 512 octets; a TCP frame holds 65,535 (section 4.2.2). */
const MIN_MESSAGE_SIZE = 512;
const MAX_MESSAGE_SIZE = 65_535;
const IDLE_TIMEOUT_LIMIT: DurationLimit = Object.freeze({ ms: 3600_000, why: 'an idle connection holds a file descriptor' });
const MESSAGE_TIMEOUT_LIMIT: DurationLimit = Object.freeze({ ms: 600_000, why: 'a message trickling in holds a connection' });
/** Longer SIG(0) windows make captured requests replayable for that long. */
const REPLAY_WINDOW_LIMIT: DurationLimit = Object.freeze({ ms: 24 * 3600_000, why: 'the replay cache keeps every accepted request that long' });

/** A timeout of the TCP layer: a whole number of milliseconds (timers take no less). */
function timeout(r: MapReader, key: string, limit: DurationLimit): number | undefined {
  const ms = r.duration(key, { ms: Math.min(limit.ms, TIMER_LIMIT.ms), why: limit.why });
  if (ms !== undefined && !Number.isInteger(ms)) fail(r.ctx, r.at(key), 'range', 'must be a whole number of milliseconds', r.raw(key));
  return ms;
}

/** `limits.replay-window`, or its other name, the top-level `max-sig-validity`. */
function replayWindow(top: MapReader, r: MapReader): number {
  const window = r.duration('replay-window', REPLAY_WINDOW_LIMIT);
  const alias = top.duration('max-sig-validity', REPLAY_WINDOW_LIMIT);
  if (window !== undefined && alias !== undefined && window !== alias) {
    fail(
      r.ctx,
      r.at('replay-window'),
      'invalid',
      `differs from max-sig-validity (${formatDuration(alias)}), its other name; give one of them`,
      r.raw('replay-window'),
    );
  }
  return window ?? alias ?? LIMITS_DEFAULTS['replay-window'];
}

/** The `limits:` section of `top` (absent or empty: every default). */
export function parseLimits(top: MapReader): Limits {
  const r = top.mapping('limits') ?? new MapReader(top.ctx, ['limits'], undefined);
  const D = LIMITS_DEFAULTS;
  const connections = r.integer('connections', 1, MAX_CONNECTIONS) ?? D.connections;
  const connectionsPerSource = r.integer('connections-per-source', 1, MAX_CONNECTIONS) ?? Math.min(D['connections-per-source'], connections);
  if (connectionsPerSource > connections) {
    fail(r.ctx, r.at('connections-per-source'), 'range', `must not exceed connections (${connections})`, r.raw('connections-per-source'));
  }
  const limits: Limits = {
    sigRatePerSource: r.integer('sig-rate-per-source', 0, MAX_RATE) ?? D['sig-rate-per-source'],
    sigBurstPerSource: r.integer('sig-burst-per-source', 1, MAX_RATE) ?? D['sig-burst-per-source'],
    checksInFlight: r.integer('checks-in-flight', 1, MAX_CHECKS_IN_FLIGHT) ?? D['checks-in-flight'],
    checksPerSource: r.integer('checks-per-source', 1, MAX_CHECKS_PER_SOURCE) ?? D['checks-per-source'],
    connections,
    connectionsPerSource,
    idleTimeout: timeout(r, 'idle-timeout', IDLE_TIMEOUT_LIMIT) ?? D['idle-timeout'],
    messageTimeout: timeout(r, 'message-timeout', MESSAGE_TIMEOUT_LIMIT) ?? D['message-timeout'],
    maxMessageSize: r.integer('max-message-size', MIN_MESSAGE_SIZE, MAX_MESSAGE_SIZE) ?? D['max-message-size'],
    recordsPerName: r.integer('records-per-name', 1, MAX_RECORDS_PER_NAME_LIMIT) ?? D['records-per-name'],
    replayWindow: replayWindow(top, r),
  };
  r.finish('limits key');
  return limits;
}

/** Every limit as `key value` in file order (`--check-config`, the reload log). */
export function limitEntries(l: Limits): Array<[key: string, value: string]> {
  return [
    ['sig-rate-per-source', String(l.sigRatePerSource)],
    ['sig-burst-per-source', String(l.sigBurstPerSource)],
    ['checks-in-flight', String(l.checksInFlight)],
    ['checks-per-source', String(l.checksPerSource)],
    ['connections', String(l.connections)],
    ['connections-per-source', String(l.connectionsPerSource)],
    ['idle-timeout', formatDuration(l.idleTimeout)],
    ['message-timeout', formatDuration(l.messageTimeout)],
    ['max-message-size', String(l.maxMessageSize)],
    ['records-per-name', String(l.recordsPerName)],
    ['replay-window', formatDuration(l.replayWindow)],
  ];
}
