/**
 * nsregc's composition root: configuration and key, the address
 * source, zone discovery, one SRV lookup per zone, and one Registrar per
 * nsregd server, fed with the host's address changes.
 *
 * The command line (src/cli/nsregc.ts) only parses flags, owns the signals
 * and turns outcomes into exit codes; everything between lives here so it
 * can be driven without a process of its own.
 */
import { chmod, mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { loadClientConfig, mergeClientFlags, type ClientConfig, type ClientFlags, type DnsServer } from '../config/client.js';
import { systemClock, type Clock } from '../clock.js';
import { randomInt } from 'node:crypto';
import { Opcode, RRClass, RRType } from '../dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../dns/message.js';
import { formatWire } from '../dns/present.js';
import { formatHostPort } from '../net/address.js';
import { tcpExchange } from '../net/transport.js';
import { HostAddresses } from './addresses/host.js';
import { openAddressSource, PollAddressSource, type AddressSource } from './addresses/index.js';
import { daemonInstance, discoverZones, findServers, makeQuery, type LookupFn, type NsregServer, type QueryFn } from './discover.js';
import { ClientStartError } from './errors.js';
import { loadClientKey, type ClientKey } from './keys.js';
import { Registrar, type ProbeFn, type SendFn } from './registrar.js';
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
  /** resolv.conf consulted when `dns-server` is unset. */
  readonly resolvConf?: string;
  /** SRV target look-ups (tests); default getaddrinfo. */
  readonly lookup?: LookupFn;
  /** Time between liveness probes of each server; default the configuration's probe-interval. */
  readonly probeIntervalMs?: number;
  /** Aborts start-up between its steps (a signal during discovery). */
  readonly signal?: AbortSignal;
}

function serverText(s: { host: string; port: number }): string {
  return formatHostPort(s.host, s.port);
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ClientStartError('aborted', 'start-up interrupted', { cause: signal.reason });
}

/** A running nsregc: one Registrar per nsregd server found. */
export class NsregClient {
  /** Resolves once every server has refused us (nothing is left to do). */
  readonly allRefused: Promise<void>;
  private stopping: Promise<void> | undefined;

  private constructor(
    readonly servers: readonly NsregServer[],
    readonly registrars: readonly Registrar[],
    private readonly addresses: HostAddresses,
    allRefused: Promise<void>,
  ) {
    this.allRefused = allRefused;
  }

