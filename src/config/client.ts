/**
 * nsregc's configuration (README, "Running nsregc"): file search, defaults
 * table, command-line overrides. The result is frozen.
 *
 * `dns-server` accepts the original's `HOST[@PORT]` (`192.0.2.1@5353`,
 * `::1@5353`, `[::1]@5353`) and, as an extension, `[V6]:PORT` and
 * `HOST:PORT` when HOST has no colon of its own. The port defaults to 53.
 */
import { readFile, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Cidr, normalizeIp } from '../net/address.js';
import { COMMAND_LINE, ConfigError } from './errors.js';
import type { LoadedConfig } from './daemon.js';
import {
  deepFreeze,
  fail,
  MapReader,
  newContext,
  normalizeFqdn,
  parseYamlDocument,
  TIMER_LIMIT,
  toAddress,
  toFqdn,
  TTL_LIMIT,
  unique,
  warn,
  type KeyPath,
  type ParseContext,
} from './validate.js';
import { errnoCode } from '../errors.js';

export interface DnsServer {
  /** Normalised IP literal, or a host name without trailing dot. */
  readonly host: string;
  readonly port: number;
}

export interface ClientConfig {
  /** Absolute path of the file read, or null when running on defaults. */
  readonly file: string | null;
  /** Directory relative key paths were resolved against (~/.nsregc without a file). */
  readonly configDir: string;
  /** Unqualified name to register (lower case, no trailing dot). */
  readonly name: string;
  /** Zone FQDNs (lower case, trailing dot), deduplicated. */
  readonly zones: readonly string[];
  readonly discoverZones: boolean;
  /** Empty = every interface. */
  readonly interfaces: readonly string[];
  readonly excludeSubnets: readonly Cidr[];
  /** Normalised address literals. */
  readonly extraAddresses: readonly string[];
  readonly keepRecords: boolean;
  /** Absolute. */
  readonly keyFile: string;
  /** Absolute. */
  readonly privateKeyFile: string;
  readonly genKey: boolean;
  /** ms */
  readonly keyTtl: number;
  /** ms */
  readonly addrTtl: number;
  /** null = first nameserver of /etc/resolv.conf. */
  readonly dnsServer: DnsServer | null;
  readonly dnsTcp: boolean;
  /** ms */
  readonly dnsTimeout: number;
  readonly debug: boolean;
  /** ms between liveness probes of each nsregd server. */
  readonly probeInterval: number;
}

/** The defaults table; `name` defaults to the system host name. */
export const CLIENT_DEFAULTS = Object.freeze({
  zones: Object.freeze([] as string[]),
  'discover-zones': true,
  interfaces: Object.freeze([] as string[]),
  'exclude-subnets': Object.freeze(['127.0.0.1/8', '::1/128', 'fe80::/10', '169.254.0.0/16']),
  'extra-addresses': Object.freeze([] as string[]),
  'keep-records': false,
  'key-file': 'nsregc.key',
  'private-key-file': 'nsregc.private',
  'gen-key': true,
  'key-ttl': 720 * 3_600_000,
  'addr-ttl': 3_600_000,
  'dns-tcp': false,
  'dns-timeout': 10_000,
  debug: false,
  'probe-interval': 15_000,
});

export const DEFAULT_DNS_PORT = 53;

/** Per-user directory holding keys (and optionally nsregc.yaml). */
export function userConfigDir(home: string): string {
  return path.resolve(home, '.nsregc');
}

/** Files tried, in order, when no `-c` is given. */
export function clientConfigCandidates(home: string): string[] {
  const dirs = ['/etc/nsregc', userConfigDir(home)];
  return dirs.flatMap((d) => ['nsregc.yaml', 'nsregc.yml', 'nsregc.json'].map((f) => path.join(d, f)));
}

/** Parse `HOST[@PORT]` (see module comment); null if malformed. */
export function parseDnsServer(text: string): DnsServer | null {
  let s = text.trim();
  if (s === '') return null;
  let portText: string | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    portText = s.slice(at + 1);
    s = s.slice(0, at);
  } else {
    const bracketPort = /^(\[[^\]]*\]):([0-9]+)$/.exec(s);
    if (bracketPort !== null) {
      s = bracketPort[1];
      portText = bracketPort[2];
    } else if (s.indexOf(':') > 0 && s.indexOf(':') === s.lastIndexOf(':')) {
      portText = s.slice(s.indexOf(':') + 1);
      s = s.slice(0, s.indexOf(':'));
    }
  }
  if (s.startsWith('[') && s.endsWith(']')) {
    s = s.slice(1, -1);
    if (!s.includes(':')) return null; // brackets are for IPv6 only
  }
  let port = DEFAULT_DNS_PORT;
  if (portText !== undefined && portText !== '') {
    if (!/^[0-9]{1,5}$/.test(portText)) return null;
    port = Number(portText);
    if (port < 1 || port > 65535) return null;
  }
  const ip = normalizeIp(s);
  if (ip !== null) return { host: ip, port };
  if (s.includes(':')) return null;
  const fqdn = normalizeFqdn(s);
  if (fqdn === null || fqdn === '.') return null;
  return { host: fqdn.slice(0, -1), port };
}

