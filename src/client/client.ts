/**
 * nsregc's composition root: configuration and key, the address
 * source, the zone locator (discovery and one SRV look-up per zone, kept
 * current as the host moves), and one Registrar per zone's nsregd server,
 * fed with the host's address changes.
 *
 * The command line (src/cli/nsregc.ts) only parses flags, owns the signals
 * and turns outcomes into exit codes; everything between lives here so it
 * can be driven without a process of its own.
 */
import { chmod, mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { loadClientConfig, mergeClientFlags, type ClientConfig, type ClientFlags, type DnsServer } from '../config/client.js';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { randomInt } from 'node:crypto';
import { Opcode, RRClass, RRType } from '../dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../dns/message.js';
import { formatWire } from '../dns/present.js';
import { formatHostPort } from '../net/address.js';
import { tcpExchange } from '../net/transport.js';
import { HostAddresses } from './addresses/host.js';
import { openAddressSource, PollAddressSource, type AddressSource } from './addresses/index.js';
import { daemonInstance, daemonSite, makeQuery, type LookupFn, type NsregServer, type QueryFn } from './discover.js';
import { ClientStartError } from './errors.js';
import { loadClientKey, type ClientKey } from './keys.js';
import { ZoneLocator } from './locator.js';
import { ZoneRegistration, type DaemonIdentity, type RegistrarHooks } from './failover.js';
import { Registrar, type SendFn } from './registrar.js';
import { systemNameserver } from './resolvconf.js';

export interface LoadClientSetupOptions {
  /** `-c FILE`. */
  readonly conffile?: string;
  /** The user's home directory (~/.nsregc lives there). */
  readonly home: string;
  readonly flags: ClientFlags;
  /** Overrides os.hostname() (tests). */
  readonly hostname?: string;
  /** Files tried without `-c` (tests); default /etc/nsregc then ~/.nsregc. */
  readonly searchPaths?: readonly string[];
}

export interface ClientSetup {
  readonly config: ClientConfig;
  readonly warnings: readonly string[];
  /** No configuration file was found: running on the defaults table. */
  readonly usedDefaults: boolean;
}

/**
 * The configuration file (or the defaults) with the command line on top.
 * Throws ConfigError naming the file or flag, the key and the bad value.
 */
export async function loadClientSetup(opts: LoadClientSetupOptions): Promise<ClientSetup> {
  const loaded = await loadClientConfig({
    home: opts.home,
    ...(opts.conffile === undefined ? {} : { file: opts.conffile }),
    ...(opts.hostname === undefined ? {} : { hostname: opts.hostname }),
    ...(opts.searchPaths === undefined ? {} : { searchPaths: opts.searchPaths }),
    nameFlag: opts.flags.name !== undefined,
  });
  return {
    config: mergeClientFlags(loaded.config, opts.flags),
    warnings: loaded.warnings,
    usedDefaults: loaded.usedDefaults,
  };
}

/**
 * Loads the key pair, generating it on first use. Without a configuration
 * file the keys live in ~/.nsregc, created here with mode 0700: it holds
 * a private key.
 */
export async function prepareClientKey(setup: ClientSetup, logger: Logger): Promise<ClientKey> {
  const { config } = setup;
  if (setup.usedDefaults) {
    const created = await mkdir(config.configDir, { recursive: true, mode: 0o700 });
    if (created !== undefined) {
      // mkdir's mode passes through the umask; the directory must not be group/world readable.
      await chmod(config.configDir, 0o700);
      logger.info({ dir: config.configDir }, 'created the key directory');
    }
  }
  const key = await loadClientKey({
    keyFile: config.keyFile,
    privateKeyFile: config.privateKeyFile,
    genKey: config.genKey,
    name: config.name,
  });
  logger.info(
    { keyFile: key.publicPath, algorithm: key.algorithm, keyTag: key.keyTag },
    key.generated ? 'generated a new key pair' : 'loaded key pair',
  );
  return key;
}

export interface StartClientOptions {
  readonly config: ClientConfig;
  readonly key: ClientKey;
  readonly logger: Logger;
  /** Log every update sent and every reply in presentation form (`--print`). */
  readonly print?: boolean;
  readonly clock?: Clock;
  /** Default: rtnetlink, falling back to polling (logged). */
  readonly openSource?: (logger: Logger) => Promise<AddressSource>;
  /** Replaces a source that failed while running; default the polled interface list. */
  readonly fallbackSource?: () => AddressSource;
  /** resolv.conf consulted when `dns-server` is unset (read again at each look-up round). */
  readonly resolvConf?: string;
  /** SRV target look-ups (tests); default getaddrinfo. */
  readonly lookup?: LookupFn;
  /** Time between liveness probes of each server; default the configuration's probe-interval. */
  readonly probeIntervalMs?: number;
  /** Look-up retry bounds (tests); default the locator's. */
  readonly lookupRetryInitialMs?: number;
  readonly lookupRetryCapMs?: number;
  /** Aborts start-up (a signal while the address source opens). */
  readonly signal?: AbortSignal;
}

/**
 * Network events within this window start one new look-up round: a move
 * to another network brings several (addresses, routes) within a second.
 */
export const NETWORK_SETTLE_MS = 1_000;

function serverText(s: { host: string; port: number }): string {
  return formatHostPort(s.host, s.port);
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ClientStartError('aborted', 'start-up interrupted', { cause: signal.reason });
}

/**
 * A running nsregc: the zone locator, and for each zone whose nsregd
 * servers were found a ZoneRegistration (src/client/failover.ts) keeping
 * the name with one of them: failing over between a zone's servers, and
 * retiring a server that was replaced (the host moved, the SRV record
 * changed). Address events go to the registrar in use in each zone.
 */
export class NsregClient {
  /** Resolves once every zone known has refused us (nothing is left to do). */
  readonly allRefused: Promise<void>;
  private resolveAllRefused: () => void = () => undefined;
  private readonly slots = new Map<string, ZoneRegistration>();
  private readonly locator: ZoneLocator;
  private networkTimer: TimerHandle | undefined;
  private stopping: Promise<void> | undefined;
  private dnsServerSeen: string | undefined;

  private constructor(
    private readonly opts: StartClientOptions,
    private readonly clock: Clock,
    private readonly addresses: HostAddresses,
  ) {
    this.allRefused = new Promise<void>((resolve) => {
      this.resolveAllRefused = resolve;
    });
    const { config, logger } = opts;
    this.locator = new ZoneLocator({
      zones: config.zones,
      discover: config.discoverZones,
      label: config.name,
      query: () => this.currentQuery(),
      networks: () => this.addresses.networks(),
      ...(opts.lookup === undefined ? {} : { lookup: opts.lookup }),
      clock,
      logger: logger.child({ part: 'discovery' }),
      discoveryRetryDelayMs: config.dnsTimeout,
      ...(opts.lookupRetryInitialMs === undefined ? {} : { retryInitialMs: opts.lookupRetryInitialMs }),
      ...(opts.lookupRetryCapMs === undefined ? {} : { retryCapMs: opts.lookupRetryCapMs }),
      onServers: (servers) => this.serversFound(servers),
    });
  }

  /**
   * Opens the address source and starts looking for zones and servers in
   * the background; registration follows as servers are found. Throws
   * ClientStartError('no-zones') when no zone is configured and discovery
   * is off. Nothing else ends the run early: zones whose look-up fails are
   * retried for as long as the client runs. Watch `allRefused`, or
   * `idle()` in tests.
   */
  static async start(opts: StartClientOptions): Promise<NsregClient> {
    const { config, logger: log } = opts;
    if (config.zones.length === 0 && !config.discoverZones) {
      throw new ClientStartError(
        'no-zones',
        'no zone to register in: name one on the command line or in `zones`, or turn on `discover-zones` ' +
          '(PTR at r._dns-sd._udp.<domain>, RFC 6763 section 11)',
      );
    }
    const clock = opts.clock ?? systemClock;
    const source = await (opts.openSource ?? ((l: Logger): Promise<AddressSource> => openAddressSource(l)))(log);
    const addresses = new HostAddresses(
      source,
      { interfaces: config.interfaces, excludeSubnets: config.excludeSubnets },
      Math.floor(config.addrTtl / 1000),
      config.extraAddresses,
      log.child({ part: 'addresses' }),
      opts.fallbackSource ?? ((): AddressSource => new PollAddressSource()),
    );
    try {
      await addresses.open();
      checkAborted(opts.signal);
    } catch (err) {
      await addresses.close().catch(() => undefined);
      throw err;
    }
    const client = new NsregClient(opts, clock, addresses);
    addresses.onChange((kind, address, ttl) => {
      for (const { registrar } of client.slots.values()) {
        if (kind === 'new') registrar.addressAdded({ address, ttl });
        else registrar.addressRemoved(address);
      }
    });
    addresses.onNetworkChange(() => client.networkEvent());
    if (config.zones.length > 0) log.info({ zones: config.zones, label: config.name }, 'zones to register in');
    client.locator.start();
    return client;
  }

  /** The servers registered with now, one per zone. */
  get servers(): NsregServer[] {
    return [...this.slots.values()].map((s) => s.server);
  }

  /** The registrars now, one per zone with a server. */
  get registrars(): Registrar[] {
    return [...this.slots.values()].map((s) => s.registrar);
  }

  /** Resolves once the look-ups under way and every registrar's queued updates are done (tests). */
  async idle(): Promise<void> {
    await this.locator.idle();
    await Promise.all([...this.slots.values()].map((z) => z.idle()));
  }

  /** True when every zone known refused us. */
  get refusedEverywhere(): boolean {
    const zones = this.locator.zones;
    return zones.length > 0 && zones.every((z) => this.slots.get(z)?.registrar.state === 'refused');
  }

  /**
   * Stops looking and following addresses and, unless `keep`, removes
   * every registered record from every server.
   */
  shutdown(keep: boolean): Promise<void> {
    this.stopping ??= (async (): Promise<void> => {
      this.locator.close();
      this.networkTimer?.cancel();
      this.networkTimer = undefined;
      await Promise.all([...this.slots.values()].map((z) => z.shutdown(keep)));
      await this.addresses.close();
    })();
    return this.stopping;
  }

  /** The DNS server for this round: `dns-server`, or resolv.conf read now. */
  private async currentQuery(): Promise<QueryFn> {
    const { config, logger } = this.opts;
    const dnsServer: DnsServer = config.dnsServer ?? (await systemNameserver(this.opts.resolvConf));
    const where = serverText(dnsServer);
    if (where !== this.dnsServerSeen) {
      this.dnsServerSeen = where;
      logger.info({ dnsServer: where, transport: config.dnsTcp ? 'tcp' : 'udp' }, 'looking up zones and servers through this DNS server');
    }
    return makeQuery({ server: dnsServer, tcp: config.dnsTcp, timeoutMs: config.dnsTimeout });
  }

  /** Prefixes or default routes changed: after the settle window, probe every server and look everything up again. */
  private networkEvent(): void {
    if (this.stopping !== undefined || this.networkTimer !== undefined) return;
    this.networkTimer = this.clock.schedule(NETWORK_SETTLE_MS, () => {
      this.networkTimer = undefined;
      if (this.stopping !== undefined) return;
      this.opts.logger.info('the host\'s networks changed; looking up zones and servers again');
      for (const r of this.registrars) r.networkChanged();
      this.locator.networkChanged();
    });
  }

  /** A look-up found a zone's servers: a new zone, or a new SRV order for one known. */
  private serversFound(servers: readonly NsregServer[]): void {
    const first = servers[0];
    if (this.stopping !== undefined || first === undefined) return;
    const zone = this.slots.get(first.zone);
    if (zone !== undefined) {
      zone.update(servers);
      return;
    }
    const timeoutMs = this.opts.config.dnsTimeout;
    this.slots.set(
      first.zone,
      new ZoneRegistration({
        servers,
        makeRegistrar: (server, hooks) => this.makeRegistrar(server, hooks),
        identify: (server) => identify(server, timeoutMs),
        clock: this.clock,
        logger: this.opts.logger,
      }),
    );
  }

  private makeRegistrar(server: NsregServer, hooks: RegistrarHooks): Registrar {
    const { config, logger: log } = this.opts;
    const where = serverText(server);
    const rlog = log.child({ registering: server.name });
    const exchange: SendFn = (update) =>
      tcpExchange({ host: server.host, port: server.port, message: update, timeoutMs: config.dnsTimeout });
    return new Registrar({
      zone: server.zone,
      name: server.name,
      server: where,
      key: this.opts.key,
      keyTtl: Math.floor(config.keyTtl / 1000),
      addresses: this.addresses,
      send: this.opts.print === true ? printing(exchange, rlog, where) : exchange,
      probe: hooks.probe,
      onServerHealth: hooks.onServerHealth,
      probeIntervalMs: this.opts.probeIntervalMs ?? config.probeInterval,
      clock: this.clock,
      logger: rlog,
      onStateChange: () => {
        if (this.refusedEverywhere) this.resolveAllRefused();
      },
    });
  }
}

/**
 * The liveness question: SRV `_nsreg._tcp.<zone>` over TCP to the server
 * itself. Every nsregd answers it (the original too), it needs no
 * signature, and any reply with our ID counts as alive, whatever its rcode.
 * Resolves with the daemon's start-up and site identifiers, where the
 * answer has them.
 */
async function identify(server: NsregServer, timeoutMs: number): Promise<DaemonIdentity> {
  const id = randomInt(0, 0x10000);
  const q = emptyMessage(id, Opcode.QUERY);
  q.questions.push({ name: `_nsreg._tcp.${server.zone}`, type: RRType.SRV, class: RRClass.IN });
  const reply = decodeMessage(
    await tcpExchange({ host: server.host, port: server.port, message: encodeMessage(q), timeoutMs: Math.min(timeoutMs, 5000) }),
  );
  if (!reply.qr || reply.id !== id) throw new Error('liveness probe: reply does not match the query');
  return { instance: daemonInstance(reply), site: daemonSite(reply) };
}

/** Wraps a SendFn so each update and reply is logged in presentation form. */
function printing(send: SendFn, log: Logger, where: string): SendFn {
  const show = (what: string, raw: Buffer): void => log.info(`${what}:\n${formatWire(raw)}`);
  return async (update: Buffer): Promise<Buffer> => {
    show(`update to ${where}`, update);
    const reply = await send(update);
    show(`reply from ${where}`, reply);
    return reply;
  };
}
