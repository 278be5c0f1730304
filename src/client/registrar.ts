/**
 * Keeping a name registered with one nsregd server (SPEC §4 "Registering
 * and keeping it alive"). One Registrar per server; everything it does is
 * driven by an injected Clock, an injected `send` (one TCP exchange) and
 * an injected address provider, so its timing is tested with fake time.
 *
 * Life of a record:
 *   insert ──NOERROR──▶ registered ──half the echoed TTL──▶ refresh (if the
 *   address is still there; otherwise forgotten and left to expire)
 *   insert ──network error / SERVFAIL──▶ retry after back-off (per server,
 *   1 s doubling up to RETRY_CAP_MS, reset by any success)
 *   any other rcode ──▶ the server refused us: state 'refused', all stops.
 * Liveness (when a probe is given): the server is asked a cheap question
 * (SRV for its own zone) every PROBE_INTERVAL_MS. A daemon that stopped
 * removes our records upstream on its way out, and a restarted one knows
 * nothing of them, so a server that stops answering is marked down (logged
 * once), probed again with the capped back-off, and when it answers again
 * every current address is registered afresh in one update. Waiting for
 * the next refresh instead could leave the name empty for half a TTL.
 * Updates are sent one at a time, in order, so a removal can never
 * overtake the insert it undoes.
 */
import { randomInt } from 'node:crypto';
import * as net from 'node:net';
import type { Logger } from 'pino';
import { normalizeIp } from '../net/address.js';
import { unixSeconds, type Clock, type TimerHandle } from '../clock.js';
import { RRClass, Rcode, rcodeName } from '../dns/constants.js';
import { decodeMessage, encodeMessage, type DecodedMessage, type ResourceRecord } from '../dns/message.js';
import { canonicalName, fqdn } from '../dns/names.js';
import { signSig0 } from '../dns/sig0.js';
import { addRecord, buildUpdate, deleteRecord } from '../dns/update.js';
import type { ClientKey } from './keys.js';

/** First retry delay after a transient failure. */
export const RETRY_INITIAL_MS = 1_000;
/**
 * Longest retry delay. Five minutes: long enough not to hammer a server
 * that is down, short enough that records (default TTL 1 h) come back well
 * before they would expire. The original had no cap (SPEC §4 **FIX**).
 */
export const RETRY_CAP_MS = 300_000;
/**
 * Time between liveness probes of a server that answers. Fifteen seconds:
 * a restart is noticed well within a minute, at the cost of one TCP
 * connection and one small query per server.
 */
export const PROBE_INTERVAL_MS = 15_000;

/** An address to register and the TTL (seconds) to register it with. */
export interface RegistrarAddress {
  readonly address: string;
  readonly ttl: number;
}

/**
 * The registrar's view of the host's addresses: the ones eligible for
 * registration right now (interfaces, exclusions, temporary/deprecated
 * already applied; extra addresses included), each with its TTL already
 * derived from the valid lifetime and addr-ttl.
 */
export interface AddressProvider {
  list(): Promise<readonly RegistrarAddress[]>;
}

/** One DNS exchange with the server (TCP, SPEC §2); rejects on network errors. */
export type SendFn = (update: Buffer) => Promise<Buffer>;

/** A liveness question to the server; resolves when it answered, rejects when it did not. */
export type ProbeFn = () => Promise<void>;

/** The KEY/SIG(0) material the registrar signs with (ClientKey satisfies it). */
export type RegistrarKey = Pick<ClientKey, 'signerFor' | 'keyRecord'>;

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
  /** Called once when the state leaves 'running'. */
  readonly onStateChange?: (state: RegistrarState) => void;
}

export interface BuildRegistrationOptions {
  readonly id: number;
  readonly zone: string;
  readonly name: string;
  readonly key: RegistrarKey;
  readonly keyTtl: number;
  /** Unix seconds for the SIG(0) window. */
  readonly now: number;
  readonly inserts?: readonly RegistrarAddress[];
  /** Addresses whose records are deleted (RFC 2136 §2.5.4). */
  readonly removals?: readonly string[];
}

