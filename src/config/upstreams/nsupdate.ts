/**
 * Schema of `type: nsupdate` upstreams: RFC 2136 updates signed with TSIG
 * (RFC 8945) sent to an authoritative server.
 */
import type { Cidr } from '../../net/address.js';
import { fail, isBase64, TIMER_LIMIT, TTL_LIMIT, warn, type MapReader } from '../validate.js';

/** Shorter HMAC keys are "strongly discouraged" (RFC 2104 section 3: at least the hash's length; tsig-keygen makes 32 bytes). */
const MIN_SECRET_BYTES = 16;

/** TSIG algorithms we can sign with (RFC 8945 section 6; names without the trailing dot). */
export const TSIG_ALGORITHMS = [
  'hmac-sha1',
  'hmac-sha224',
  'hmac-sha256',
  'hmac-sha384',
  'hmac-sha512',
] as const;
export type TsigAlgorithm = (typeof TSIG_ALGORITHMS)[number];

export interface NsupdateUpstreamConfig {
  readonly type: 'nsupdate';
  readonly hostname: string;
  readonly port: number;
  readonly tcp: boolean;
  /** ms */
  readonly timeout: number;
  /** FQDN of the zone updated upstream; null when only reverse zones are served. */
  readonly zone: string | null;
  readonly reverseZones: readonly string[];
  /** ms; records are clamped to this TTL before they are sent. */
  readonly recordTtl: number;
  readonly tsigName: string;
  /** Base64, validated. */
  readonly tsigSecret: string;
  /** Our extension (`tsig-algorithm`); the original always used hmac-sha256. */
  readonly tsigAlgorithm: TsigAlgorithm;
  readonly keepRecords: boolean;
  readonly excludeNets: readonly Cidr[];
  /** `protect-existing`: refuse a first claim of a name that already holds any record upstream. */
  readonly protectExisting: boolean;
  /** ms; `reconcile-interval`: every live record is sent again once per interval; 0 is off. */
  readonly reconcileInterval: number;
}

const DEFAULTS = {
  tcp: false,
  'reverse-zones': [] as string[],
  'tsig-algorithm': 'hmac-sha256' as TsigAlgorithm,
  'keep-records': false,
  'exclude-nets': [] as Cidr[],
  'protect-existing': true,
  'reconcile-interval': 3_600_000,
} as const;

/**
 * A duration key where 0 (`0`, `0s`, `0h`…) switches the feature off; any
 * other value is a duration bounded by TIMER_LIMIT.
 */
export function intervalOrOff(r: MapReader, key: string): number | undefined {
  const v = r.raw(key);
  if (v === 0 || (typeof v === 'string' && /^\s*0+(\.0*)?\s*(ms|s|m|h)?\s*$/.test(v))) return 0;
  return r.duration(key, TIMER_LIMIT);
}

/** A required base64 TSIG secret at `key` (warns when shorter than MIN_SECRET_BYTES). Shared with the serve upstream's transfer-keys. */
export function tsigSecret(r: MapReader, key: string): string {
  const secret = r.require(key, r.nonEmptyString(key));
  if (!isBase64(secret)) fail(r.ctx, r.at(key), 'base64', 'not a base64 secret', secret);
  const secretBytes = Buffer.from(secret, 'base64').length;
  if (secretBytes < MIN_SECRET_BYTES) {
    warn(r.ctx, r.at(key), `the TSIG secret is only ${secretBytes} bytes; use at least ${MIN_SECRET_BYTES} (tsig-keygen makes 32)`);
  }
  return secret;
}

/** A TSIG algorithm name at `key`, with or without the wire form's trailing dot ("hmac-sha256."); undefined when absent. */
export function tsigAlgorithmKey(r: MapReader, key: string): TsigAlgorithm | undefined {
  const algText = r.nonEmptyString(key)?.toLowerCase().replace(/\.$/, '');
  if (algText === undefined) return undefined;
  const hit = TSIG_ALGORITHMS.find((a) => a === algText);
  if (hit === undefined) fail(r.ctx, r.at(key), 'invalid', `must be one of ${TSIG_ALGORITHMS.join(', ')}`, algText);
  return hit;
}

export function parseNsupdateUpstream(r: MapReader): NsupdateUpstreamConfig {
  const reverseZones = r.fqdnList('reverse-zones') ?? DEFAULTS['reverse-zones'];
  const zone = r.fqdn('zone') ?? null;
  if (zone === null && reverseZones.length === 0) {
    fail(r.ctx, r.at('zone'), 'missing', 'required key is missing (it may only be left out when reverse-zones is set)');
  }
  const secret = tsigSecret(r, 'tsig-secret');
  const tsigAlgorithm = tsigAlgorithmKey(r, 'tsig-algorithm') ?? DEFAULTS['tsig-algorithm'];
  return {
    type: 'nsupdate',
    hostname: r.require('hostname', r.nonEmptyString('hostname')),
    port: r.require('port', r.port('port')),
    tcp: r.bool('tcp') ?? DEFAULTS.tcp,
    timeout: r.require('timeout', r.duration('timeout', TIMER_LIMIT)),
    zone,
    reverseZones,
    recordTtl: r.require('record-ttl', r.duration('record-ttl', TTL_LIMIT)),
    tsigName: r.require('tsig-name', r.fqdn('tsig-name')),
    tsigSecret: secret,
    tsigAlgorithm,
    keepRecords: r.bool('keep-records') ?? DEFAULTS['keep-records'],
    excludeNets: r.cidrList('exclude-nets') ?? DEFAULTS['exclude-nets'],
    protectExisting: r.bool('protect-existing') ?? DEFAULTS['protect-existing'],
    reconcileInterval: intervalOrOff(r, 'reconcile-interval') ?? DEFAULTS['reconcile-interval'],
  };
}