function toDnsServer(ctx: ParseContext, p: KeyPath, text: string): DnsServer {
  const server = parseDnsServer(text);
  if (server === null) fail(ctx, p, 'address', 'not a DNS server; write HOST or HOST@PORT', text);
  return server;
}

function toName(ctx: ParseContext, p: KeyPath, text: string): string {
  const n = normalizeFqdn(text);
  if (n === null || n === '.') fail(ctx, p, 'name', 'not a valid host name', text);
  return n.slice(0, -1);
}

/**
 * The default name: the system host name, or its first label when it is a
 * domain name (`host.example.com` → `host`; the zone supplies the rest, and
 * a dotted label would be refused by the daemon). Warns when it shortens.
 */
function hostnameLabel(ctx: ParseContext, hostname: string, opts: ParseOptions): string {
  const full = toName(ctx, ['name'], hostname);
  const dot = full.indexOf('.');
  if (dot < 0) return full;
  const label = full.slice(0, dot);
  if (opts.nameFlag !== true) {
    warn(ctx, ['name'], `the host name "${full}" is a domain name; registering its first label "${label}"`);
  }
  return label;
}

interface ParseOptions {
  /** Overrides os.hostname() (tests). */
  readonly hostname?: string;
  /** `--name` was given: the host name is not used, so nothing is said about it. */
  readonly nameFlag?: boolean;
}

function buildClientConfig(ctx: ParseContext, raw: unknown, file: string | null, opts: ParseOptions): ClientConfig {
  const r = new MapReader(ctx, [], raw);
  const dir = ctx.baseDir;
  const nameText = r.nonEmptyString('name');
  const dnsServerText = r.string('dns-server');
  const config: ClientConfig = {
    file,
    configDir: dir,
    name: nameText !== undefined ? toName(ctx, r.at('name'), nameText) : hostnameLabel(ctx, opts.hostname ?? os.hostname(), opts),
    zones: unique(r.fqdnList('zones') ?? [...CLIENT_DEFAULTS.zones]),
    discoverZones: r.bool('discover-zones') ?? CLIENT_DEFAULTS['discover-zones'],
    interfaces: unique(r.stringList('interfaces') ?? [...CLIENT_DEFAULTS.interfaces]),
    excludeSubnets:
      r.cidrList('exclude-subnets') ?? CLIENT_DEFAULTS['exclude-subnets'].map((c) => Cidr.parse(c) as Cidr),
    extraAddresses: unique(r.addressList('extra-addresses') ?? [...CLIENT_DEFAULTS['extra-addresses']]),
    keepRecords: r.bool('keep-records') ?? CLIENT_DEFAULTS['keep-records'],
    keyFile: path.resolve(dir, r.nonEmptyString('key-file') ?? CLIENT_DEFAULTS['key-file']),
    privateKeyFile: path.resolve(dir, r.nonEmptyString('private-key-file') ?? CLIENT_DEFAULTS['private-key-file']),
    genKey: r.bool('gen-key') ?? CLIENT_DEFAULTS['gen-key'],
    keyTtl: r.duration('key-ttl', TTL_LIMIT) ?? CLIENT_DEFAULTS['key-ttl'],
    addrTtl: r.duration('addr-ttl', TTL_LIMIT) ?? CLIENT_DEFAULTS['addr-ttl'],
    dnsServer:
      dnsServerText === undefined || dnsServerText.trim() === ''
        ? null
        : toDnsServer(ctx, r.at('dns-server'), dnsServerText),
    dnsTcp: r.bool('dns-tcp') ?? CLIENT_DEFAULTS['dns-tcp'],
    dnsTimeout: r.duration('dns-timeout', TIMER_LIMIT) ?? CLIENT_DEFAULTS['dns-timeout'],
    debug: r.bool('debug') ?? CLIENT_DEFAULTS.debug,
    probeInterval: r.duration('probe-interval', TIMER_LIMIT) ?? CLIENT_DEFAULTS['probe-interval'],
  };
  r.finish();
  return config;
}

