/**
 * Keeping a name registered with one nsregd server. One Registrar per
 * server; everything it does is driven by an injected Clock, an injected
 * `send` (one TCP exchange) and an injected address provider, so its
 * timing is tested with fake time.
 *
 * Life of a record:
 *   insert ──NOERROR──▶ registered ──half the echoed TTL──▶ refresh (if the
 *   address is still there; otherwise forgotten and left to expire)
 *   insert ──network error / SERVFAIL──▶ retry after back-off (per server,
 *   1 s doubling up to RETRY_CAP_MS, reset by any success)
 *   any other rcode ──▶ the server refused us: state 'refused', all stops.
 * Liveness (when a probe is given): the server is asked a cheap question
 * (SRV for its own zone) every probe interval (PROBE_INTERVAL_MS by
 * default). A daemon that stopped removes our records upstream on its way
 * out, and a restarted one may not have them, so a server that stops
 * answering is marked down (logged once), probed again with the capped
 * back-off, and when it answers again every current address is registered
 * afresh in one update. A restart that completes between two probes is
 * seen too: nsregd's answer carries an identifier that is new at each
 * start, and a different one (or one appearing or disappearing) from the
 * previous probe's triggers the same re-registration (the first probe after
 * start only learns the identifier: a restart before it goes unnoticed
 * unless that probe finds the server down). Waiting for the next
 * refresh instead could leave the name empty for half a TTL.
 * Key claim: any accepted update refreshes the key's expiry at the server
 * (every update carries the KEY). When no update has been accepted for
 * half the key TTL (no addresses, or records refreshed less often), one
 * carrying only the KEY is sent, so the name does not lapse.
 * Address events: a burst (NetworkManager re-adding an address with new
 * lifetimes, add/del/add within a second) is coalesced. The first event
 * starts a COALESCE_MS window; at its end the addresses the events named
 * are compared with the host's list and what differs from what is
 * registered goes out in one update, so events give at most one update
 * per server per window. An address that is registered and still present
 * sends nothing (a new lifetime rides on the refresh at half the
 * registered TTL, which is always before that TTL runs out).
 * Shutdown: removals (every record, or with keep only those of addresses
 * that left) are retried with the back-off until STOP_TIMEOUT_MS, then
 * given up with a log line naming them.
 * Network change (the client saw the host move): the server is probed at
 * once, so one that became reachable or restarted is noticed within a
 * round trip.
 * Updates are sent one at a time, in order, so a removal can never
 * overtake the insert it undoes.
 */
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { Backoff } from '../backoff.js';
import { normalizeIp } from '../net/address.js';
import { unixSeconds, type Clock, type TimerHandle } from '../clock.js';
import { RRClass, Rcode, rcodeName } from '../dns/constants.js';
import { decodeMessage, type DecodedMessage } from '../dns/message.js';
import { canonicalName } from '../dns/names.js';
import { buildRegistration, replyReason, type RegistrarAddress, type RegistrarKey } from './update-message.js';

/** First retry delay after a transient failure. */
export const RETRY_INITIAL_MS = 1_000;
/**
 * Longest retry delay. Five minutes: long enough not to hammer a server
 * that is down, short enough that records (default TTL 1 h) come back well
 * before they would expire. The original client had no cap and could end
 * up waiting longer than the records live.
 */
export const RETRY_CAP_MS = 300_000;
/**
 * Time between liveness probes of a server that answers. Fifteen seconds:
 * a restart is noticed well within a minute, at the cost of one TCP
 * connection and one small query per server.
 */
export const PROBE_INTERVAL_MS = 15_000;
/**
 * Window over which address events are gathered into one update. One
 * second: a NetworkManager reconfiguration or a DHCP renewal sends its
 * events within it, and a new address is still registered about a second
 * after it appears.
 */
export const COALESCE_MS = 1_000;
/**
 * How long shutdown keeps trying to remove records (with the back-off)
 * before giving up: well inside systemd's default stop timeout (90 s).
 */
export const STOP_TIMEOUT_MS = 10_000;