function addressRecord(name: string, address: string, ttl: number): ResourceRecord {
  const type = net.isIPv6(address) ? 'AAAA' : 'A';
  return { name, type, class: RRClass.IN, ttl, data: address };
}

/**
 * The signed UPDATE the client sends: zone section = the zone (SOA, IN),
 * update section = inserts then removals, additional = the KEY under the
 * full name with TTL key-ttl, then the SIG(0) whose signer is that name
 * (SPEC §2, RFC 2931 §3). Names are not compressed, as the original sends.
 */
export function buildRegistration(opts: BuildRegistrationOptions): Buffer {
  const name = fqdn(opts.name);
  const updates: ResourceRecord[] = [
    ...(opts.inserts ?? []).map((a) => addRecord(addressRecord(name, a.address, a.ttl))),
    ...(opts.removals ?? []).map((a) => deleteRecord(addressRecord(name, a, 0))),
  ];
  const msg = buildUpdate({
    id: opts.id,
    zone: opts.zone,
    updates,
    additionals: [opts.key.keyRecord(name, opts.keyTtl)],
  });
  return signSig0(encodeMessage(msg), opts.key.signerFor(name), { now: opts.now });
}

/** The server's human-readable reason: the first TXT of the additional section (how nsregd answers). */
export function replyReason(reply: DecodedMessage): string | undefined {
  for (const rr of reply.additionals) {
    if (rr.type === 'TXT' && rr.data !== null) return rr.data.join('');
  }
  return undefined;
}

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
  private readonly retryInitialMs: number;
  private readonly retryCapMs: number;
  private currentState: RegistrarState = 'running';
  private stopping = false;
  private readonly registered = new Map<string, Registered>();
  /** Addresses waiting for the retry timer: to insert (re-checked then) or to remove. */
  private readonly retryInserts = new Set<string>();
  private readonly retryRemovals = new Set<string>();
  private retryTimer: TimerHandle | undefined;
  private backoffMs: number;
  /** Refresh timers that fired and are batched into one update. */
  private readonly dueRefresh = new Set<string>();
  private dueTimer: TimerHandle | undefined;
  /** Tail of the send queue. */
  private queue: Promise<void> = Promise.resolve();
  private readonly probeIntervalMs: number;
  private probeTimer: TimerHandle | undefined;
  /** Delay before the next probe of a server that is down. */
  private probeBackoffMs: number;
  /** The server stopped answering (probe or update failed on the network) and has not answered since. */
  private down = false;
  /** Everything must be registered again once the server answers (it may have lost our records). */
  private needsReRegister = false;
  /** A re-registration sits in the queue: it covers whatever waits for a retry. */
  private reRegisterQueued = false;

  constructor(opts: RegistrarOptions) {
    this.opts = opts;
    this.zone = canonicalName(opts.zone);
    this.name = canonicalName(opts.name);
    this.log = opts.logger.child({ zone: this.zone, server: opts.server });
    this.nextId = opts.randomId ?? ((): number => randomInt(0, 0x10000));
    this.retryInitialMs = opts.retryInitialMs ?? RETRY_INITIAL_MS;
    this.retryCapMs = opts.retryCapMs ?? RETRY_CAP_MS;
    this.backoffMs = this.retryInitialMs;
    this.probeIntervalMs = opts.probeIntervalMs ?? PROBE_INTERVAL_MS;
    this.probeBackoffMs = this.retryInitialMs;
  }

  /** True while the server is considered down (not answering). */
  get serverDown(): boolean {
    return this.down;
  }

  get state(): RegistrarState {
    return this.currentState;
  }

  /** Addresses currently registered (echoed by the server), canonical text. */
  registeredAddresses(): string[] {
    return [...this.registered.keys()];
  }

  /** The delay the next transient failure will wait. */
  get nextRetryDelayMs(): number {
    return this.backoffMs;
  }

  /** Resolves once every update queued so far has been answered or has failed. */
  idle(): Promise<void> {
    return this.queue;
  }

  /** The initial update: every current address (even none: that still claims the name). */
  start(): Promise<void> {
    this.log.info({ name: this.name }, 'registering with nsregd server');
    this.scheduleProbe(this.probeIntervalMs);
    return this.enqueue(async () => {
      const addrs = await this.opts.addresses.list();
      await this.sendInserts(addrs);
    });
  }

  /** An address appeared (address event). Inserted unless already registered or queued. */
  addressAdded(addr: RegistrarAddress): Promise<void> {
    const key = addressKey(addr.address);
    if (!this.active() || this.registered.has(key) || this.retryInserts.has(key)) return Promise.resolve();
    this.retryRemovals.delete(key);
    this.log.info({ address: addr.address }, 'new address');
    return this.enqueue(() => this.sendInserts([addr]));
  }

  /**
   * An address went away (address event). If it is still on some
   * interface (the provider still lists it) nothing happens; otherwise its
   * record is removed and forgotten.
   */
  addressRemoved(address: string): Promise<void> {
    const key = addressKey(address);
    if (!this.active()) return Promise.resolve();
    return this.enqueue(async () => {
      if (!this.active()) return;
      const wasQueued = this.retryInserts.delete(key);
      if (!this.registered.has(key) && !wasQueued) return;
      const still = (await this.opts.addresses.list()).some((a) => addressKey(a.address) === key);
      if (still) {
        if (wasQueued) this.retryInserts.add(key);
        return;
      }
      this.forget(key);
      this.log.info({ address }, 'address lost; removing its record');
      await this.sendRemovals([address]);
    });
  }

  /**
   * Stops all timers and, unless `keep`, removes every registered record
   * (one update, not retried). A refused registrar stays 'refused'.
   */
  async shutdown(keep: boolean): Promise<void> {
    if (this.stopping) return this.queue;
    this.stopping = true;
    this.cancelTimers();
    await this.queue;
    if (this.currentState === 'running') {
      const all = [...new Set([...this.registered.keys(), ...this.retryInserts])];
      this.retryInserts.clear();
      this.retryRemovals.clear();
      if (!keep && all.length > 0) {
        this.log.info({ count: all.length, addresses: all }, 'removing records before exit');
        const outcome = await this.exchangeUpdate({ removals: all });
        if (outcome === 'ok') this.log.info({ count: all.length }, 'records removed');
      } else if (keep && all.length > 0) {
        this.log.info({ count: all.length }, 'keeping records on exit');
      }
      for (const k of [...this.registered.keys()]) this.forget(k);
      this.setState('stopped');
    }
  }

  private active(): boolean {
    return this.currentState === 'running' && !this.stopping;
  }

  private setState(s: RegistrarState): void {
    if (this.currentState === s) return;
    this.currentState = s;
    this.opts.onStateChange?.(s);
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
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    this.dueTimer?.cancel();
    this.dueTimer = undefined;
    this.dueRefresh.clear();
    this.probeTimer?.cancel();
    this.probeTimer = undefined;
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
    let answered: boolean;
    try {
      await probe();
      answered = true;
    } catch (err) {
      answered = false;
      this.markDown('liveness probe', err);
    }
    if (!this.active()) return;
    if (!answered) {
      const delay = this.probeBackoffMs;
      // Capped at the normal interval: a server that is back is noticed within one interval.
      this.probeBackoffMs = Math.min(this.probeBackoffMs * 2, this.retryCapMs, Math.max(this.probeIntervalMs, this.retryInitialMs));
      this.scheduleProbe(delay);
      return;
    }
    if (this.down) this.serverAnswered();
    else this.scheduleProbe(this.probeIntervalMs);
  }

  /** A probe or an update got an answer while the server was marked down. */
  private serverAnswered(): void {
    this.down = false;
    this.probeBackoffMs = this.retryInitialMs;
    this.scheduleProbe(this.probeIntervalMs);
    if (this.needsReRegister) {
      this.needsReRegister = false;
      this.retryTimer?.cancel();
      this.retryTimer = undefined;
      this.reRegisterQueued = true;
      void this.enqueue(() => this.reRegister());
    }
  }

  /**
   * The server did not answer. Logged once per outage; probing switches to
   * the back-off schedule so the return is noticed quickly.
   */
  private markDown(what: string, err: unknown): void {
    // Without a probe nothing would ever mark the server up again.
    if (this.opts.probe === undefined) return;
    this.needsReRegister = true;
    if (this.down) return;
    this.down = true;
    this.log.warn(
      { err: err instanceof Error ? err.message : String(err), via: what },
      'server is not answering; will register every address again when it is back',
    );
    if (this.active()) {
      this.probeBackoffMs = this.retryInitialMs;
      this.scheduleProbe(this.probeBackoffMs);
    }
  }

  /**
   * The server answers again after an outage: it may have restarted and
   * lost every record, so all current addresses go out in one update
   * (this also covers whatever was waiting for a retry).
   */
  private async reRegister(): Promise<void> {
    this.reRegisterQueued = false;
    if (!this.active()) return;
    this.retryTimer?.cancel();
    this.retryTimer = undefined;
    const removals = [...this.retryRemovals];
    this.retryInserts.clear();
    this.retryRemovals.clear();
    const current = await this.opts.addresses.list();
    const present = new Set(current.map((a) => addressKey(a.address)));
    for (const k of [...this.registered.keys()]) if (!present.has(k)) this.forget(k);
    this.log.info(
      { count: current.length, addresses: current.map((a) => a.address) },
      `server is back; re-registering ${current.length} addresses`,
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

  private async sendRemovals(addresses: readonly string[]): Promise<void> {
    if (!this.active()) return;
    await this.exchangeUpdate({ removals: addresses });
  }

  /** Signs, sends and interprets one update; schedules refreshes or retries. */
  private async exchangeUpdate(u: { inserts?: readonly RegistrarAddress[]; removals?: readonly string[] }): Promise<Outcome> {
    if (this.currentState !== 'running') return 'skipped';
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
      this.log.warn({ err: err }, 'network error while sending update');
      if (!this.stopping) this.markDown('update', err);
      this.transient(inserts, removals);
      return 'transient';
    }
    if (reply.rcode === Rcode.SERVFAIL) {
      this.log.warn({ rcode: rcodeName(reply.rcode), reason: replyReason(reply) }, 'server failure');
      this.transient(inserts, removals);
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
    this.backoffMs = this.retryInitialMs;
    if (this.stopping) return 'ok';
    if (this.down) this.serverAnswered();
    for (const a of removals) this.log.info({ address: a }, 'record removed');
    this.registerEchoed(reply);
    return 'ok';
  }

  /** For every echoed A/AAAA (class IN, TTL > 0): registered, refresh at half its TTL. */
  private registerEchoed(reply: DecodedMessage): void {
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
      const timer = this.opts.clock.schedule(refreshMs, () => this.refreshDue(key));
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

  private transient(inserts: readonly RegistrarAddress[], removals: readonly string[]): void {
    if (this.stopping) return;
    for (const a of inserts) this.retryInserts.add(addressKey(a.address));
    for (const a of removals) this.retryRemovals.add(addressKey(a));
    if (this.retryTimer !== undefined) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.retryCapMs);
    this.log.info({ retryInMs: delay, inserts: inserts.length, removals: removals.length }, 'queueing records for retry');
    this.retryTimer = this.opts.clock.schedule(delay, () => {
      this.retryTimer = undefined;
      void this.enqueue(() => this.retry());
    });
  }

  private async retry(): Promise<void> {
    if (!this.active() || this.reRegisterQueued) return;
    if (this.needsReRegister) {
      // The server was unreachable: if this attempt gets through, it may be
      // talking to a restarted server that lost everything, so send it all.
      this.needsReRegister = false;
      await this.reRegister();
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
  }

  private refuse(): void {
    this.cancelTimers();
    this.retryInserts.clear();
    this.retryRemovals.clear();
    for (const k of [...this.registered.keys()]) this.forget(k);
    this.setState('refused');
  }
}
