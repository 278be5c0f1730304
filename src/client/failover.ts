/**
 * Keeping a name registered in one zone whose SRV record names several
 * nsregd servers (RFC 2782): one server at a time, the others as
 * fall-backs.
 *
 * The client registers with the first server in SRV order. When that
 * server fails — an update gets no answer (no connection, timeout) or
 * SERVFAIL (what nsregd answers when its shared store is out of reach, or
 * it is busy), or a liveness probe gets no answer — it moves on to the
 * next, wrapping around, after the first failure: each one already cost a
 * refused connection or a whole dns-timeout, the registration is
 * idempotent, and every further try at a failing server would keep the
 * name stale one more back-off step. Moves within one round are
 * immediate; once every server failed in a row, the next move waits for
 * the zone's back-off (src/backoff.ts, 1 s doubling up to the registrar's
 * retry cap, reset by any NOERROR). REFUSED, NOTAUTH and the other
 * rcodes are answers about the request, not about the server: they end
 * the registration in the zone as they do with one server. A zone with a
 * single server behaves as before: its registrar retries by itself.
 *
 * What happens to the server left behind depends on what the two servers
 * say of themselves in their SRV self-answers (README, "Running nsregc").
 * Both carry the same `nsregd-site=` identifier: they share one store, so
 * the records are already where the new server looks; the old registrar
 * is dropped without removing anything, and the new one sends the host's
 * full registration (and the removals the old one still owed: records of
 * addresses that left the host meanwhile). Otherwise it is a change of server, retired as one:
 * when both answer with different start-up identifiers (two daemons for
 * certain) our records are removed from the old one; when it may be the
 * same daemon under another address, or is out of reach, only the records
 * of addresses that left the host are removed there, and the rest expire
 * with their TTL.
 *
 * The client stays with the server that works (no move back while it
 * does); a new look-up (the host's networks changed) starts again from
 * the SRV order, keeping the server in use only when it is among those of
 * the lowest priority, which RFC 2782 makes equally good first choices.
 */
import type { Logger } from 'pino';
import { Backoff } from '../backoff.js';
import type { Clock } from '../clock.js';
import { formatHostPort } from '../net/address.js';
import type { NsregServer } from './discover.js';
import { RETRY_CAP_MS, RETRY_INITIAL_MS, type ProbeFn, type Registrar } from './registrar.js';

/** What a server says of itself in its SRV self-answer. */
export interface DaemonIdentity {
  /** Start-up identifier (`nsregd-instance=`). */
  readonly instance: string | undefined;
  /** Site identifier (`nsregd-site=`): daemons sharing one store. */
  readonly site: string | undefined;
}

/** What the zone needs from its owner to talk to one server. */
export interface RegistrarHooks {
  /** The liveness probe to give the registrar (it also keeps the server's site identifier current). */
  readonly probe: ProbeFn;
  /** To pass on as the registrar's onServerHealth. */
  readonly onServerHealth: (healthy: boolean) => void;
}

export interface ZoneRegistrationOptions {
  /** The zone's servers in the order to try them (never empty). */
  readonly servers: readonly NsregServer[];
  /** A registrar for one server, not started. */
  readonly makeRegistrar: (server: NsregServer, hooks: RegistrarHooks) => Registrar;
  /** The SRV self-answer of one server; rejects when it does not answer. */
  readonly identify: (server: NsregServer) => Promise<DaemonIdentity>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Back-off bounds once every server failed in a row (default the registrar's). */
  readonly retryInitialMs?: number;
  readonly retryCapMs?: number;
}

function serverKey(s: NsregServer): string {
  return `${s.host} ${s.port} ${s.name}`;
}

function serverText(s: NsregServer): string {
  return formatHostPort(s.host, s.port);
}

export class ZoneRegistration {
  readonly zone: string;
  private servers: readonly NsregServer[];
  private index = 0;
  private inUse: NsregServer;
  private current: Registrar;
  /** Failures of the server in use since the last NOERROR, across moves. */
  private failedInRow = 0;
  private readonly backoff: Backoff;
  /** The site identifier each server last answered a probe with. */
  private readonly sites = new Map<string, string | undefined>();
  /** Registrars left behind and still finishing. */
  private readonly leaving = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly opts: ZoneRegistrationOptions) {
    const first = opts.servers[0];
    if (first === undefined) throw new RangeError('a zone needs at least one server');
    this.zone = first.zone;
    this.servers = opts.servers;
    this.backoff = new Backoff({ initialMs: opts.retryInitialMs ?? RETRY_INITIAL_MS, capMs: opts.retryCapMs ?? RETRY_CAP_MS });
    this.inUse = first;
    this.current = this.open(first, 0);
  }

  /** The server registered with now. */
  get server(): NsregServer {
    return this.inUse;
  }

  /** Its registrar. */
  get registrar(): Registrar {
    return this.current;
  }

  /** The zone's servers in the order tried. */
  get candidates(): readonly NsregServer[] {
    return this.servers;
  }