/**
 * The registrar's view of the host's addresses: the ones eligible for
 * registration right now (interfaces, exclusions, temporary/deprecated
 * already applied; extra addresses included), each with its TTL already
 * derived from the valid lifetime and addr-ttl.
 */
export interface AddressProvider {
  list(): Promise<readonly RegistrarAddress[]>;
}

/** One DNS exchange with the server (over TCP, RFC 7766); rejects on network errors. */
export type SendFn = (update: Buffer) => Promise<Buffer>;

/**
 * A liveness question to the server; resolves when it answered, with the
 * server's start-up identifier (undefined when the answer carries none),
 * rejects when it did not answer.
 */
export type ProbeFn = () => Promise<string | undefined>;

export type RegistrarState = 'running' | 'refused' | 'stopped';

export interface RegistrarOptions {
  /** Zone FQDN. */
  readonly zone: string;
  /** Full name to register, `<name>.<zone>`. */
  readonly name: string;
  /** For logs: where the server is. */
  readonly server: string;
  readonly key: RegistrarKey;
  /** key-ttl in seconds: the TTL of the KEY RR sent. */
  readonly keyTtl: number;
  readonly addresses: AddressProvider;
  readonly send: SendFn;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Message IDs (tests); default random. */
  readonly randomId?: () => number;
  /** Back-off bounds (tests may shorten them). */
  readonly retryInitialMs?: number;
  readonly retryCapMs?: number;
  /** Liveness probe; without one, a restarted server is noticed at the next refresh only. */
  readonly probe?: ProbeFn;
  /** Default PROBE_INTERVAL_MS. */
  readonly probeIntervalMs?: number;
  /** Default COALESCE_MS. */
  readonly coalesceMs?: number;
  /** Default STOP_TIMEOUT_MS. */
  readonly stopTimeoutMs?: number;
  /** Called once when the state leaves 'running'. */
  readonly onStateChange?: (state: RegistrarState) => void;
  /**
   * How the server is doing, for an owner that can fail over to another
   * (src/client/failover.ts): false each time an update gets no answer or
   * SERVFAIL, or a liveness probe gets no answer; true each time an update
   * is answered NOERROR. Only while running.
   */
  readonly onServerHealth?: (healthy: boolean) => void;
}

/** What the registrar knows of its server while running. */
type ServerLink =
  /** Answering; probed every interval. */
  | { readonly kind: 'up' }
  /**
   * Not answering since a probe or an update failed on the network; probed
   * with back-off. `reRegister`: it may have lost our records, so every
   * address goes out again once it answers (false when a retry already
   * carried them all and got an answer, just not NOERROR).
   */
  | { readonly kind: 'down'; readonly reRegister: boolean }
  /**
   * Answered after an outage, or a probe found it restarted (a new start-up
   * identifier); the full re-registration is queued and covers whatever
   * waits for a retry.
   */
  | { readonly kind: 'back' };

/** The registration as a whole. */
type Phase =
  | { readonly kind: 'running'; readonly link: ServerLink }
  /** shutdown() began: nothing new starts; its final removal may be under way. Reported as 'running'. */
  | { readonly kind: 'stopping' }
  /** The server answered an update with an rcode other than NOERROR or SERVFAIL: nothing more is sent. */
  | { readonly kind: 'refused' }
  | { readonly kind: 'stopped' };

/** Canonical text of an address, the registrar's map key. */
function addressKey(address: string): string {
  return normalizeIp(address) ?? address.toLowerCase();
}

interface Registered {
  ttl: number;
  timer: TimerHandle | undefined;
}

type Outcome = 'ok' | 'transient' | 'refused' | 'skipped';

