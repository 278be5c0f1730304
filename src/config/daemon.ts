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
import { open } from 'node:fs/promises';
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
  TTL_LIMIT,
  warn,
  type ParseContext,
} from './validate.js';
import { errnoCode } from '../errors.js';
import { LIMITS_DEFAULTS, MAX_RECORDS_PER_NAME_LIMIT, parseLimits, type Limits } from './limits.js';
import { ETCD_MAX_RECORDS_PER_NAME, parseStore, readableByOthers, storePasswordInline, type StoreConfig } from './store.js';

export type { UpstreamConfig } from './upstreams/index.js';
export type { StoreConfig } from './store.js';

/** `label-syntax`: what a claimed label may hold (checked in src/daemon/labels.ts). */
export const LABEL_SYNTAXES = ['hostname', 'printable'] as const;
export type LabelSyntax = (typeof LABEL_SYNTAXES)[number];

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
  /** Which labels may be claimed (`label-syntax`): host names only, or visible ASCII (never `*`). */
  readonly labelSyntax: LabelSyntax;
  /** Enabled upstreams in file order (`type: disabled` entries left out). */
  readonly upstreams: readonly UpstreamConfig[];
  /** How many `type: disabled` entries were skipped. */
  readonly disabledUpstreams: number;
  /** A/AAAA records one name may hold at once (default `limits.records-per-name`); a request that would leave more is refused. */
  readonly maxRecordsPerName: number;
}

export interface DaemonConfig {
  /** Absolute path of the file this came from. */
  readonly file: string;
  readonly listenAddr: string;
  readonly listenPort: number;
  /** Absolute. */
  readonly dataDir: string;
  /** The control channel's Unix socket (`nsregd status`, `nsregd names …`); absolute. */
  readonly controlSocket: string;
  /** Where Prometheus metrics are served (`metrics-listen`); undefined: not served. */
  readonly metricsListen: { readonly host: string; readonly port: number } | undefined;
  readonly debug: boolean;
  /** The `limits:` section, defaults filled in (`max-sig-validity` is its `replay-window`). */
  readonly limits: Limits;
  /** The `store:` section: where claims and records are kept (files in data-dir, or etcd). */
  readonly store: StoreConfig;
  /** Keyed by zone FQDN (lower case, trailing dot). */
  readonly zones: Readonly<Record<string, ZoneConfig>>;
}

export interface LoadedConfig<T> {
  readonly config: T;
  readonly warnings: readonly string[];
}

/** `HOST:PORT` or `[IPv6]:PORT`, the port 1-65535; null when it is not that. */
function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 1 && port <= 65535)) return null;
  return { host: m[1] ?? m[2] ?? '', port };
}

/** sockaddr_un's sun_path holds 108 octets, the terminating NUL included (unix(7)). */
const MAX_SOCKET_PATH = 107;

/** The defaults table (the documented defaults in nsregd.example.yaml). */
export const DAEMON_DEFAULTS = Object.freeze({
  'listen-addr': 'localhost',
  'listen-port': 8053,
  'data-dir': '/var/lib/nsregd',
  /** In the data directory unless set. */
  'control-socket': 'control.sock',
  /** Empty: no metrics endpoint. */
  'metrics-listen': '',
  debug: false,
  /** The other name of `limits.replay-window`. */
  'max-sig-validity': LIMITS_DEFAULTS['replay-window'],
});

export const ZONE_DEFAULTS = Object.freeze({
  'reserved-names': Object.freeze([] as string[]),
  'allowed-nets': Object.freeze([] as Cidr[]),
  'allow-any-addr': false,
  /** Unless `limits.records-per-name` says otherwise. */
  'max-records-per-name': LIMITS_DEFAULTS['records-per-name'],
  'label-syntax': 'hostname',
});

/** Where nsregd looks without `-c` (first existing file wins). */
export const DAEMON_CONFIG_CANDIDATES: readonly string[] = Object.freeze([
  '/etc/nsregd/nsregd.yaml',
  '/etc/nsregd/nsregd.yml',
  '/etc/nsregd/nsregd.json',
]);

/** `recordsPerName`: the default of `max-records-per-name` (`limits.records-per-name`). */
function parseZone(ctx: ParseContext, name: string, r: MapReader, recordsPerName: number, storeType: StoreConfig['type']): ZoneConfig {
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
    maxKeyTtl: r.require('max-key-ttl', r.duration('max-key-ttl', TTL_LIMIT)),
    maxAddrTtl: r.require('max-addr-ttl', r.duration('max-addr-ttl', TTL_LIMIT)),
    reservedNames: r.labelList('reserved-names') ?? [...ZONE_DEFAULTS['reserved-names']],
    allowedNets: r.cidrList('allowed-nets') ?? [...ZONE_DEFAULTS['allowed-nets']],
    allowAnyAddr: r.bool('allow-any-addr') ?? ZONE_DEFAULTS['allow-any-addr'],
    labelSyntax: r.oneOf('label-syntax', LABEL_SYNTAXES) ?? ZONE_DEFAULTS['label-syntax'],
    upstreams,
    disabledUpstreams: disabled,
    maxRecordsPerName:
      r.integer('max-records-per-name', 1, MAX_RECORDS_PER_NAME_LIMIT) ?? recordsPerName,
  };
  r.finish('zone key');
  if (storeType === 'etcd' && zone.maxRecordsPerName > ETCD_MAX_RECORDS_PER_NAME) {
    // One request is one etcd transaction (src/config/store.ts): refused, naming the key that set the bound.
    const set = r.has('max-records-per-name') ? r.at('max-records-per-name') : ['limits', 'records-per-name'];
    fail(ctx, set, 'range', `with store type etcd a name holds at most ${ETCD_MAX_RECORDS_PER_NAME} records (one request is one etcd transaction)`, zone.maxRecordsPerName);
  }
  if (upstreams.length === 0) warn(ctx, r.path, 'no upstreams: updates are refused (SERVFAIL)');
  if (zone.allowedNets.length === 0) warn(ctx, r.path, 'allowed-nets is empty: no new names can be claimed');
  return zone;
}

