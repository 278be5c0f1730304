/**
 * The composition root: configuration → zones (key store, record cache,
 * upstreams) → handler → TCP server; plus reload and shutdown (README,
 * "Running nsregd"). Signals themselves are wired by the CLI.
 */
import { randomBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { loadDaemonConfig, type DaemonConfig, type ZoneConfig } from '../config/daemon.js';
import { limitEntries, type Limits } from '../config/limits.js';
import { storeEntries } from '../config/store.js';
import { verifyPreparedSig0, type PreparedSig0 } from '../dns/sig0.js';
import { adminHandler, type StatusReport } from './admin.js';
import { RecordCache } from './cache.js';
import { ControlServer } from './control.js';
import { DaemonMetrics, type MetricsSource } from './metrics.js';
import { systemClock, type Clock } from '../clock.js';
import { RequestGuard, type GuardOptions } from './guard.js';
import { handleMessage, type HandlerContext } from './handler.js';
import { KeyStore } from './keydb/keystore.js';
import { ReplayStore } from './replay-store.js';
import { RegistrationServer, serverLimits } from './server.js';
import { createUpstream } from './upstreams/registry.js';
import type { SerialSource, Upstream } from './upstreams/upstream.js';
import { Zone, type ServedZone } from './zone.js';
import type { SharedStore } from './shared/contract.js';
import { openSharedStore } from './shared/etcd.js';
import { SharedZone } from './shared/shared-zone.js';
import { sharedSerial } from './shared/serial.js';
import { ZoneState } from './zonestate.js';
import { formatHostPort } from '../net/address.js';
import { resolveListenAddresses } from '../net/listen.js';

export interface DaemonOptions {
  logger: Logger;
  clock?: Clock;
  print?: boolean;
  /** What `nsregd status` reports as the version. */
  version?: string;
}

/** The signature-check settings of the `limits:` section (README, "Limits"). */
function guardOptions(l: Limits): Partial<GuardOptions> {
  return {
    perSourceRate: l.sigRatePerSource,
    perSourceBurst: l.sigBurstPerSource,
    maxInFlight: l.checksInFlight,
    maxPerSource: l.checksPerSource,
  };
}

export class Daemon {
  private readonly zones = new Map<string, ServedZone>();
  /** The store the daemons of a site share (`store: type: etcd`); none with files in the data-dir. */
  private store: SharedStore | undefined;
  private server: RegistrationServer | undefined;
  /** Listeners replaced by a reload whose connections are still finishing. */
  private retired: RegistrationServer[] = [];
  private readonly clock: Clock;
  /** One guard for the daemon's life: rate state and the replay cache survive reloads. */
  private readonly guard: RequestGuard;
  /** The replay cache's file (in the data-dir the daemon started with). */
  private replays: ReplayStore | undefined;
  private reloading: Promise<boolean> | undefined;
  /** New at each start (not at a reload): lets clients' liveness probes see a restart. */
  private readonly instanceId = randomBytes(8).toString('hex');
  private control: ControlServer | undefined;
  private metrics: DaemonMetrics | undefined;
  /** The signature check, timed for the metrics (when they are served). */
  private timedVerify: ((p: PreparedSig0) => Promise<void>) | undefined;
  /** Connection counters of listeners replaced by reloads, so the metrics' totals never go backwards. */
  private readonly closedListenerStats = { accepted: 0, refusedPerSource: 0, refusedFull: 0, evicted: 0 };
  private startedAt = 0;

  private constructor(
    private config: DaemonConfig,
    private readonly opts: DaemonOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.guard = new RequestGuard(this.guardSettings());
  }

  private guardSettings(): Partial<GuardOptions> {
    return guardOptions(this.config.limits);
  }

  /** Loads the configuration file, opens every zone and starts listening. Throws ConfigError on bad config. */
  static async start(file: string, opts: DaemonOptions): Promise<Daemon> {
    const { config, warnings } = await loadDaemonConfig(file);
    for (const w of warnings) opts.logger.warn(w);
    return Daemon.startWith(config, opts);
  }

  static async startWith(config: DaemonConfig, opts: DaemonOptions): Promise<Daemon> {
    const daemon = new Daemon(config, opts);
    daemon.startedAt = daemon.clock.now();
    try {
      // First: a daemon already running on this socket (most likely on the same data directory) stops this one
      // before it touches a key database, a state file or an upstream.
      daemon.control = await ControlServer.open(config.controlSocket, adminHandler(daemon.adminView()), opts.logger);
      opts.logger.info({ socket: config.controlSocket }, 'control socket ready');
      if (config.metricsListen !== undefined) {
        daemon.metrics = new DaemonMetrics(daemon.metricsSource());
        daemon.timedVerify = daemon.metrics.timedCheck(verifyPreparedSig0);
      }
      await daemon.openReplays();
      if (config.store.type === 'etcd') {
        daemon.store = await openSharedStore(config.store, opts.logger.child({ store: 'etcd' }));
        opts.logger.info({ endpoints: config.store.endpoints, prefix: config.store.prefix }, 'shared store ready');
      }
      for (const zc of Object.values(config.zones)) await daemon.openZone(zc);
      await daemon.listen();
      if (config.metricsListen !== undefined) {
        const bound = await daemon.metrics!.listen(config.metricsListen.host, config.metricsListen.port, opts.logger);
        opts.logger.info({ address: formatHostPort(bound.address, bound.port) }, 'serving metrics at /metrics');
      }
    } catch (err) {
      await daemon.shutdown();
      throw err;
    }
    return daemon;
  }

  /** Requests accepted before a restart stay refused as replays until their signatures expire. */
  private async openReplays(): Promise<void> {
    const log = this.opts.logger;
    const { store, entries, warnings } = await ReplayStore.open(this.config.dataDir, this.clock, (err) =>
      log.error({ err }, 'replay cache write failed'),
    );
    for (const w of warnings) log.warn(w);
    this.guard.loadReplays(entries, this.clock.now());
    this.guard.persistTo(store);
    this.replays = store;
  }

  get currentConfig(): DaemonConfig {
    return this.config;
  }

  /** Port the registration listener is bound to. */
  get port(): number {
    return this.server?.port ?? this.config.listenPort;
  }

  get listening(): string[] {
    return this.server?.addresses ?? [];
  }

  zone(name: string): ServedZone | undefined {
    return this.zones.get(name);
  }

  /** What the control channel sees of this daemon. */
  private adminView(): { zones: ReadonlyMap<string, ServedZone>; status: () => StatusReport } {
    return { zones: this.zones, status: () => this.status() };
  }

  /** Where the metrics read the daemon's state at each scrape. */
  private metricsSource(): MetricsSource {
    return {
      zones: () => this.zones.values(),
      connections: () => {
        const listeners = [this.server, ...this.retired].filter((s): s is RegistrationServer => s !== undefined);
        const sum = (f: (s: RegistrationServer) => number): number => listeners.reduce((n, s) => n + f(s), 0);
        const c = this.closedListenerStats;
        return {
          open: sum((s) => s.connectionCount),
          accepted: c.accepted + sum((s) => s.stats.accepted),
          refusedPerSource: c.refusedPerSource + sum((s) => s.stats.refusedPerSource),
          refusedFull: c.refusedFull + sum((s) => s.stats.refusedFull),
          evicted: c.evicted + sum((s) => s.stats.evicted),
        };
      },
    };
  }

  /** `nsregd status`. */
  status(): StatusReport {
    const now = this.clock.now();
    return {
      version: this.opts.version ?? 'unknown',
      instance: this.instanceId,
      started: new Date(this.startedAt).toISOString(),
      uptimeSeconds: Math.round((now - this.startedAt) / 1000),
      listening: this.listening,
      zones: [...this.zones.values()].map((z) => ({
        zone: z.name,
        names: z.keyCount,
        records: z.recordCount,
        ...(z.publishing === undefined ? {} : { publisher: z.publishing }),
        upstreams: z.upstreamStates().map((u) => ({ upstream: u.upstream, state: u.failing ? ('failing' as const) : ('up' as const), pending: u.pending })),
      })),
      limits: Object.fromEntries(limitEntries(this.config.limits)),
    };
  }

  /** The last context built, and what it was built from (see handlerContext). */
  private context:
    | { readonly config: DaemonConfig; readonly server: RegistrationServer | undefined; readonly store: SharedStore | undefined; readonly verify: Daemon['timedVerify']; readonly ctx: HandlerContext }
    | undefined;

  /**
   * What the handler needs, built again only when something it is built
   * from changed: the configuration (a reload), the listener, the store or
   * the timed check (a request would otherwise pay for an object and a
   * getsockname() call).
   */
  private handlerContext(): HandlerContext {
    const c = this.context;
    if (c !== undefined && c.config === this.config && c.server === this.server && c.store === this.store && c.verify === this.timedVerify) return c.ctx;
    const ctx = this.buildHandlerContext();
    this.context = { config: this.config, server: this.server, store: this.store, verify: this.timedVerify, ctx };
    return ctx;
  }

  private buildHandlerContext(): HandlerContext {
    return {
      zones: this.zones,
      listenAddr: this.config.listenAddr,
      listenPort: this.port,
      clock: this.clock,
      logger: this.opts.logger,
      guard: this.guard,
      maxSigValidity: this.config.limits.replayWindow,
      instanceId: this.instanceId,
      ...(this.store === undefined ? {} : { siteId: this.store.siteId }),
      ...(this.timedVerify === undefined ? {} : { verify: this.timedVerify }),
    };
  }

  private async listen(): Promise<void> {
    const server = new RegistrationServer({
      host: this.config.listenAddr,
      port: this.config.listenPort,
      handler: this.metrics === undefined
        ? (raw, remote) => handleMessage(raw, remote, this.handlerContext())
        : async (raw, remote) => {
            const outcome = await handleMessage(raw, remote, this.handlerContext());
            this.metrics?.observeOutcome(outcome);
            return outcome;
          },
      logger: this.opts.logger,
      print: this.opts.print ?? false,
      limits: serverLimits(this.config.limits),
    });
    await server.listen();
    this.server = server;
  }

  private makeUpstreams(zc: ZoneConfig, zoneLogger: Logger, zone: () => ServedZone | undefined, serial?: SerialSource): Upstream[] {
    return zc.upstreams.map((uc, i) =>
      createUpstream(uc, {
        zone: zc.name,
        labelSyntax: zc.labelSyntax,
        logger: zoneLogger.child({ upstream: `${uc.type}#${i}` }),
        clock: this.clock,
        liveRecords: (name) => zone()?.liveRecords(name) ?? [],
        allLiveRecords: () => zone()?.allLiveRecords() ?? [],
        dataDir: this.config.dataDir,
        registration: () => ({ host: this.config.listenAddr, port: this.port }),
        ...(serial === undefined ? {} : { sharedSerial: serial }),
      }),
    );
  }

  private async openZone(zc: ZoneConfig): Promise<void> {
    if (this.store !== undefined) return this.openSharedZone(zc, this.store);
    const logger = this.opts.logger.child({ zone: zc.name });
    const { store, warnings, errors } = await KeyStore.open(this.config.dataDir, zc.name, this.clock, {
      onBackgroundError: (err) => logger.error({ err }, 'key database background write failed'),
    });
    for (const w of warnings) logger.warn(w);
    // Damaged journal lines and locked names (README, "What nsregd keeps on disk"): loud, at every start.
    for (const e of errors) logger.error(e);
    // Upstreams ask the zone for live records; the zone needs the upstreams first.
    const ref: { zone?: Zone } = {};
    const upstreams = this.makeUpstreams(zc, logger, () => ref.zone);
    const { state, loaded } = await ZoneState.open(this.config.dataDir, zc.name, (err) =>
      logger.error({ err }, 'state file write failed'),
    );
    for (const w of loaded.warnings) logger.warn(w);
    for (const e of loaded.errors) logger.error(e);
    const zone = new Zone(zc, store, new RecordCache(), upstreams, logger, this.clock, state);
    if (this.metrics !== undefined) zone.observeAttempts(this.metrics.upstreamAttempt(zc.name));
    ref.zone = zone;
    zone.restore(loaded.records, loaded.ops);
    this.zones.set(zc.name, zone);
    await zone.start();
    logger.info({ keys: store.size, upstreams: upstreams.map((u) => u.description) }, 'zone ready');
  }

  /** A zone whose claims and records live in the shared store (README, "Several daemons as one service"). */
  private async openSharedZone(zc: ZoneConfig, store: SharedStore): Promise<void> {
    const logger = this.opts.logger.child({ zone: zc.name });
    const mirror = await store.mirror(zc.name);
    const ref: { zone?: ServedZone } = {};
    const upstreams = this.makeUpstreams(zc, logger, () => ref.zone, sharedSerial(mirror));
    const election = store.election(zc.name, this.instanceId);
    const zone = new SharedZone(zc, { store, mirror, election, instanceId: this.instanceId }, upstreams, logger, this.clock);
    if (this.metrics !== undefined) zone.observeAttempts(this.metrics.upstreamAttempt(zc.name));
    ref.zone = zone;
    this.zones.set(zc.name, zone);
    await zone.start();
    logger.info({ keys: zone.keyCount, records: zone.recordCount, upstreams: upstreams.map((u) => u.description) }, 'zone ready (shared store)');
  }

  /**
   * SIGHUP: re-read the file. A bad file is logged and the running
   * configuration stays untouched (the original exited). Zones keep their
   * keys and records across a change; removed zones shut down.
   */
  reload(file: string = this.config.file): Promise<boolean> {
    // Reloads do not overlap: a second SIGHUP waits for the first.
    const run = (this.reloading ?? Promise.resolve(true)).then(() => this.doReload(file));
    this.reloading = run;
    return run;
  }

  private async doReload(file: string): Promise<boolean> {
    const log = this.opts.logger;
    let next: DaemonConfig;
    try {
      const loaded = await loadDaemonConfig(file);
      for (const w of loaded.warnings) log.warn(w);
      next = loaded.config;
    } catch (err) {
      log.error({ err: err }, 'reload failed; keeping the running configuration');
      return false;
    }
    if (next.dataDir !== this.config.dataDir) {
      log.warn({ old: this.config.dataDir, new: next.dataDir }, 'data-dir changed: running zones keep their key databases until restart');
    }
    if (!isDeepStrictEqual(next.metricsListen, this.config.metricsListen)) {
      log.warn('metrics-listen changed: takes effect at the next start');
    }
    if (next.controlSocket !== this.config.controlSocket) {
      log.warn({ old: this.config.controlSocket, new: next.controlSocket }, 'control-socket changed: takes effect at the next start');
    }
    if (!isDeepStrictEqual(next.store, this.config.store)) {
      // storeEntries shows no secret (a changed password is "(set)" both times).
      log.warn({ old: storeEntries(this.config.store), new: storeEntries(next.store) }, 'store changed: takes effect at the next start');
      // Zones added by this reload open in the store the daemon runs on.
      next = { ...next, store: this.config.store };
    }
    const previous = this.config;
    this.config = next;
    this.applyLimits(previous.limits);
    for (const [name, zone] of [...this.zones]) {
      if (next.zones[name] === undefined) {
        this.zones.delete(name);
        await zone.shutdown();
        log.info({ zone: name }, 'zone removed');
      }
    }
    for (const zc of Object.values(next.zones)) {
      const zone = this.zones.get(zc.name);
      if (zone === undefined) {
        try {
          await this.openZone(zc);
          log.info({ zone: zc.name }, 'zone added');
        } catch (err) {
          log.error({ zone: zc.name, err: err }, 'zone could not be opened');
        }
        continue;
      }
      if (isDeepStrictEqual(zone.config, zc)) continue;
      // New, changed and removed upstreams converge to the live records (Zone.reconfigure).
      await zone.reconfigure(zc, this.makeUpstreams(zc, zone.logger, () => zone));
      log.info({ zone: zc.name }, 'zone settings changed');
    }
    // listen-addr is resolved again, so a name whose addresses changed takes
    // effect too. Listeners whose addresses stay are kept: closing and
    // re-opening them would turn away clients connecting in between.
    if (await this.listenersStillRight(previous)) {
      log.info('configuration reloaded');
      return true;
    }
    // The old listeners stop accepting but let their open connections finish.
    const old = this.server;
    this.server = undefined;
    await old?.stopAccepting();
    try {
      await this.listen();
    } catch (err) {
      log.error({ err: err }, 'cannot listen on the new address; going back to the old one');
      this.config = { ...next, listenAddr: previous.listenAddr, listenPort: previous.listenPort };
      await this.listen();
    }
    if (old !== undefined) this.retired.push(old);
    for (const s of this.retired.filter((r) => r.connectionCount === 0)) this.retireStats(s);
    this.retired = this.retired.filter((s) => s.connectionCount > 0);
    log.info('configuration reloaded');
    return true;
  }

  /**
   * A reload's `limits:` take effect at once, none needs a restart: the
   * guard's (rates, check slots) for the next request, the listener's for
   * connections accepted and deadlines armed from now on; records-per-name
   * reaches the zones as a zone setting and replay-window the next request.
   */
  private applyLimits(previous: Limits): void {
    const before = new Map(limitEntries(previous));
    const changed = limitEntries(this.config.limits)
      .filter(([key, value]) => before.get(key) !== value)
      .map(([key, value]) => `${key} ${value}`);
    if (changed.length === 0) return;
    this.guard.reconfigure(this.guardSettings());
    this.server?.setLimits(serverLimits(this.config.limits));
    this.opts.logger.info({ changed }, 'limits changed');
  }

  private retireStats(s: RegistrationServer): void {
    const c = this.closedListenerStats;
    c.accepted += s.stats.accepted;
    c.refusedPerSource += s.stats.refusedPerSource;
    c.refusedFull += s.stats.refusedFull;
    c.evicted += s.stats.evicted;
  }

  /** Whether the bound listeners are exactly what the new listen-addr and listen-port ask for. */
  private async listenersStillRight(previous: DaemonConfig): Promise<boolean> {
    const server = this.server;
    if (server === undefined || this.config.listenPort !== previous.listenPort) return false;
    let wanted: string[];
    try {
      wanted = await resolveListenAddresses(this.config.listenAddr);
    } catch {
      return false;
    }
    const bound = new Set(server.addresses);
    return wanted.length === bound.size && wanted.every((a) => bound.has(formatHostPort(a, server.port)));
  }

  /**
   * Stops accepting, shuts every zone down (records removed upstream except
   * where keep-records, key databases written) and closes connections.
   */
  async shutdown(): Promise<void> {
    await this.control?.close();
    this.control = undefined;
    await this.metrics?.close();
    await this.server?.stopAccepting();
    const zones = [...this.zones.values()];
    this.zones.clear();
    await Promise.allSettled(zones.map((z) => z.shutdown()));
    await this.server?.close();
    this.server = undefined;
    await Promise.all(this.retired.map((s) => s.close()));
    this.retired = [];
    await this.replays?.close();
    this.replays = undefined;
    await this.store?.close();
    this.store = undefined;
  }
}