export class Registrar {
  readonly zone: string;
  readonly name: string;
  private readonly opts: RegistrarOptions;
  private readonly log: Logger;
  private readonly nextId: () => number;
  private readonly probeIntervalMs: number;
  private phase: Phase = { kind: 'running', link: { kind: 'up' } };
  private readonly registered = new Map<string, Registered>();
  /** Addresses waiting for the retry timer: to insert (re-checked then) or to remove. */
  private readonly retryInserts = new Set<string>();
  private readonly retryRemovals = new Set<string>();
  private retryTimer: TimerHandle | undefined;
  /** Delays of update retries: reset by any NOERROR. */
  private readonly retryBackoff: Backoff;
  /** Refresh timers that fired and are batched into one update. */
  private readonly dueRefresh = new Set<string>();
  private dueTimer: TimerHandle | undefined;
  /** Tail of the send queue. */
  private queue: Promise<void> = Promise.resolve();
  private probeTimer: TimerHandle | undefined;
  /** Delays between probes of a server that is down: capped at the normal interval, so its return is noticed within one. */
  private readonly probeBackoff: Backoff;
  /** The start-up identifier of the last probe's answer; undefined until a probe answered since the server was last known to change. */
  private lastInstance: { readonly id: string | undefined } | undefined;
  /** Fires half a key TTL after the last accepted update. */
  private keyTimer: TimerHandle | undefined;
  /** The key-only refresh is due and was not answered with NOERROR yet (a retry sends it again). */
  private keyRefreshDue = false;
  /** Addresses named by events since the last flush. */
  private readonly touched = new Set<string>();
  /** Ends the current coalescing window. */
  private flushTimer: TimerHandle | undefined;
  /** The initial registration began (start() ran, or its delay ended). */
  private started = false;
  /** Ends the delay of a delayed start. */
  private startTimer: TimerHandle | undefined;
  /** Addresses taken over from a registrar of the same site (adopt()), not looked at yet. */
  private readonly adopted = new Set<string>();

  constructor(opts: RegistrarOptions) {
    this.opts = opts;
    this.zone = canonicalName(opts.zone);
    this.name = canonicalName(opts.name);
    this.log = opts.logger.child({ zone: this.zone, server: opts.server });
    this.nextId = opts.randomId ?? ((): number => randomInt(0, 0x10000));
    const initialMs = opts.retryInitialMs ?? RETRY_INITIAL_MS;
    const capMs = opts.retryCapMs ?? RETRY_CAP_MS;
    this.probeIntervalMs = opts.probeIntervalMs ?? PROBE_INTERVAL_MS;
    this.retryBackoff = new Backoff({ initialMs, capMs });
    this.probeBackoff = new Backoff({ initialMs, capMs: Math.min(capMs, Math.max(this.probeIntervalMs, initialMs)) });
  }

  /** True while the server is considered down (not answering). */
  get serverDown(): boolean {
    return this.phase.kind === 'running' && this.phase.link.kind === 'down';
  }

  /** The initial registration began (false while a delayed start waits). */
  get begun(): boolean {
    return this.started;
  }

  get state(): RegistrarState {
    return this.phase.kind === 'stopping' ? 'running' : this.phase.kind;
  }

  /** Addresses currently registered (echoed by the server), canonical text. */
  registeredAddresses(): string[] {
    return [...this.registered.keys()];
  }

  /** The delay the next transient failure will wait. */
  get nextRetryDelayMs(): number {
    return this.retryBackoff.peek();
  }

  /** Resolves once every update queued so far has been answered or has failed. */
  idle(): Promise<void> {
    return this.queue;
  }

  /**
   * The initial update: every current address (even none: that still
   * claims the name), after `delayMs` if given (a failover that found
   * every server of the zone failing waits with its back-off). Until then
   * nothing is sent, probed or gathered from address events: the initial
   * update lists the addresses the host has when it goes out.
   */
  start(delayMs = 0): Promise<void> {
    if (delayMs <= 0) return this.begin();
    this.startTimer = this.opts.clock.schedule(delayMs, () => {
      this.startTimer = undefined;
      void this.begin();
    });
    return Promise.resolve();
  }

  private begin(): Promise<void> {
    if (!this.active() || this.started) return this.queue;
    this.started = true;
    this.log.info({ name: this.name }, 'registering with nsregd server');
    this.scheduleProbe(this.probeIntervalMs);
    return this.enqueue(async () => {
      const addrs = await this.opts.addresses.list();
      await this.sendInserts(addrs);
      await this.removeAdopted();
    });
  }