/** Parse configuration text; `file` names it in messages and anchors relative paths. */
export function parseDaemonConfig(text: string, file: string): LoadedConfig<DaemonConfig> {
  return parse(text, file).loaded;
}

/** parseDaemonConfig, and whether the text itself holds the store's password. */
function parse(text: string, file: string): { loaded: LoadedConfig<DaemonConfig>; storePassword: boolean } {
  const ctx = newContext(file);
  const top = new MapReader(ctx, [], parseYamlDocument(ctx, text));
  const limits = parseLimits(top);
  const store = parseStore(top);

  const zones: Record<string, ZoneConfig> = Object.create(null) as Record<string, ZoneConfig>;
  const zonesReader = top.mapping('zones');
  if (zonesReader !== undefined) {
    for (const key of zonesReader.keys()) {
      const p = [...zonesReader.path, key];
      const name = normalizeFqdn(key);
      if (name === null || name === '.') fail(ctx, p, 'name', 'zone name is not a valid domain name', key);
      if (Object.hasOwn(zones, name)) fail(ctx, p, 'duplicate', `zone ${name} is configured twice`, key);
      zones[name] = parseZone(ctx, name, new MapReader(ctx, p, zonesReader.raw(key.toLowerCase())), limits.recordsPerName, store.type);
    }
  }
  if (Object.keys(zones).length === 0) warn(ctx, ['zones'], 'no zones configured: every request will be refused');

  const dataDir = path.resolve(ctx.baseDir, top.nonEmptyString('data-dir') ?? DAEMON_DEFAULTS['data-dir']);
  const socketSetting = top.nonEmptyString('control-socket');
  const controlSocket =
    socketSetting === undefined ? path.join(dataDir, DAEMON_DEFAULTS['control-socket']) : path.resolve(ctx.baseDir, socketSetting);
  if (Buffer.byteLength(controlSocket) > MAX_SOCKET_PATH) {
    fail(
      ctx,
      ['control-socket'],
      'range',
      `the socket path ${controlSocket} is ${Buffer.byteLength(controlSocket)} octets; Unix sockets allow ${MAX_SOCKET_PATH} (set control-socket to a shorter path)`,
      socketSetting ?? controlSocket,
    );
  }
  const metricsText = top.string('metrics-listen') ?? DAEMON_DEFAULTS['metrics-listen'];
  const metricsListen = metricsText === '' ? undefined : parseHostPort(metricsText);
  if (metricsListen === null) fail(ctx, ['metrics-listen'], 'invalid', 'must be ADDRESS:PORT, e.g. 127.0.0.1:9253 or [::1]:9253', metricsText);
  const config: DaemonConfig = {
    file: path.resolve(file),
    metricsListen,
    listenAddr: top.nonEmptyString('listen-addr') ?? DAEMON_DEFAULTS['listen-addr'],
    listenPort: top.port('listen-port') ?? DAEMON_DEFAULTS['listen-port'],
    dataDir,
    controlSocket,
    debug: top.bool('debug') ?? DAEMON_DEFAULTS.debug,
    limits,
    store,
    zones,
  };
  top.finish();
  return {
    loaded: { config: deepFreeze(config), warnings: Object.freeze([...ctx.warnings]) },
    storePassword: store.type === 'etcd' && storePasswordInline(top),
  };
}

/**
 * Read and parse a configuration file. Every failure is a ConfigError. A
 * file holding a TSIG secret or the store's password that group or other
 * users can read gets a warning naming its mode.
 */
export async function loadDaemonConfig(file: string): Promise<LoadedConfig<DaemonConfig>> {
  let text: string;
  let mode: number;
  try {
    const fh = await open(file, 'r');
    try {
      mode = (await fh.stat()).mode;
      text = await fh.readFile('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    const why = errnoCode(err) ?? 'error';
    throw new ConfigError('read', file, '', `cannot read configuration file (${why})`, undefined, { cause: err });
  }
  const { loaded, storePassword } = parse(text, file);
  const tsig = Object.values(loaded.config.zones).some((z) =>
    z.upstreams.some((u) => u.type === 'nsupdate' || (u.type === 'serve' && u.transferKeys.length > 0)),
  );
  const readable = readableByOthers(mode);
  if (!(tsig || storePassword) || readable === undefined) return loaded;
  const what = tsig ? 'a tsig-secret' : 'the store password';
  const warning = `${file}: holds ${what} but ${readable}; chmod 600 it`;
  return { config: loaded.config, warnings: Object.freeze([...loaded.warnings, warning]) };
}