/** Parse configuration text read from `file`. */
export function parseClientConfig(text: string, file: string, opts: ParseOptions = {}): LoadedConfig<ClientConfig> {
  const ctx = newContext(file);
  const config = buildClientConfig(ctx, parseYamlDocument(ctx, text), path.resolve(file), opts);
  return { config: deepFreeze(config), warnings: Object.freeze([...ctx.warnings]) };
}

/** The configuration used when no file exists: every default, keys under ~/.nsregc. */
export function defaultClientConfig(home: string, opts: ParseOptions = {}): ClientConfig {
  return loadDefaults(home, opts).config;
}

function loadDefaults(home: string, opts: ParseOptions): LoadedConfig<ClientConfig> {
  const ctx = newContext('<defaults>', userConfigDir(home));
  const config = deepFreeze(buildClientConfig(ctx, null, null, opts));
  return { config, warnings: Object.freeze([...ctx.warnings]) };
}

export interface LoadClientConfigOptions extends ParseOptions {
  /** `-c FILE`: must exist. */
  readonly file?: string;
  /** The user's home directory. */
  readonly home: string;
  /** Files tried in order without `-c` (default: clientConfigCandidates(home)). */
  readonly searchPaths?: readonly string[];
}

export interface LoadedClientConfig extends LoadedConfig<ClientConfig> {
  /**
   * True when no file was found: the caller should create
   * `config.configDir` (mode 0700) before writing keys there.
   */
  readonly usedDefaults: boolean;
}

function readError(file: string, err: unknown): ConfigError {
  const why = errnoCode(err) ?? 'error';
  return new ConfigError('read', file, '', `cannot read configuration file (${why})`, undefined, { cause: err });
}

async function exists(file: string): Promise<boolean> {
  try {
    const st = await stat(file);
    if (st.isDirectory()) throw new ConfigError('read', file, '', 'is a directory, not a configuration file');
    return true;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw readError(file, err);
  }
}

/** `-c FILE`, else the first candidate that exists, else defaults. */
export async function loadClientConfig(opts: LoadClientConfigOptions): Promise<LoadedClientConfig> {
  let file: string | undefined = opts.file;
  if (file === undefined) {
    for (const candidate of opts.searchPaths ?? clientConfigCandidates(opts.home)) {
      if (await exists(candidate)) {
        file = candidate;
        break;
      }
    }
  }
  if (file === undefined) {
    return { ...loadDefaults(opts.home, opts), usedDefaults: true };
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw readError(file, err);
  }
  return { ...parseClientConfig(text, file, opts), usedDefaults: false };
}

/** Command-line values; absent fields leave the file's values alone. */
export interface ClientFlags {
  readonly name?: string;
  /** Replaces the file's list; comma-separated items are split. */
  readonly interfaces?: readonly string[];
  /** Replaces the file's extra-addresses; comma-separated items are split. */
  readonly addresses?: readonly string[];
  readonly dnsServer?: string;
  readonly dnsTcp?: boolean;
  readonly keepRecords?: boolean;
  readonly debug?: boolean;
  /** Added to the file's zones. */
  readonly zones?: readonly string[];
}

function splitCommas(items: readonly string[]): string[] {
  return items.flatMap((i) => i.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

/** Apply command-line flags on top of a loaded configuration; bad values are ConfigErrors naming the flag. */
export function mergeClientFlags(config: ClientConfig, flags: ClientFlags): ClientConfig {
  const ctx = newContext(COMMAND_LINE, config.configDir);
  const merged: ClientConfig = {
    ...config,
    name: flags.name !== undefined ? toName(ctx, ['--name'], flags.name) : config.name,
    zones: unique([...config.zones, ...(flags.zones ?? []).map((z, i) => toFqdn(ctx, ['zone', i], z))]),
    interfaces: flags.interfaces !== undefined && flags.interfaces.length > 0 ? unique(splitCommas(flags.interfaces)) : config.interfaces,
    extraAddresses:
      flags.addresses !== undefined && flags.addresses.length > 0
        ? unique(splitCommas(flags.addresses).map((a, i) => toAddress(ctx, ['--address', i], a)))
        : config.extraAddresses,
    dnsServer:
      flags.dnsServer !== undefined && flags.dnsServer.trim() !== ''
        ? toDnsServer(ctx, ['--dns-server'], flags.dnsServer)
        : config.dnsServer,
    dnsTcp: flags.dnsTcp ?? config.dnsTcp,
    keepRecords: flags.keepRecords ?? config.keepRecords,
    debug: flags.debug ?? config.debug,
  };
  return deepFreeze(merged);
}