  /**
   * Stops at once, removing nothing and forgetting everything: another
   * server of the same site (one shared store) holds the same records and
   * is registered with instead. An update in flight is left to finish; its
   * answer is ignored. Returns the addresses whose records the site may
   * hold on this registrar's account (registered, waiting for a retry, or
   * named by an address event not handled yet), for adopt().
   */
  abandon(): string[] {
    if (this.phase.kind !== 'running') return [];
    const keys = new Set([...this.registered.keys(), ...this.retryInserts, ...this.retryRemovals, ...this.touched]);
    this.dropEverything();
    this.setPhase({ kind: 'stopped' });
    return [...keys];
  }

  /**
   * Takes over from a registrar of the same site (abandon()'s list): the
   * records of those addresses the host no longer has are removed here,
   * as that registrar would have done. The others are this registrar's
   * own registration already.
   */
  adopt(addresses: readonly string[]): void {
    if (!this.active() || addresses.length === 0) return;
    for (const a of addresses) this.adopted.add(addressKey(a));
    // Before the initial update (a delayed start), the removal waits for it.
    if (this.started) void this.enqueue(() => this.removeAdopted());
  }

  private async removeAdopted(): Promise<void> {
    if (!this.active() || this.adopted.size === 0) return;
    const keys = [...this.adopted];
    this.adopted.clear();
    const present = new Set((await this.opts.addresses.list()).map((a) => addressKey(a.address)));
    const gone = keys.filter((k) => !present.has(k) && !this.registered.has(k) && !this.retryInserts.has(k));
    if (gone.length === 0) return;
    this.log.info({ addresses: gone }, 'removing records of addresses that left, registered through the previous server of this site');
    await this.exchangeUpdate({ removals: gone });
  }

  /** An address appeared, or was announced again (address event): looked at when the coalescing window ends. */
  addressAdded(addr: RegistrarAddress): void {
    this.touch(addr.address);
  }

  /** An address went away (address event): looked at when the coalescing window ends. */
  addressRemoved(address: string): void {
    this.touch(address);
  }

  /**
   * The host's networks changed (another default route, prefixes came or
   * went): probe the server now instead of at the next interval.
   */
  networkChanged(): void {
    if (!this.active() || !this.started || this.opts.probe === undefined) return;
    this.probeBackoff.reset();
    this.scheduleProbe(0);
  }

  /**
   * Stops all timers and removes records: unless `keep`, every one
   * registered or waiting for a retry; with `keep`, only those of
   * addresses that left the host (removals waiting for a retry, or events
   * not flushed yet). Transient failures are retried with the back-off
   * until the stop timeout. A refused registrar stays 'refused'.
   */
  async shutdown(keep: boolean): Promise<void> {
    if (this.phase.kind !== 'running') return this.queue;
    this.setPhase({ kind: 'stopping' });
    this.cancelTimers();
    await this.queue;
    // An update that was in flight may have been refused meanwhile.
    if (this.state === 'refused') return;
    const removals = await this.removalsAtExit(keep);
    const kept = keep ? [...this.registered.keys()].filter((k) => !removals.includes(k)) : [];
    this.retryInserts.clear();
    this.retryRemovals.clear();
    this.touched.clear();
    if (kept.length > 0) this.log.info({ count: kept.length }, 'keeping records on exit');
    if (removals.length > 0) await this.removeBeforeExit(removals);
    for (const k of [...this.registered.keys()]) this.forget(k);
    this.setPhase({ kind: 'stopped' });
  }

  private async removalsAtExit(keep: boolean): Promise<string[]> {
    const out = new Set(this.retryRemovals);
    if (!keep) {
      for (const k of this.registered.keys()) out.add(k);
      for (const k of this.retryInserts) out.add(k);
    } else if (this.touched.size > 0) {
      const present = new Set((await this.opts.addresses.list()).map((a) => addressKey(a.address)));
      for (const k of this.touched) if (!present.has(k) && (this.registered.has(k) || this.retryInserts.has(k))) out.add(k);
    }
    return [...out];
  }

