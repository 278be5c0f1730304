/**
 * `type: serve` — nsregd answers DNS queries for the zone itself, from its
 * live records, so a parent zone can delegate the registration zone to it.
 * Not in the original nsregd.
 */
import type { Cidr } from '../../net/address.js';
import { fail, TIMER_LIMIT, toAddress, TTL_LIMIT, type MapReader } from '../validate.js';
import { tsigAlgorithmKey, tsigSecret, type TsigAlgorithm } from './nsupdate.js';

/** A TSIG key that may transfer the zone (`transfer-keys`). */
export interface TransferKeyConfig {
  /** FQDN. */
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  /** Base64, validated. */
  readonly secret: string;
}

export interface ServeUpstreamConfig {
  readonly type: 'serve';
  /** Host name or address to answer on (every address it resolves to). */
  readonly listenAddr: string;
  /** UDP and TCP port. */
  readonly listenPort: number;
  /** ms; TTL of the A/AAAA/PTR answers. */
  readonly recordTtl: number;
  /** SOA MNAME; also the first NS. Null: derived from the zone (ns.<zone>). */
  readonly primary: string | null;
  /** SOA RNAME in domain form. Null: hostmaster.<zone>. */
  readonly hostmaster: string | null;
  /** NS records at the apex. Empty: just the primary. */
  readonly nameservers: readonly string[];
  /** ms; SOA minimum and TTL of negative answers (RFC 2308). */
  readonly negativeTtl: number;
  readonly reverseZones: readonly string[];
  readonly excludeNets: readonly Cidr[];
  readonly keepRecords: boolean;
  /** UDP responses per second per client network (IPv4 /24, IPv6 /56); 0 switches the limit off. */
  readonly rateLimit: number;
  /** SRV `_nsreg._tcp.<zone>` target; null: the daemon's listen-addr. */
  readonly registrationTarget: string | null;
  /** TCP connections open at once; when full, the longest-idle one makes room. */
  readonly tcpConnections: number;
  /** TCP connections from one source (IPv4 address, IPv6 /64) at once. */
  readonly tcpPerSource: number;
  /** ms; a TCP connection without a complete query for this long is closed. */
  readonly tcpIdleTimeout: number;
  /** `transfer-keys`: TSIG keys that may transfer the zone (AXFR/IXFR). */
  readonly transferKeys: readonly TransferKeyConfig[];
  /** `allow-transfer`: networks that may transfer the zone without a key. */
  readonly allowTransfer: readonly Cidr[];
  /** SOA timers (ms, whole seconds on the wire): `soa-refresh`, `soa-retry`, `soa-expire`, `soa-minimum`. */
  readonly soaRefresh: number;
  readonly soaRetry: number;
  readonly soaExpire: number;
  /** Null: the negative-ttl. */
  readonly soaMinimum: number | null;
  /** `notify`: secondaries told of every change (RFC 1996), as address and port. */
  readonly notify: ReadonlyArray<{ readonly address: string; readonly port: number }>;
  /** `notify-key`: the transfer key NOTIFYs are signed with; null: unsigned. */
  readonly notifyKey: string | null;
}

export const SERVE_DEFAULTS = Object.freeze({
  'listen-addr': 'localhost',
  'listen-port': 53,
  'record-ttl': 60_000,
  'negative-ttl': 60_000,
  'rate-limit': 50,
  // Queries are small and cheap and a resolver keeps few connections open, so
  // fewer connections than the registration server, and idle ones close after
  // 10 s (RFC 7766 §6.2.3 suggests seconds, not minutes).
  'tcp-connections': 256,
  'tcp-per-source': 16,
  'tcp-idle-timeout': 10_000,
  // The zone changes by the second. Secondaries listed in `notify` hear of
  // each change at once; the others (and a NOTIFY that got lost) find it by
  // polling the SOA: every minute (an SOA query is cheap), again after a
  // minute when that fails. Expire is long (a
  // week, RFC 1912 §2.2 suggests 2-4 weeks for static zones): secondaries
  // keep answering through a long outage of the hidden primary.
  'soa-refresh': 60_000,
  'soa-retry': 60_000,
  'soa-expire': 604_800_000,
});

/** The SOA timers are 32-bit seconds; like TTLs, at most 2^31 - 1 (RFC 2181 §8). */
const SOA_TIMER_LIMIT = TTL_LIMIT;

/** An SOA timer: a duration of whole seconds on the wire, so at least 1 s. */
function soaTimer(r: MapReader, key: string): number | undefined {
  const ms = r.duration(key, SOA_TIMER_LIMIT);
  if (ms !== undefined && ms < 1000) fail(r.ctx, r.at(key), 'range', 'must be at least 1s (the SOA holds whole seconds)', r.raw(key));
  return ms;
}