  /**
   * Opens the address source, finds zones and servers, and starts
   * registering. Throws ClientStartError('no-zones' | 'no-servers') when
   * there is nothing to register with, ResolvConfError when no DNS server
   * is known. The initial updates run in the background: watch
   * `allRefused`, or `idle()` for tests.
   */
  static async start(opts: StartClientOptions): Promise<NsregClient> {
    const { config, logger: log } = opts;
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
      const dnsServer: DnsServer = config.dnsServer ?? (await systemNameserver(opts.resolvConf));
      log.info(
        { dnsServer: serverText(dnsServer), transport: config.dnsTcp ? 'tcp' : 'udp' },
        'looking up zones and servers through this DNS server',
      );
      const query: QueryFn = makeQuery({ server: dnsServer, tcp: config.dnsTcp, timeoutMs: config.dnsTimeout });
      const zones = [...config.zones];
      if (config.discoverZones) {
        const found = await discoverZones({
          query,
          networks: addresses.networks(),
          clock,
          retryDelayMs: config.dnsTimeout,
          logger: log.child({ part: 'discovery' }),
        });
        for (const z of found) if (!zones.includes(z)) zones.push(z);
        checkAborted(opts.signal);
      }
      if (zones.length === 0) {
        throw new ClientStartError(
          'no-zones',
          'no zone to register in: name one on the command line or in `zones`, or publish one for ' +
            'discovery (PTR at r._dns-sd._udp.<domain>, RFC 6763 section 11)',
        );
      }
      log.info({ zones, label: config.name }, 'zones to register in');
      const servers = await findServers(zones, config.name, {
        query,
        logger: log.child({ part: 'discovery' }),
        ...(opts.lookup === undefined ? {} : { lookup: opts.lookup }),
      });
      checkAborted(opts.signal);
      if (servers.length === 0) {
        throw new ClientStartError(
          'no-servers',
          `no nsregd server found for ${zones.join(', ')} (no usable SRV record at _nsreg._tcp.<zone> ` +
            `from DNS server ${serverText(dnsServer)})`,
        );
      }
      return NsregClient.launch(opts, clock, servers, addresses);
    } catch (err) {
      await addresses.close().catch(() => undefined);
      throw err;
    }
  }

  private static launch(
    opts: StartClientOptions,
    clock: Clock,
    servers: readonly NsregServer[],
    addresses: HostAddresses,
  ): NsregClient {
    const { config, logger: log } = opts;
    let resolveAllRefused: () => void = () => undefined;
    const allRefused = new Promise<void>((resolve) => {
      resolveAllRefused = resolve;
    });
    const registrars: Registrar[] = [];
    const onStateChange = (): void => {
      if (registrars.length > 0 && registrars.every((r) => r.state === 'refused')) resolveAllRefused();
    };
    for (const server of servers) {
      const where = serverText(server);
      const rlog = log.child({ registering: server.name });
      const exchange: SendFn = (update) =>
        tcpExchange({ host: server.host, port: server.port, message: update, timeoutMs: config.dnsTimeout });
      const send: SendFn = opts.print === true ? printing(exchange, rlog, where) : exchange;
      const probe = srvProbe(server, config.dnsTimeout);
      registrars.push(
        new Registrar({
          zone: server.zone,
          name: server.name,
          server: where,
          key: opts.key,
          keyTtl: Math.floor(config.keyTtl / 1000),
          addresses,
          send,
          probe,
          probeIntervalMs: opts.probeIntervalMs ?? config.probeInterval,
          clock,
          logger: rlog,
          onStateChange,
        }),
      );
    }
    addresses.onChange((kind, address, ttl) => {
      for (const r of registrars) {
        if (kind === 'new') void r.addressAdded({ address, ttl });
        else void r.addressRemoved(address);
      }
    });
    for (const r of registrars) void r.start();
    return new NsregClient(servers, registrars, addresses, allRefused);
  }

  /** Resolves once every registrar has finished the updates queued so far (tests). */
  async idle(): Promise<void> {
    await Promise.all(this.registrars.map((r) => r.idle()));
  }

  /** True when every server refused us. */
  get refusedEverywhere(): boolean {
    return this.registrars.every((r) => r.state === 'refused');
  }

  /**
   * Stops following addresses and, unless `keep`, removes every
   * registered record from every server.
   */
  shutdown(keep: boolean): Promise<void> {
    this.stopping ??= (async (): Promise<void> => {
      await Promise.all(this.registrars.map((r) => r.shutdown(keep)));
      await this.addresses.close();
    })();
    return this.stopping;
  }
}

/**
 * The liveness question: SRV `_nsreg._tcp.<zone>` over TCP to the server
 * itself. Every nsregd answers it (the original too), it needs no
 * signature, and any reply with our ID counts as alive, whatever its rcode.
 * Resolves with the daemon's start-up identifier, if the answer has one.
 */
function srvProbe(server: NsregServer, timeoutMs: number): ProbeFn {
  return async (): Promise<string | undefined> => {
    const id = randomInt(0, 0x10000);
    const q = emptyMessage(id, Opcode.QUERY);
    q.questions.push({ name: `_nsreg._tcp.${server.zone}`, type: RRType.SRV, class: RRClass.IN });
    const reply = decodeMessage(
      await tcpExchange({ host: server.host, port: server.port, message: encodeMessage(q), timeoutMs: Math.min(timeoutMs, 5000) }),
    );
    if (!reply.qr || reply.id !== id) throw new Error('liveness probe: reply does not match the query');
    return daemonInstance(reply);
  };
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