  /** One removal update, retried with the back-off while the stop timeout allows. */
  private async removeBeforeExit(removals: readonly string[]): Promise<void> {
    const deadline = this.opts.clock.now() + (this.opts.stopTimeoutMs ?? STOP_TIMEOUT_MS);
    this.log.info({ count: removals.length, addresses: removals }, 'removing records before exit');
    // Waits before this point belonged to the server's earlier trouble; the stop timeout gets a fresh start.
    this.retryBackoff.reset();
    for (;;) {
      const outcome = await this.exchangeUpdate({ removals });
      if (outcome === 'ok') this.log.info({ count: removals.length }, 'records removed');
      if (outcome !== 'transient') return;
      const wait = this.retryBackoff.next();
      if (this.opts.clock.now() + wait >= deadline) {
        this.log.warn(
          { addresses: removals, stopTimeoutMs: this.opts.stopTimeoutMs ?? STOP_TIMEOUT_MS },
          'could not remove records before the stop timeout; they expire with their TTL',
        );
        return;
      }
      await new Promise<void>((resolve) => this.opts.clock.schedule(wait, resolve));
    }
  }

  /** Opens a coalescing window unless one is open. */
  private touch(address: string): void {
    if (!this.active() || !this.started) return;
    this.touched.add(addressKey(address));
    if (this.flushTimer !== undefined) return;
    this.flushTimer = this.opts.clock.schedule(this.opts.coalesceMs ?? COALESCE_MS, () => {
      this.flushTimer = undefined;
      void this.enqueue(() => this.flushTouched());
    });
  }

  /**
   * The end of a coalescing window: every address the events named is
   * compared with the host's list now. Present and not registered (nor
   * waiting for a retry): inserted. Gone and registered (or waiting):
   * removed and forgotten. Anything else (a lifetime-only change, an
   * add/del/add that ended where it began) sends nothing.
   */
  private async flushTouched(): Promise<void> {
    if (!this.active() || this.touched.size === 0) return;
    const keys = [...this.touched];
    this.touched.clear();
    const current = new Map((await this.opts.addresses.list()).map((a) => [addressKey(a.address), a]));
    const inserts: RegistrarAddress[] = [];
    const removals: string[] = [];
    for (const k of keys) {
      const a = current.get(k);
      if (a !== undefined) {
        this.retryRemovals.delete(k);
        if (this.registered.has(k) || this.retryInserts.has(k)) continue;
        this.log.info({ address: a.address, ttl: a.ttl }, 'new address; registering it');
        inserts.push(a);
      } else if (this.retryInserts.delete(k) || this.registered.has(k)) {
        this.forget(k);
        this.log.info({ address: k }, 'address lost; removing its record');
        removals.push(k);
      }
    }
    if (inserts.length === 0 && removals.length === 0) return;
    await this.exchangeUpdate({ inserts, removals });
  }

  private active(): boolean {
    return this.phase.kind === 'running';
  }

  /** Moves to `next`, telling the owner when the state it sees changes. */
  private setPhase(next: Phase): void {
    const before = this.state;
    this.phase = next;
    if (this.state !== before) this.opts.onStateChange?.(this.state);
  }

  /** Changes what is known of the server; only while running. */
  private setLink(link: ServerLink): void {
    if (this.phase.kind === 'running') this.phase = { kind: 'running', link };
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const next = this.queue.then(work).catch((err: unknown) => {
      this.log.error({ err }, 'registration step failed');
    });
    this.queue = next;
    return next;
  }

  private forget(key: string): void {
    const r = this.registered.get(key);
    r?.timer?.cancel();
    this.registered.delete(key);
    this.dueRefresh.delete(key);
  }

  private cancelTimers(): void {
    for (const r of this.registered.values()) {
      r.timer?.cancel();
      r.timer = undefined;
    }
    this.cancelRetry();
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    this.startTimer?.cancel();
    this.startTimer = undefined;
    this.dueTimer?.cancel();
    this.dueTimer = undefined;
    this.dueRefresh.clear();
    this.probeTimer?.cancel();
    this.probeTimer = undefined;
    this.keyTimer?.cancel();
    this.keyTimer = undefined;
    this.keyRefreshDue = false;
  }

  private cancelRetry(): void {
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
  }