/** `notify`: "address" or "address@port" (port 53 when left out). */
function notifyTargets(r: MapReader): Array<{ address: string; port: number }> {
  return (r.stringList('notify') ?? []).map((text, i) => {
    const at = [...r.at('notify'), i];
    const m = /^\s*([^@\s]+?)(?:@(\d+))?\s*$/.exec(text);
    const port = m?.[2] === undefined ? 53 : Number(m[2]);
    if (m?.[1] === undefined || !(port >= 1 && port <= 65535)) fail(r.ctx, at, 'invalid', 'expected "address" or "address@port"', text);
    return { address: toAddress(r.ctx, at, m[1]), port };
  });
}

function transferKeys(r: MapReader): TransferKeyConfig[] {
  const keys = (r.mappingList('transfer-keys') ?? []).map((k) => {
    const key: TransferKeyConfig = {
      name: k.require('name', k.fqdn('name')),
      algorithm: tsigAlgorithmKey(k, 'algorithm') ?? 'hmac-sha256',
      secret: tsigSecret(k, 'secret'),
    };
    k.finish();
    return key;
  });
  const names = keys.map((k) => k.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) fail(r.ctx, r.at('transfer-keys'), 'duplicate', 'the same key name is listed twice', dup);
  return keys;
}

/** Bounds of the TCP keys: a frame's worth of connections at most; idle at most 10 minutes. */
const MAX_TCP_CONNECTIONS = 65_535;
const MAX_TCP_IDLE_MS = 600_000;

export function parseServeUpstream(r: MapReader): ServeUpstreamConfig {
  const tcpConnections = r.integer('tcp-connections', 1, MAX_TCP_CONNECTIONS) ?? SERVE_DEFAULTS['tcp-connections'];
  const tcpPerSource = r.integer('tcp-per-source', 1, MAX_TCP_CONNECTIONS) ?? Math.min(SERVE_DEFAULTS['tcp-per-source'], tcpConnections);
  if (tcpPerSource > tcpConnections) {
    fail(r.ctx, r.at('tcp-per-source'), 'range', `must not exceed tcp-connections (${tcpConnections})`, tcpPerSource);
  }
  const tcpIdleTimeout = r.duration('tcp-idle-timeout', TIMER_LIMIT) ?? SERVE_DEFAULTS['tcp-idle-timeout'];
  if (tcpIdleTimeout > MAX_TCP_IDLE_MS) {
    fail(r.ctx, r.at('tcp-idle-timeout'), 'range', `must be at most ${MAX_TCP_IDLE_MS / 1000}s`, r.raw('tcp-idle-timeout'));
  }
  const keys = transferKeys(r);
  const notifyKey = r.fqdn('notify-key') ?? null;
  if (notifyKey !== null && !keys.some((k) => k.name === notifyKey)) {
    fail(r.ctx, r.at('notify-key'), 'invalid', 'must be the name of one of transfer-keys', notifyKey);
  }
  return {
    type: 'serve',
    listenAddr: r.nonEmptyString('listen-addr') ?? SERVE_DEFAULTS['listen-addr'],
    listenPort: r.port('listen-port') ?? SERVE_DEFAULTS['listen-port'],
    recordTtl: r.duration('record-ttl', TTL_LIMIT) ?? SERVE_DEFAULTS['record-ttl'],
    primary: r.fqdn('primary') ?? null,
    hostmaster: r.fqdn('hostmaster') ?? null,
    nameservers: r.fqdnList('nameservers') ?? [],
    negativeTtl: r.duration('negative-ttl', TTL_LIMIT) ?? SERVE_DEFAULTS['negative-ttl'],
    reverseZones: r.fqdnList('reverse-zones') ?? [],
    excludeNets: r.cidrList('exclude-nets') ?? [],
    keepRecords: r.bool('keep-records') ?? false,
    rateLimit: r.integer('rate-limit', 0, 1_000_000) ?? SERVE_DEFAULTS['rate-limit'],
    registrationTarget: r.fqdn('registration-target') ?? null,
    tcpConnections,
    tcpPerSource,
    tcpIdleTimeout,
    transferKeys: keys,
    allowTransfer: r.cidrList('allow-transfer') ?? [],
    soaRefresh: soaTimer(r, 'soa-refresh') ?? SERVE_DEFAULTS['soa-refresh'],
    soaRetry: soaTimer(r, 'soa-retry') ?? SERVE_DEFAULTS['soa-retry'],
    soaExpire: soaTimer(r, 'soa-expire') ?? SERVE_DEFAULTS['soa-expire'],
    soaMinimum: soaTimer(r, 'soa-minimum') ?? null,
    notify: notifyTargets(r),
    notifyKey,
  };
}
