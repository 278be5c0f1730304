/**
 * Where to register, kept current for as long as nsregc runs: the zones
 * (configured, plus those found by discovery, RFC 6763 §11) and, for each,
 * the nsregd servers its SRV records name, in the order RFC 2782 says to
 * try them.
 *
 * A look-up that did not get an answer naming a server (no DNS server
 * known yet, a timeout, no SRV record, a target that does not resolve) is
 * tried again with a capped back-off for as long as the client runs; a
 * host whose network is not up yet, or that sits behind a resolver that
 * does not see the zone, registers once it can. A network change (the
 * client saw the host's prefixes or default route change) runs the whole
 * search again at once: discovery and every zone's SRV, through the DNS
 * server that is current then, because a host that moved may see other
 * zones, other servers and another resolver.
 *
 * Rounds never overlap: a request made while one runs is carried out
 * when it ends. Every zone's servers found are reported; the client
 * decides whether that is news.
 */
import type { Logger } from 'pino';
import { Backoff } from '../backoff.js';
import type { Clock, TimerHandle } from '../clock.js';
import { errorMessage } from '../errors.js';
import { discoverZones, findServers, type LookupFn, type NetworkPrefix, type NsregServer, type QueryFn } from './discover.js';

/** First delay before a failed look-up is tried again. */
export const LOOKUP_RETRY_INITIAL_MS = 2_000;
/**
 * Longest delay between two tries. A minute: a host whose resolver
 * starts answering registers within one, and a zone that is not visible
 * from this network costs one SRV query a minute.
 */
export const LOOKUP_RETRY_CAP_MS = 60_000;

/**
 * Zones discovery may add, over the whole run. Each one costs an SRV query
 * per round and a registrar; a resolver on a network the host visits
 * decides what discovery finds, so it must not be able to grow that
 * without end. Configured zones do not count.
 */
export const MAX_DISCOVERED_ZONES = 32;

export interface ZoneLocatorOptions {
  /** Configured zones (command line or `zones`), FQDNs. */
  readonly zones: readonly string[];
  /** discover-zones. */
  readonly discover: boolean;
  /** The label to register (for the servers' `<label>.<zone>`). */
  readonly label: string;
  /**
   * The query function for one round; asked afresh each round (the DNS
   * server may change with the network). Rejects when no DNS server is
   * known.
   */
  readonly query: () => Promise<QueryFn>;
  /** The host's networks now, for discovery's browse domains. */
  readonly networks: () => readonly NetworkPrefix[];
  readonly lookup?: LookupFn;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Wait before discovery's one in-round retry (dns-timeout). */
  readonly discoveryRetryDelayMs: number;
  /** Back-off bounds (tests may shorten them). */
  readonly retryInitialMs?: number;
  readonly retryCapMs?: number;
  /** A zone's servers were found, in the order to try them (each time a look-up finds any); never empty. */
  readonly onServers: (servers: readonly NsregServer[]) => void;
}

export class ZoneLocator {
  private readonly zoneList: string[] = [];
  /** Zones whose latest look-up has not found a server yet. */
  private readonly unresolved = new Set<string>();
  /** Discovery has answered completely since the last network change. */
  private discovered = false;
  private readonly backoff: Backoff;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  /** A round was asked for while one ran: 'all' (network change) or 'retry'. */
  private requested: 'all' | 'retry' | undefined;
  private closed = false;
  /** Configured zones come first in zoneList; the rest were discovered. */
  private readonly configured: number;

  constructor(private readonly opts: ZoneLocatorOptions) {
    for (const z of opts.zones) this.addZone(z);
    this.configured = this.zoneList.length;
    this.backoff = new Backoff({
      initialMs: opts.retryInitialMs ?? LOOKUP_RETRY_INITIAL_MS,
      capMs: opts.retryCapMs ?? LOOKUP_RETRY_CAP_MS,
    });
  }

  /** Every zone known so far (configured, then discovered). */
  get zones(): readonly string[] {
    return this.zoneList;
  }

  /** The first round. */
  start(): void {
    this.request('all');
  }

  /** The host's networks changed: discovery and every zone's SRV again, now. */
  networkChanged(): void {
    this.backoff.reset();
    this.discovered = false;
    for (const z of this.zoneList) this.unresolved.add(z);
    this.request('all');
  }

  /** Resolves when no round runs or waits to run (tests, and the client's idle()). */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private addZone(zone: string): void {
    if (this.zoneList.includes(zone)) return;
    this.zoneList.push(zone);
    this.unresolved.add(zone);
  }

  private request(kind: 'all' | 'retry'): void {
    if (this.closed) return;
    this.timer?.cancel();
    this.timer = undefined;
    if (this.running !== undefined) {
      if (this.requested !== 'all') this.requested = kind;
      return;
    }
    this.running = this.round(kind)
      .catch((err: unknown) => this.opts.logger.error({ err }, 'zone look-up failed'))
      .finally(() => {
        this.running = undefined;
        const next = this.requested;
        this.requested = undefined;
        if (next !== undefined) this.request(next);
      });
  }

  private async round(kind: 'all' | 'retry'): Promise<void> {
    let query: QueryFn;
    try {
      query = await this.opts.query();
    } catch (err) {
      this.opts.logger.warn({ reason: errorMessage(err) }, 'no DNS server to look up zones with');
      this.scheduleRetry();
      return;
    }
    // With no zone at all, discovery is what a retry is for, even if it last answered completely.
    if (this.opts.discover && (!this.discovered || this.zoneList.length === 0)) {
      const found = await discoverZones({
        query,
        networks: this.opts.networks(),
        clock: this.opts.clock,
        retryDelayMs: this.opts.discoveryRetryDelayMs,
        logger: this.opts.logger,
      });
      if (this.closed) return;
      this.discovered = found.complete;
      const fresh = found.zones.filter((z) => !this.zoneList.includes(z));
      const room = Math.max(0, MAX_DISCOVERED_ZONES - (this.zoneList.length - this.configured));
      if (fresh.length > room) {
        this.opts.logger.warn({ ignored: fresh.slice(room), limit: MAX_DISCOVERED_ZONES }, 'discovery found more zones than nsregc takes; ignoring the rest');
      }
      for (const z of fresh.slice(0, room)) this.addZone(z);
    }
    const todo = kind === 'all' ? [...this.zoneList] : this.zoneList.filter((z) => this.unresolved.has(z));
    for (const zone of todo) {
      const servers = await findServers(zone, this.opts.label, {
        query,
        logger: this.opts.logger,
        ...(this.opts.lookup === undefined ? {} : { lookup: this.opts.lookup }),
      });
      if (this.closed) return;
      if (servers.length === 0) continue;
      this.unresolved.delete(zone);
      this.opts.onServers(servers);
    }
    if (this.unresolved.size > 0 || this.zoneList.length === 0 || (this.opts.discover && !this.discovered)) this.scheduleRetry();
    else this.backoff.reset();
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    const delay = this.backoff.next();
    this.opts.logger.info(
      {
        retryInMs: delay,
        zones: [...this.unresolved],
        ...(this.opts.discover && !this.discovered ? { discovery: 'incomplete' } : {}),
      },
      this.zoneList.length === 0 ? 'no zone found yet; looking again' : 'looking for nsregd servers again',
    );
    this.timer = this.opts.clock.schedule(delay, () => {
      this.timer = undefined;
      this.request('retry');
    });
  }
}