  private scheduleProbe(delayMs: number): void {
    if (this.opts.probe === undefined || !this.active()) return;
    this.probeTimer?.cancel();
    this.probeTimer = this.opts.clock.schedule(delayMs, () => {
      this.probeTimer = undefined;
      void this.runProbe();
    });
  }

  private async runProbe(): Promise<void> {
    const probe = this.opts.probe;
    if (probe === undefined || !this.active()) return;
    let answer: { readonly id: string | undefined } | undefined;
    try {
      answer = { id: await probe() };
    } catch (err) {
      this.markDown('liveness probe', err);
      this.reportHealth(false);
    }
    if (this.phase.kind !== 'running') return;
    if (answer === undefined) {
      this.scheduleProbe(this.probeBackoff.next());
      return;
    }
    const previous = this.lastInstance;
    this.lastInstance = answer;
    if (this.phase.link.kind === 'down') this.serverAnswered(this.phase.link.reRegister, 'back');
    else if (previous !== undefined && previous.id !== answer.id && this.phase.link.kind === 'up') {
      this.log.warn(
        { before: previous.id ?? '(none)', now: answer.id ?? '(none)' },
        'server restarted since the last probe; will register every address again',
      );
      this.serverAnswered(true, 'restarted');
    } else this.scheduleProbe(this.probeIntervalMs);
  }

  /**
   * A probe or an update got an answer while the server was marked down,
   * or a probe found the server restarted. `reRegister`: send every
   * current address again.
   */
  private serverAnswered(reRegister: boolean, why: 'back' | 'restarted'): void {
    this.setLink(reRegister ? { kind: 'back' } : { kind: 'up' });
    this.probeBackoff.reset();
    this.scheduleProbe(this.probeIntervalMs);
    if (reRegister) {
      this.cancelRetry();
      void this.enqueue(() => this.reRegister(why));
    }
  }

  /**
   * The server did not answer. Logged once per outage; probing switches to
   * the back-off schedule so the return is noticed quickly.
   */
  private markDown(what: string, err: unknown): void {
    // Without a probe nothing would ever mark the server up again.
    if (this.opts.probe === undefined || this.phase.kind !== 'running') return;
    const wasDown = this.phase.link.kind === 'down';
    this.setLink({ kind: 'down', reRegister: true });
    if (wasDown) return;
    this.log.warn({ err, via: what }, 'server is not answering; will register every address again when it is back');
    this.probeBackoff.reset();
    this.scheduleProbe(this.probeBackoff.peek());
  }

  /**
   * The server answers again after an outage: it may have restarted and
   * lost every record, so all current addresses go out in one update
   * (this also covers whatever was waiting for a retry).
   */
  private async reRegister(why: 'back' | 'restarted'): Promise<void> {
    if (this.phase.kind === 'running' && this.phase.link.kind === 'back') this.setLink({ kind: 'up' });
    if (!this.active()) return;
    this.cancelRetry();
    const removals = [...this.retryRemovals];
    this.retryInserts.clear();
    this.retryRemovals.clear();
    const current = await this.opts.addresses.list();
    const present = new Set(current.map((a) => addressKey(a.address)));
    for (const k of [...this.registered.keys()]) if (!present.has(k)) this.forget(k);
    this.log.info(
      { count: current.length, addresses: current.map((a) => a.address) },
      `server ${why === 'back' ? 'is back' : 'restarted'}; re-registering ${current.length} addresses`,
    );
    const gone = removals.filter((r) => !present.has(r));
    if (gone.length > 0) await this.exchangeUpdate({ removals: gone });
    // Even with no address this re-claims the name, as the initial update does.
    await this.exchangeUpdate({ inserts: current });
  }

  private async sendInserts(addrs: readonly RegistrarAddress[]): Promise<void> {
    if (!this.active()) return;
    for (const a of addrs) this.log.info({ address: a.address, ttl: a.ttl }, 'registering address');
    await this.exchangeUpdate({ inserts: addrs });
  }

