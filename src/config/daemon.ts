/**
 * nsregd's configuration (README, "Running nsregd"): parsed once, validated
 * fully, defaulted from one table, frozen.
 *
 * Decisions beyond the original:
 * - `data-dir`, when relative, is resolved against the configuration
 *   file's directory (the original used the working directory, which is `/`
 *   under most service managers). Absolute paths are unaffected.
 * - Zone names are lower-cased FQDNs; two spellings of one zone are an error.
 * - Errors name the file, key path and value instead of logging and
 *   skipping the zone as the original did.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Cidr } from '../net/address.js';
import { ConfigError } from './errors.js';
import {
  DISABLED_UPSTREAM_TYPE,
  parseUpstream,
  upstreamTypes,
  type UpstreamConfig,
} from './upstreams/index.js';
import {
  deepFreeze,
  fail,
  MapReader,
  newContext,
  normalizeFqdn,
  parseYamlDocument,
  warn,
  type ParseContext,
} from './validate.js';
import { errnoCode } from '../errors.js';

export type { UpstreamConfig } from './upstreams/index.js';

export interface ZoneConfig {
  /** Lower-case FQDN with trailing dot. */
  readonly name: string;
  /** ms */
  readonly maxKeyTtl: number;
  /** ms */
  readonly maxAddrTtl: number;
  /** Lower-case single labels. */
  readonly reservedNames: readonly string[];
  readonly allowedNets: readonly Cidr[];
  readonly allowAnyAddr: boolean;
  /** Enabled upstreams in file order (`type: disabled` entries left out). */
  readonly upstreams: readonly UpstreamConfig[];
  /** How many `type: disabled` entries were skipped. */
  readonly disabledUpstreams: number;
}

export interface DaemonConfig {
  /** Absolute path of the file this came from. */
  readonly file: string;
  readonly listenAddr: string;
  readonly listenPort: number;
  /** Absolute. */
  readonly dataDir: string;
  readonly debug: boolean;
  /** Longest SIG(0) validity (expiration − inception) accepted, ms. */
  readonly maxSigValidity: number;
  /** Keyed by zone FQDN (lower case, trailing dot). */
  readonly zones: Readonly<Record<string, ZoneConfig>>;
}

export interface LoadedConfig<T> {
  readonly config: T;
  readonly warnings: readonly string[];
}

/** The defaults table (the documented defaults in nsregd.example.yaml). */
export const DAEMON_DEFAULTS = Object.freeze({
  'listen-addr': 'localhost',
  'listen-port': 8053,
  'data-dir': '/var/lib/nsregd',
  debug: false,
  'max-sig-validity': 3600_000,
});

export const ZONE_DEFAULTS = Object.freeze({
  'reserved-names': Object.freeze([] as string[]),
  'allowed-nets': Object.freeze([] as Cidr[]),
  'allow-any-addr': false,
});

/** Where nsregd looks without `-c` (first existing file wins). */
export const DAEMON_CONFIG_CANDIDATES: readonly string[] = Object.freeze([
  '/etc/nsregd/nsregd.yaml',
  '/etc/nsregd/nsregd.yml',
  '/etc/nsregd/nsregd.json',
]);