  /** Resolves once the registrar's queued updates and every server left behind are done. */
  async idle(): Promise<void> {
    await Promise.all([this.current.idle(), ...this.leaving]);
  }

  /**
   * A new look-up found the zone's servers (in a fresh SRV order): start
   * from that order again. The server in use stays when it is running and
   * among the lowest-priority ones (moved to the front); otherwise the
   * first is registered with, and the one in use is left as a changed
   * server (or, when it was refused, simply tried again).
   */
  update(servers: readonly NsregServer[]): void {
    const first = servers[0];
    if (this.closed || first === undefined) return;
    const before = this.inUse;
    const running = this.current.state === 'running' && this.current.begun;
    const same = servers.find((s) => serverKey(s) === serverKey(before) && s.priority === first.priority);
    this.failedInRow = 0;
    this.backoff.reset();
    this.index = 0;
    if (running && same !== undefined) {
      this.servers = [same, ...servers.filter((s) => s !== same)];
      this.inUse = same;
      return;
    }
    this.servers = servers;
    const old = this.current;
    const next = first;
    this.inUse = next;
    this.opts.logger.info(
      { zone: this.zone, before: serverText(before), now: serverText(next), previous: old.state },
      running ? 'the zone\'s nsregd server changed; registering with the new one' : 'trying the zone\'s nsregd server again',
    );
    this.current = this.open(next, 0);
    // Still waiting out the back-off: it registered nothing anywhere.
    if (!old.begun) old.abandon();
    else if (old.state === 'running') this.track(this.leave(before, old, next));
    else this.track(old.shutdown(true));
  }

  /** Stops registering; unless `keep`, every record is removed from the server in use. */
  async shutdown(keep: boolean): Promise<void> {
    this.closed = true;
    await Promise.all([this.current.shutdown(keep), ...this.leaving]);
  }

  private open(server: NsregServer, delayMs: number): Registrar {
    const key = serverKey(server);
    const probe: ProbeFn = async () => {
      const id = await this.opts.identify(server);
      this.sites.set(key, id.site);
      return id.instance;
    };
    const registrar = this.opts.makeRegistrar(server, {
      probe,
      onServerHealth: (healthy) => this.health(registrar, healthy),
    });
    void registrar.start(delayMs);
    return registrar;
  }

  private health(from: Registrar, healthy: boolean): void {
    if (this.closed || from !== this.current) return;
    if (healthy) {
      this.failedInRow = 0;
      this.backoff.reset();
      return;
    }
    if (this.servers.length < 2) return;
    this.failedInRow++;
    // A whole round failed: wait before the next, as one server's retries do.
    const delayMs = this.failedInRow % this.servers.length === 0 ? this.backoff.next() : 0;
    const before = this.inUse;
    this.index = (this.index + 1) % this.servers.length;
    const next = this.servers[this.index] ?? before;
    this.inUse = next;
    this.opts.logger.warn(
      { zone: this.zone, failed: serverText(before), next: serverText(next), ...(delayMs > 0 ? { inMs: delayMs } : {}) },
      delayMs > 0
        ? 'every nsregd server of the zone failed; trying the next after a back-off'
        : 'nsregd server failed; registering with the next of the zone\'s servers',
    );
    this.current = this.open(next, delayMs);
    this.track(this.leave(before, from, next));
  }

  /**
   * The registrar of `old` was replaced by one for `next`: dropped when
   * both are of one site, retired as a changed server otherwise (see the
   * module comment).
   */
  private async leave(old: NsregServer, registrar: Registrar, next: NsregServer): Promise<void> {
    const [before, now] = await Promise.allSettled([this.opts.identify(old), this.opts.identify(next)]);
    const oldSite = before.status === 'fulfilled' ? before.value.site : this.sites.get(serverKey(old));
    const newSite = now.status === 'fulfilled' ? now.value.site : this.sites.get(serverKey(next));
    if (oldSite !== undefined && oldSite === newSite) {
      this.opts.logger.info(
        { zone: this.zone, server: serverText(old), site: oldSite },
        'the previous nsregd server is of the same site; our records stay with the site',
      );
      this.current.adopt(registrar.abandon());
      return;
    }
    const distinct =
      before.status === 'fulfilled' &&
      now.status === 'fulfilled' &&
      before.value.instance !== undefined &&
      now.value.instance !== undefined &&
      before.value.instance !== now.value.instance;
    this.opts.logger.info(
      { zone: this.zone, server: serverText(old) },
      distinct
        ? 'the previous nsregd server is another daemon; removing our records there'
        : 'the previous nsregd server may be the same daemon or is out of reach; only records of addresses that left are removed there',
    );
    await registrar.shutdown(!distinct);
  }

  private track(p: Promise<void>): void {
    const done: Promise<void> = p
      .catch((err: unknown) => this.opts.logger.error({ err, zone: this.zone }, 'leaving the previous nsregd server failed'))
      .finally(() => this.leaving.delete(done));
    this.leaving.add(done);
  }
}