  /** Signs, sends and interprets one update; schedules refreshes or retries. */
  private async exchangeUpdate(u: { inserts?: readonly RegistrarAddress[]; removals?: readonly string[] }): Promise<Outcome> {
    if (this.phase.kind !== 'running' && this.phase.kind !== 'stopping') return 'skipped';
    const inserts = u.inserts ?? [];
    const removals = u.removals ?? [];
    const update = buildRegistration({
      id: this.nextId(),
      zone: this.zone,
      name: this.name,
      key: this.opts.key,
      keyTtl: this.opts.keyTtl,
      now: unixSeconds(this.opts.clock),
      inserts,
      removals,
    });
    let reply: DecodedMessage;
    try {
      reply = decodeMessage(await this.opts.send(update));
      if (!reply.qr) throw new Error('reply is not a response (QR clear)');
    } catch (err) {
      if (this.abandoned()) return 'skipped';
      this.log.warn({ err }, 'network error while sending update');
      this.markDown('update', err);
      this.transient(inserts, removals);
      this.reportHealth(false);
      return 'transient';
    }
    // Abandoned while the update was in flight: its answer no longer matters here.
    if (this.abandoned()) return 'skipped';
    if (reply.rcode === Rcode.SERVFAIL) {
      this.log.warn({ rcode: rcodeName(reply.rcode), reason: replyReason(reply) }, 'server failure');
      this.transient(inserts, removals);
      this.reportHealth(false);
      return 'transient';
    }
    if (reply.rcode !== Rcode.NOERROR) {
      this.log.error(
        { rcode: rcodeName(reply.rcode), reason: replyReason(reply) ?? '(none given)' },
        'server refused registration; giving up on this server',
      );
      this.refuse();
      return 'refused';
    }
    this.retryBackoff.reset();
    if (this.phase.kind !== 'running') {
      // An update in flight when shutdown began: what it registered is removed with the rest.
      if (this.phase.kind === 'stopping') this.registerEchoed(reply, false);
      return 'ok';
    }
    this.scheduleKeyRefresh();
    if (this.phase.link.kind === 'down') {
      // The probe did not see this answer: its next one sets the identifier afresh.
      this.lastInstance = undefined;
      this.serverAnswered(this.phase.link.reRegister, 'back');
    }
    for (const a of removals) this.log.info({ address: a }, 'record removed');
    this.registerEchoed(reply);
    this.reportHealth(true);
    return 'ok';
  }

  /** Stopped while an update was in flight (only abandon() stops a registrar with an update under way). */
  private abandoned(): boolean {
    return this.phase.kind === 'stopped';
  }

  /** Tells the owner how the server is doing (onServerHealth), while running. */
  private reportHealth(healthy: boolean): void {
    if (this.phase.kind === 'running') this.opts.onServerHealth?.(healthy);
  }

  /** For every echoed A/AAAA (class IN, TTL > 0): registered, refreshed at half its TTL (unless `refresh` is false: stopping). */
  private registerEchoed(reply: DecodedMessage, refresh = true): void {
    for (const rr of reply.answers) {
      if ((rr.type !== 'A' && rr.type !== 'AAAA') || rr.data === null || rr.class !== RRClass.IN) continue;
      const key = addressKey(rr.data);
      const prev = this.registered.get(key);
      prev?.timer?.cancel();
      if (rr.ttl <= 0) {
        this.registered.delete(key);
        continue;
      }
      // The server may have lowered the TTL; its value is the one that counts.
      const refreshMs = (rr.ttl * 1000) / 2;
      const timer = refresh ? this.opts.clock.schedule(refreshMs, () => this.refreshDue(key)) : undefined;
      this.registered.set(key, { ttl: rr.ttl, timer });
      this.log.info({ address: rr.data, ttl: rr.ttl, refreshInS: rr.ttl / 2 }, 'address registered');
    }
  }

  /** Timers that fire together are batched: the flush runs after the current tick. */
  private refreshDue(key: string): void {
    const r = this.registered.get(key);
    if (r !== undefined) r.timer = undefined;
    if (!this.active()) return;
    this.dueRefresh.add(key);
    if (this.dueTimer !== undefined) return;
    this.dueTimer = this.opts.clock.schedule(0, () => {
      this.dueTimer = undefined;
      const keys = [...this.dueRefresh];
      this.dueRefresh.clear();
      void this.enqueue(() => this.refresh(keys, 'refresh'));
    });
  }