function parseZone(ctx: ParseContext, name: string, r: MapReader): ZoneConfig {
  const upstreams: UpstreamConfig[] = [];
  let disabled = 0;
  for (const u of r.mappingList('upstreams') ?? []) {
    const typeText = u.require('type', u.nonEmptyString('type'));
    const type = typeText.toLowerCase();
    if (type === DISABLED_UPSTREAM_TYPE) {
      disabled++;
      continue; // the rest of a disabled entry is deliberately not validated
    }
    const parsed = parseUpstream(type, u);
    if (parsed === undefined) {
      fail(ctx, u.at('type'), 'unknown-type', `unknown upstream type; known: ${[...upstreamTypes(), DISABLED_UPSTREAM_TYPE].join(', ')}`, typeText);
    }
    u.finish('upstream key');
    upstreams.push(parsed);
  }
  const zone: ZoneConfig = {
    name,
    maxKeyTtl: r.require('max-key-ttl', r.duration('max-key-ttl')),
    maxAddrTtl: r.require('max-addr-ttl', r.duration('max-addr-ttl')),
    reservedNames: r.labelList('reserved-names') ?? [...ZONE_DEFAULTS['reserved-names']],
    allowedNets: r.cidrList('allowed-nets') ?? [...ZONE_DEFAULTS['allowed-nets']],
    allowAnyAddr: r.bool('allow-any-addr') ?? ZONE_DEFAULTS['allow-any-addr'],
    upstreams,
    disabledUpstreams: disabled,
  };
  r.finish('zone key');
  if (upstreams.length === 0) warn(ctx, r.path, 'no upstreams: accepted records go nowhere');
  if (zone.allowedNets.length === 0) warn(ctx, r.path, 'allowed-nets is empty: no new names can be claimed');
  return zone;
}

/** Longer SIG(0) windows make captured requests replayable for that long; the replay cache keeps them as long. */
const MAX_SIG_VALIDITY_LIMIT = 24 * 3600_000;

/** `max-sig-validity`: a duration up to MAX_SIG_VALIDITY_LIMIT. */
function parseMaxSigValidity(ctx: ParseContext, top: MapReader): number {
  const v = top.duration('max-sig-validity');
  if (v === undefined) return DAEMON_DEFAULTS['max-sig-validity'];
  if (v > MAX_SIG_VALIDITY_LIMIT) fail(ctx, top.at('max-sig-validity'), 'range', 'must be at most 24h', top.raw('max-sig-validity'));
  return v;
}

/** Parse configuration text; `file` names it in messages and anchors relative paths. */
export function parseDaemonConfig(text: string, file: string): LoadedConfig<DaemonConfig> {
  const ctx = newContext(file);
  const top = new MapReader(ctx, [], parseYamlDocument(ctx, text));

  const zones: Record<string, ZoneConfig> = Object.create(null) as Record<string, ZoneConfig>;
  const zonesReader = top.mapping('zones');
  if (zonesReader !== undefined) {
    for (const key of zonesReader.keys()) {
      const p = [...zonesReader.path, key];
      const name = normalizeFqdn(key);
      if (name === null || name === '.') fail(ctx, p, 'name', 'zone name is not a valid domain name', key);
      if (Object.hasOwn(zones, name)) fail(ctx, p, 'duplicate', `zone ${name} is configured twice`, key);
      zones[name] = parseZone(ctx, name, new MapReader(ctx, p, zonesReader.raw(key.toLowerCase())));
    }
  }
  if (Object.keys(zones).length === 0) warn(ctx, ['zones'], 'no zones configured: every request will be refused');

  const config: DaemonConfig = {
    file: path.resolve(file),
    listenAddr: top.nonEmptyString('listen-addr') ?? DAEMON_DEFAULTS['listen-addr'],
    listenPort: top.port('listen-port') ?? DAEMON_DEFAULTS['listen-port'],
    dataDir: path.resolve(ctx.baseDir, top.nonEmptyString('data-dir') ?? DAEMON_DEFAULTS['data-dir']),
    debug: top.bool('debug') ?? DAEMON_DEFAULTS.debug,
    maxSigValidity: parseMaxSigValidity(ctx, top),
    zones,
  };
  top.finish();
  return { config: deepFreeze(config), warnings: Object.freeze([...ctx.warnings]) };
}

/** Read and parse a configuration file. Every failure is a ConfigError. */
export async function loadDaemonConfig(file: string): Promise<LoadedConfig<DaemonConfig>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const why = errnoCode(err) ?? 'error';
    throw new ConfigError('read', file, '', `cannot read configuration file (${why})`, undefined, { cause: err });
  }
  return parseDaemonConfig(text, file);
}
