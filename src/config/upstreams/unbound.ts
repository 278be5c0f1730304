/**
 * Schema of `type: unbound` upstreams: Unbound's remote-control protocol
 * over TLS.
 *
 * The original requires every key below except the booleans and lists. We
 * keep that, with one relaxation: `port` defaults to 8953, Unbound's own
 * default `control-port`. Certificate paths are resolved against the
 * configuration file's directory (the original used them relative to the
 * working directory and told operators to write absolute paths).
 */
import type { Cidr } from '../../net/address.js';
import { fail, TIMER_LIMIT, TTL_LIMIT, type MapReader } from '../validate.js';
import { intervalOrOff } from './nsupdate.js';

export interface UnboundUpstreamConfig {
  readonly type: 'unbound';
  readonly hostname: string;
  readonly port: number;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly serverCert: string;
  readonly serverName: string;
  /** Unbound local-zone type created at start-up, or 'none' for no local zone. */
  readonly zoneType: string;
  readonly reverseZones: readonly string[];
  /** ms */
  readonly timeout: number;
  /** ms */
  readonly recordTtl: number;
  readonly keepRecords: boolean;
  readonly excludeNets: readonly Cidr[];
  /**
   * ms; how often Unbound's `status` is asked whether it restarted (and so
   * forgot its runtime local data); 0 switches the polling off (failed
   * commands still trigger re-publishing).
   */
  readonly statusInterval: number;
}

const DEFAULTS = {
  port: 8953,
  'reverse-zones': [] as string[],
  'keep-records': false,
  'exclude-nets': [] as Cidr[],
  'status-interval': 10_000,
} as const;

export function parseUnboundUpstream(r: MapReader): UnboundUpstreamConfig {
  const zoneType = r.require('zone-type', r.nonEmptyString('zone-type')).toLowerCase();
  // Unbound's list of local-zone types grows between versions; only the shape is checked here.
  if (!/^[a-z_]+$/.test(zoneType)) {
    fail(r.ctx, r.at('zone-type'), 'invalid', 'not an Unbound local-zone type (e.g. typetransparent, static, none)', zoneType);
  }
  return {
    type: 'unbound',
    hostname: r.require('hostname', r.nonEmptyString('hostname')),
    port: r.port('port') ?? DEFAULTS.port,
    clientCert: r.require('client-cert', r.filePath('client-cert')),
    clientKey: r.require('client-key', r.filePath('client-key')),
    serverCert: r.require('server-cert', r.filePath('server-cert')),
    serverName: r.require('server-name', r.nonEmptyString('server-name')),
    zoneType,
    reverseZones: r.fqdnList('reverse-zones') ?? DEFAULTS['reverse-zones'],
    timeout: r.require('timeout', r.duration('timeout', TIMER_LIMIT)),
    recordTtl: r.require('record-ttl', r.duration('record-ttl', TTL_LIMIT)),
    keepRecords: r.bool('keep-records') ?? DEFAULTS['keep-records'],
    excludeNets: r.cidrList('exclude-nets') ?? DEFAULTS['exclude-nets'],
    statusInterval: intervalOrOff(r, 'status-interval') ?? DEFAULTS['status-interval'],
  };
}