  /**
   * Re-sends the given addresses that are still present, with their
   * current TTL; the others are forgotten (their records expire at the
   * server on their own).
   */
  private async refresh(keys: readonly string[], why: 'refresh' | 'retry'): Promise<void> {
    if (!this.active() || keys.length === 0) return;
    const current = new Map((await this.opts.addresses.list()).map((a) => [addressKey(a.address), a]));
    const again: RegistrarAddress[] = [];
    for (const k of keys) {
      const a = current.get(k);
      if (a !== undefined) {
        again.push(a);
        continue;
      }
      if (this.registered.has(k)) {
        this.log.info({ address: k }, 'address gone; letting its record expire');
        this.forget(k);
      }
    }
    if (again.length === 0) return;
    for (const a of again) this.log.info({ address: a.address, ttl: a.ttl, why }, 'refreshing address');
    await this.exchangeUpdate({ inserts: again });
  }

  /** (Re)arms the key refresh: half the key TTL after this accepted update. */
  private scheduleKeyRefresh(): void {
    this.keyRefreshDue = false;
    this.keyTimer?.cancel();
    this.keyTimer = undefined;
    // A zero key TTL is refused by the server anyway; never a timer that fires at once, again and again.
    if (this.opts.keyTtl <= 0) return;
    this.keyTimer = this.opts.clock.schedule((this.opts.keyTtl * 1000) / 2, () => {
      this.keyTimer = undefined;
      this.keyRefreshDue = true;
      void this.enqueue(() => this.refreshKey());
    });
  }

  /** Half the key TTL without an accepted update: an update carrying only the KEY keeps the claim. */
  private async refreshKey(): Promise<void> {
    if (!this.active() || !this.keyRefreshDue) return;
    this.log.info({ keyTtl: this.opts.keyTtl }, 'refreshing the key claim (no update for half the key TTL)');
    await this.exchangeUpdate({});
  }

  private transient(inserts: readonly RegistrarAddress[], removals: readonly string[]): void {
    if (this.phase.kind !== 'running') return;
    for (const a of inserts) this.retryInserts.add(addressKey(a.address));
    for (const a of removals) this.retryRemovals.add(addressKey(a));
    if (this.retryTimer !== undefined) return;
    const delay = this.retryBackoff.next();
    this.log.info({ retryInMs: delay, inserts: inserts.length, removals: removals.length }, 'queueing records for retry');
    this.retryTimer = this.opts.clock.schedule(delay, () => {
      this.retryTimer = undefined;
      void this.enqueue(() => this.retry());
    });
  }

  private async retry(): Promise<void> {
    if (this.phase.kind !== 'running' || this.phase.link.kind === 'back') return;
    if (this.phase.link.kind === 'down' && this.phase.link.reRegister) {
      // The server was unreachable: if this attempt gets through, it may be
      // talking to a restarted server that lost everything, so send it all.
      this.setLink({ kind: 'down', reRegister: false });
      await this.reRegister('back');
      return;
    }
    const inserts = [...this.retryInserts];
    const removals = [...this.retryRemovals];
    this.retryInserts.clear();
    this.retryRemovals.clear();
    if (removals.length > 0) {
      // Removed addresses may have come back meanwhile; those are not deleted.
      const present = new Set((await this.opts.addresses.list()).map((a) => addressKey(a.address)));
      const gone = removals.filter((r) => !present.has(r));
      if (gone.length > 0) {
        this.log.info({ addresses: gone }, 'retrying removal');
        await this.exchangeUpdate({ removals: gone });
      }
    }
    await this.refresh(inserts, 'retry');
    // A key refresh that failed: nothing else was accepted meanwhile.
    await this.refreshKey();
  }

  private refuse(): void {
    this.dropEverything();
    this.setPhase({ kind: 'refused' });
  }

  /** No timer left, nothing pending, nothing registered. */
  private dropEverything(): void {
    this.cancelTimers();
    this.touched.clear();
    this.adopted.clear();
    this.retryInserts.clear();
    this.retryRemovals.clear();
    for (const k of [...this.registered.keys()]) this.forget(k);
  }
}
