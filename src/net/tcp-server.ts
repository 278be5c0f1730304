/**
 * DNS over TCP, server side: the one connection layer the registration
 * server and the built-in zone server share. It frames messages (RFC 1035
 * section 4.2.2), answers them in request order (RFC 7766 section 6.2.1.1),
 * and defends itself; what a message means is the handler's business.
 *
 * Defences, each configurable per listener (TcpLimits):
 *  - connections: a total cap (the longest-idle connection makes room) and a
 *    cap per source (one IPv4 address, one IPv6 /64);
 *  - time: an idle deadline counted from the last complete message (not
 *    from the last byte, so dripping bytes does not keep a connection), a
 *    deadline for finishing a message once its first byte arrived, and a
 *    deadline for the peer to take the replies written to it;
 *  - memory: a message-size cap, a cap on requests in flight per connection
 *    (a request is in flight until its reply has drained to the kernel), and
 *    a bound on unsent reply bytes; beyond either, reading stops (RFC 7766
 *    section 6.2.2 lets a server stop reading to apply back-pressure);
 *  - fairness: a connection hands at most maxPipelined requests to the
 *    handler before it yields to the event loop for a turn. Replies that
 *    reach the kernel at once call back within the same turn, so without
 *    this bound a client pipelining cheap queries would be answered by the
 *    thousand per turn while the steps of everyone else's requests (a
 *    signature check, a journal write) wait behind them.
 * No reply path can throw out of a connection: a failing handler closes
 * that connection, and a reply too large for the length prefix goes through
 * the `onOversize` hook (or closes the connection).
 *
 * It lives in src/net because it knows nothing of either protocol: the
 * logger comes in through the small ConnectionLog interface (a pino Logger
 * fits it) and time through the shared Clock, so tests drive it with a fake.
 */
import * as net from 'node:net';
import { systemClock, type Clock, type TimerHandle } from '../clock.js';
import { HOST_PREFIX, formatHostPort, plainAddress, prefixKey } from './address.js';
import { resolveListenAddresses } from './listen.js';
import { FrameDecoder, MAX_TCP_MESSAGE, frame } from './transport.js';

export interface TcpLimits {
  /** Connections open at once; when full, the longest-idle connection makes room (or the new one is closed). */
  maxConnections: number;
  /** Connections from one source (an IPv4 address, an IPv6 /64) at once. */
  maxPerSource: number;
  /** A message begun but not complete after this long closes the connection (ms). */
  slowReadTimeoutMs: number;
  /** A connection with no complete message (and no reply drained) for this long is closed (ms). */
  idleTimeoutMs: number;
  /** Largest message accepted (octets). */
  maxMessageSize: number;
  /** Requests of one connection in flight (read, reply not yet drained); reading pauses at it. */
  maxPipelined: number;
  /** Reply bytes of one connection not yet taken by the kernel; reading pauses beyond it. */
  maxUnsentBytes: number;
  /** Written reply bytes that make no progress for this long close the connection (ms). */
  writeTimeoutMs: number;
}

/** The logging a connection needs; a pino Logger is one. */
export interface ConnectionLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  child(bindings: Record<string, unknown>): ConnectionLog;
  /** Whether lines of `level` are written at all (pino's); absent: assume so. */
  isLevelEnabled?(level: string): boolean;
}

/**
 * A connection's logger with its fields (`conn`, `remote`), made only when
 * the connection logs something at a level that is written: a pino child
 * logger costs microseconds and an allocation per connection, and most
 * connections (one request, one reply) never log anything.
 */
class ConnLog implements ConnectionLog {
  #log: ConnectionLog | undefined;

  constructor(
    private readonly parent: ConnectionLog,
    private readonly conn: number,
    private readonly remote: string,
  ) {}

  private get log(): ConnectionLog {
    return (this.#log ??= this.parent.child({ conn: this.conn, remote: this.remote }));
  }

  debug(obj: object, msg: string): void {
    if (this.parent.isLevelEnabled?.('debug') !== false) this.log.debug(obj, msg);
  }

  info(obj: object, msg: string): void {
    if (this.parent.isLevelEnabled?.('info') !== false) this.log.info(obj, msg);
  }

  warn(obj: object, msg: string): void {
    this.log.warn(obj, msg);
  }

  error(obj: object, msg: string): void {
    this.log.error(obj, msg);
  }

  child(bindings: Record<string, unknown>): ConnectionLog {
    return this.log.child(bindings);
  }

  isLevelEnabled(level: string): boolean {
    return this.parent.isLevelEnabled?.(level) !== false;
  }
}

/** What a handler is told about the connection a request came on. */
export interface RequestContext {
  /** The peer's address, IPv4-mapped IPv6 shown as IPv4. */
  readonly remote: string;
  /** Logger with the connection's fields (`conn`, `remote`). */
  readonly log: ConnectionLog;
}

/**
 * The reply to one request: one message; several messages in order (a zone
 * transfer, RFC 5936 §2.2), pulled one at a time while the peer keeps up;
 * or null to close the connection instead.
 */
export type Reply = Buffer | Iterable<Buffer> | null;
export type RequestHandler = (request: Buffer, ctx: RequestContext) => Promise<Reply> | Reply;

/** Why a connection was closed by the layer (or 'peer' when the peer went). */
export type CloseReason =
  | 'peer'
  | 'idle'
  | 'slow-read'
  | 'write-timeout'
  | 'bad-framing'
  | 'handler-error'
  | 'no-reply'
  | 'oversize'
  | 'evicted'
  | 'shutdown';

export type TcpEvent =
  | { type: 'accepted'; remote: string; source: string }
  | { type: 'refused'; remote: string; source: string; why: 'per-source' | 'full' }
  | { type: 'read'; remote: string; messages: number; pending: number }
  | { type: 'paused'; remote: string }
  | { type: 'resumed'; remote: string }
  | { type: 'closed'; remote: string; why: CloseReason };

/** Counters since the server was made, for tests and diagnostics. */
export interface TcpStats {
  accepted: number;
  refusedPerSource: number;
  refusedFull: number;
  evicted: number;
  /** Times a connection stopped being read for back-pressure. */
  readPauses: number;
  handlerErrors: number;
  oversizeReplies: number;
  /** Highest requests in flight seen on one connection. */
  peakInFlight: number;
  /** Highest unsent reply bytes (queued behind earlier replies plus the socket's buffer) seen on one connection. */
  peakUnsentBytes: number;
  /** Connections closed, by reason. */
  closed: Record<CloseReason, number>;
}

export interface TcpDnsServerOptions {
  handler: RequestHandler;
  log: ConnectionLog;
  /** Limits; missing fields take DEFAULT_TCP_LIMITS. */
  limits?: Partial<TcpLimits>;
  /**
   * Called when a reply is larger than a TCP frame can carry (65535 octets);
   * returns the reply to send instead (a truncated or error answer), or null
   * to close the connection.
   */
  onOversize?: (request: Buffer, reply: Buffer) => Buffer | null;
  /** Drives every deadline; default the system clock. */
  clock?: Clock;
  /** Told of each connection event (tests await these; nothing else needs them). */
  observer?: (event: TcpEvent) => void;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = Object.freeze({
  maxConnections: 512,
  maxPerSource: 32,
  slowReadTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxMessageSize: MAX_TCP_MESSAGE,
  maxPipelined: 16,
  maxUnsentBytes: 64 * 1024,
  writeTimeoutMs: 10_000,
});

/** `limits` when every field is a positive integer and the message size fits a frame; else a RangeError. */
function checkedLimits(limits: TcpLimits): TcpLimits {
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`TCP limit ${k} must be a positive integer, got ${String(v)}`);
  }
  if (limits.maxMessageSize > MAX_TCP_MESSAGE) {
    throw new RangeError(`TCP limit maxMessageSize must be at most ${MAX_TCP_MESSAGE}, got ${limits.maxMessageSize}`);
  }
  return limits;
}

/** A request's place in the reply order. */
interface Slot {
  readonly request: Buffer;
  done: boolean;
  /** The reply, or the next message of a multi-message reply. */
  reply: Buffer | null;
  /** The rest of a multi-message reply, until its last message is written. */
  more: Iterator<Buffer> | undefined;
  /** Octets of the reply counted in the connection's queuedBytes (a multi-message reply's are not). */
  queued: number;
  /** Set when the handler failed: the connection closes when this slot's turn comes. */
  failed: boolean;
}

/** One open connection; it is also the context its requests are handled in. */
class Connection implements RequestContext {
  readonly decoder: FrameDecoder;
  /** Requests read but not yet handed to the handler (at most one read's worth). */
  readonly backlog: Buffer[] = [];
  /** Requests handed to the handler, in arrival order, until their reply is written. */
  readonly slots: Slot[] = [];
  /** Requests whose reply has not drained yet (handled, queued or being written). */
  inFlight = 0;
  /** Bytes of replies ready but waiting behind an earlier one. */
  queuedBytes = 0;
  /** Replies written whose write has not completed. */
  writing = 0;
  lastActive: number;
  paused = false;
  closed = false;
  /** The server's turn in which `dispatched` was counted. */
  turn = -1;
  /** Requests handed to the handler in that turn. */
  dispatched = 0;
  idleTimer: TimerHandle | undefined;
  slowReadTimer: TimerHandle | undefined;
  writeTimer: TimerHandle | undefined;

  constructor(
    readonly socket: net.Socket,
    readonly remote: string,
    readonly source: string,
    readonly log: ConnectionLog,
    maxMessageSize: number,
    now: number,
  ) {
    this.decoder = new FrameDecoder({ maxFrame: maxMessageSize });
    this.lastActive = now;
  }

  get unsentBytes(): number {
    return this.queuedBytes + this.socket.writableLength;
  }

  get busy(): boolean {
    return this.inFlight > 0 || this.backlog.length > 0;
  }
}

export class TcpDnsServer {
  private readonly servers: net.Server[] = [];
  /** Listeners stopped but not yet fully closed (they close when their last connection does). */
  private readonly closing: Promise<void>[] = [];
  /** Open connections, least recently active first (re-inserted on activity). */
  private readonly conns = new Map<net.Socket, Connection>();
  private readonly perSource = new Map<string, number>();
  private limits: TcpLimits;
  private readonly clock: Clock;
  private connectionSeq = 0;
  /** Turns of the event loop in which a connection had to yield, counted (see mayDispatch). */
  private turn = 0;
  /** Connections that used up their turn's share with requests still waiting (a turn's end is scheduled while any are). */
  private readonly deferred = new Set<Connection>();
  private readonly counters: TcpStats = {
    accepted: 0,
    refusedPerSource: 0,
    refusedFull: 0,
    evicted: 0,
    readPauses: 0,
    handlerErrors: 0,
    oversizeReplies: 0,
    peakInFlight: 0,
    peakUnsentBytes: 0,
    closed: {
      peer: 0,
      idle: 0,
      'slow-read': 0,
      'write-timeout': 0,
      'bad-framing': 0,
      'handler-error': 0,
      'no-reply': 0,
      oversize: 0,
      evicted: 0,
      shutdown: 0,
    },
  };

  constructor(private readonly opts: TcpDnsServerOptions) {
    this.limits = checkedLimits({ ...DEFAULT_TCP_LIMITS, ...opts.limits });
    this.clock = opts.clock ?? systemClock;
  }

  /**
   * Changes limits while running (a reload): connection caps and the
   * message size apply to connections accepted from now on, timeouts to
   * every deadline armed from now on; open connections stay open.
   */
  setLimits(limits: Partial<TcpLimits>): void {
    this.limits = checkedLimits({ ...this.limits, ...limits });
  }

  /**
   * Listens on every address `host` stands for (see resolveListenAddresses;
   * or on the addresses given), all on one port: with port 0, the port the
   * first address bound got. An address that cannot be bound (`::1` in a
   * container without IPv6) is skipped with a warning naming it, as the
   * original did; only when no address at all can be bound does this throw
   * (the first address's error). Returns the addresses bound.
   */
  async listen(host: string | readonly string[], port: number): Promise<string[]> {
    const addresses = typeof host === 'string' ? await resolveListenAddresses(host) : host;
    const bound: string[] = [];
    let firstError: Error | undefined;
    for (const address of addresses) {
      const server = net.createServer((s) => this.accept(s));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: address, port, ipv6Only: net.isIPv6(address) }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        if (err instanceof Error) firstError ??= err;
        this.opts.log.warn({ err, address: formatHostPort(address, port) }, 'cannot listen on this address (TCP); carrying on without it');
        continue;
      }
      server.on('error', (err) => this.opts.log.error({ err }, 'TCP listener error'));
      this.servers.push(server);
      bound.push(address);
      if (port === 0) port = (server.address() as net.AddressInfo).port;
    }
    if (bound.length === 0) {
      await this.close();
      throw firstError ?? new RangeError('no address to listen on');
    }
    return bound;
  }

  /** Addresses actually bound, as host:port strings. */
  get addresses(): string[] {
    return this.servers.map((s) => {
      const a = s.address() as net.AddressInfo;
      return formatHostPort(a.address, a.port);
    });
  }

  /** The port bound (useful with port 0); 0 before listen(). */
  get port(): number {
    const a = this.servers[0]?.address() as net.AddressInfo | undefined;
    return a?.port ?? 0;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.conns.size;
  }

  get stats(): Readonly<TcpStats> {
    return this.counters;
  }

  /**
   * Stops accepting; open connections carry on until they end or time out.
   * Resolves once the listening sockets are closed, without waiting for
   * those connections (net.Server's close callback would).
   */
  stopAccepting(): Promise<void> {
    for (const s of this.servers.splice(0)) this.closing.push(new Promise<void>((resolve) => s.close(() => resolve())));
    return Promise.resolve();
  }

  /** Stops accepting, closes every connection and resolves when the listeners are fully closed. */
  async close(): Promise<void> {
    await this.stopAccepting();
    for (const c of [...this.conns.values()]) this.drop(c, 'shutdown');
    await Promise.all(this.closing.splice(0));
  }

  private emit(event: TcpEvent): void {
    this.opts.observer?.(event);
  }

  private accept(socket: net.Socket): void {
    const remote = plainAddress(socket.remoteAddress);
    const source = prefixKey(remote, HOST_PREFIX);
    const log = new ConnLog(this.opts.log, ++this.connectionSeq, remote);
    socket.on('error', (err) => log.debug({ err }, 'connection error'));
    if ((this.perSource.get(source) ?? 0) >= this.limits.maxPerSource) {
      log.debug({ limit: this.limits.maxPerSource, source }, 'too many connections from this source, closing new connection');
      this.counters.refusedPerSource++;
      socket.destroy();
      this.emit({ type: 'refused', remote, source, why: 'per-source' });
      return;
    }
    if (this.conns.size >= this.limits.maxConnections && !this.evictIdle()) {
      log.warn({ limit: this.limits.maxConnections }, 'connection limit reached and none idle, closing new connection');
      this.counters.refusedFull++;
      socket.destroy();
      this.emit({ type: 'refused', remote, source, why: 'full' });
      return;
    }
    const c = new Connection(socket, remote, source, log, this.limits.maxMessageSize, this.clock.now());
    this.conns.set(socket, c);
    this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
    this.counters.accepted++;
    socket.setNoDelay(true);
    socket.on('close', () => this.drop(c, 'peer'));
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    this.armIdle(c, this.limits.idleTimeoutMs);
    this.emit({ type: 'accepted', remote, source });
  }

  /** Closes the connection idle longest (nothing in flight); false if none is idle. */
  private evictIdle(): boolean {
    for (const c of this.conns.values()) {
      if (c.busy || c.unsentBytes > 0) continue;
      c.log.info({}, 'connection limit reached, closing the longest-idle connection');
      this.counters.evicted++;
      this.drop(c, 'evicted');
      return true;
    }
    return false;
  }

  /** Forgets and destroys a connection (once); `why` is what the counters and the observer are told. */
  private drop(c: Connection, why: CloseReason): void {
    if (c.closed) return;
    c.closed = true;
    c.idleTimer?.cancel();
    c.slowReadTimer?.cancel();
    c.writeTimer?.cancel();
    this.conns.delete(c.socket);
    const n = (this.perSource.get(c.source) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(c.source);
    else this.perSource.set(c.source, n);
    c.backlog.length = 0;
    c.slots.length = 0;
    c.socket.destroy();
    this.counters.closed[why]++;
    if (why !== 'peer' && why !== 'shutdown') c.log.debug({ why }, 'connection closed');
    this.emit({ type: 'closed', remote: c.remote, why });
  }

  /** A complete message arrived or a reply drained: the connection is active, not idle. */
  private touch(c: Connection): void {
    c.lastActive = this.clock.now();
    if (!this.conns.has(c.socket)) return;
    this.conns.delete(c.socket);
    this.conns.set(c.socket, c);
  }

  /**
   * The idle deadline is checked lazily: the timer fires at the earliest
   * moment it could be due and re-arms itself for the rest, so activity
   * only records a time instead of rescheduling a timer.
   */
  private armIdle(c: Connection, ms: number): void {
    c.idleTimer = this.clock.schedule(ms, () => {
      if (c.closed) return;
      // A connection waiting for its own replies is not idle; the write deadline covers a peer that does not read.
      if (c.busy) {
        this.armIdle(c, this.limits.idleTimeoutMs);
        return;
      }
      const left = c.lastActive + this.limits.idleTimeoutMs - this.clock.now();
      if (left > 0) this.armIdle(c, left);
      else this.drop(c, 'idle');
    });
  }

  private onData(c: Connection, chunk: Buffer): void {
    if (c.closed) return;
    let frames: Buffer[];
    try {
      frames = c.decoder.push(chunk);
    } catch (err) {
      c.log.warn({ err }, 'bad framing, closing connection');
      this.drop(c, 'bad-framing');
      return;
    }
    if (frames.length > 0) {
      this.touch(c);
      // A message completed: whatever is pending now is a new one, with its own deadline.
      c.slowReadTimer?.cancel();
      c.slowReadTimer = undefined;
    }
    c.backlog.push(...frames);
    this.pump(c);
    this.armSlowRead(c);
    if (this.opts.observer !== undefined) this.emit({ type: 'read', remote: c.remote, messages: frames.length, pending: c.decoder.pending });
  }

  /** A message begun must complete in time, so trickling bytes cannot hold a connection. */
  private armSlowRead(c: Connection): void {
    if (c.closed || c.paused || c.decoder.pending === 0 || c.slowReadTimer !== undefined) return;
    c.slowReadTimer = this.clock.schedule(this.limits.slowReadTimeoutMs, () => {
      c.slowReadTimer = undefined;
      if (c.closed) return;
      c.log.debug({ pending: c.decoder.pending }, 'message not completed in time, closing connection');
      this.drop(c, 'slow-read');
    });
  }

  private overLimit(c: Connection): boolean {
    return c.inFlight >= this.limits.maxPipelined || c.unsentBytes > this.limits.maxUnsentBytes;
  }

  /**
   * Whether `c` may hand one more request to the handler before it yields
   * to the event loop; if not, it is pumped again in the next turn. Turns
   * are counted only when a connection has to yield (a setImmediate per
   * turn of the loop would cost every request), so a connection's count can
   * span several turns and it may yield once without need: a turn's delay.
   */
  private mayDispatch(c: Connection): boolean {
    if (c.turn !== this.turn) {
      c.turn = this.turn;
      c.dispatched = 0;
    }
    if (c.dispatched < this.limits.maxPipelined) {
      c.dispatched++;
      return true;
    }
    if (this.deferred.size === 0) this.endTurnSoon();
    this.deferred.add(c);
    return false;
  }

  /** Ends the current turn at the next check phase of the event loop, and pumps the connections that waited for it. */
  private endTurnSoon(): void {
    setImmediate(() => {
      this.turn++;
      const waiting = [...this.deferred];
      this.deferred.clear();
      for (const c of waiting) if (!c.closed) this.pump(c);
    });
  }

  /** Hands backlog requests to the handler while the limits allow, then pauses or resumes reading. */
  private pump(c: Connection): void {
    while (!c.closed && c.backlog.length > 0 && !this.overLimit(c) && this.mayDispatch(c)) {
      this.dispatch(c, c.backlog.shift() as Buffer);
    }
    if (c.closed) return;
    const stop = c.backlog.length > 0 || this.overLimit(c);
    if (stop && !c.paused) {
      c.paused = true;
      c.socket.pause();
      // Not reading is our choice, so a half-read message is not the peer's delay.
      c.slowReadTimer?.cancel();
      c.slowReadTimer = undefined;
      this.counters.readPauses++;
      this.emit({ type: 'paused', remote: c.remote });
    } else if (!stop && c.paused) {
      c.paused = false;
      c.socket.resume();
      this.armSlowRead(c);
      this.emit({ type: 'resumed', remote: c.remote });
    }
  }

  private dispatch(c: Connection, request: Buffer): void {
    const slot: Slot = { request, done: false, reply: null, more: undefined, queued: 0, failed: false };
    c.slots.push(slot);
    c.inFlight++;
    this.counters.peakInFlight = Math.max(this.counters.peakInFlight, c.inFlight);
    new Promise<Reply>((resolve) => resolve(this.opts.handler(request, c))).then(
      (reply) => {
        if (reply === null || Buffer.isBuffer(reply)) {
          slot.reply = reply;
        } else {
          slot.more = reply[Symbol.iterator]();
          slot.reply = this.pull(c, slot);
        }
        this.settle(c, slot);
      },
      (err: unknown) => {
        c.log.error({ err }, 'request handler failed, closing connection');
        this.counters.handlerErrors++;
        slot.failed = true;
        this.settle(c, slot);
      },
    );
  }

  private settle(c: Connection, slot: Slot): void {
    if (c.closed) return;
    slot.done = true;
    slot.queued = slot.more === undefined && slot.reply !== null ? slot.reply.length : 0;
    c.queuedBytes += slot.queued;
    this.notePeak(c);
    this.flush(c);
  }

  private notePeak(c: Connection): void {
    this.counters.peakUnsentBytes = Math.max(this.counters.peakUnsentBytes, c.unsentBytes);
  }

  /** The next message of a multi-message reply; null when there is none (or the handler failed: slot.failed). */
  private pull(c: Connection, slot: Slot): Buffer | null {
    try {
      const next = slot.more?.next();
      if (next === undefined || next.done === true) {
        slot.more = undefined;
        return null;
      }
      return next.value;
    } catch (err) {
      c.log.error({ err }, 'request handler failed, closing connection');
      this.counters.handlerErrors++;
      slot.failed = true;
      slot.more = undefined;
      return null;
    }
  }

  /**
   * Writes the messages of the multi-message reply at the head of the
   * queue while the peer takes them (unsent bytes within maxUnsentBytes);
   * true once the last one is written (the caller then writes it as an
   * ordinary reply), false to carry on when the peer has taken some.
   */
  private writeMessages(c: Connection, slot: Slot): boolean {
    while (slot.more !== undefined && slot.reply !== null) {
      if (c.socket.writableLength > this.limits.maxUnsentBytes) return false;
      const message = slot.reply;
      slot.reply = this.pull(c, slot);
      if (slot.failed) return true;
      // The last message goes out through flush(), whose drain ends the request.
      if (slot.reply === null) {
        slot.reply = message;
        return true;
      }
      if (message.length > MAX_TCP_MESSAGE) {
        c.log.warn({ bytes: message.length }, 'message of a multi-message reply too large for TCP');
        this.counters.oversizeReplies++;
        this.drop(c, 'oversize');
        return false;
      }
      c.writing++;
      c.socket.write(frame(message), () => this.messageDrained(c));
      this.notePeak(c);
      if (c.writeTimer === undefined) this.armWrite(c);
    }
    return true;
  }

  /** A message of a multi-message reply reached the kernel: progress, and room for the next ones. */
  private messageDrained(c: Connection): void {
    if (c.closed) return;
    c.writing--;
    this.touch(c);
    c.writeTimer?.cancel();
    c.writeTimer = undefined;
    if (c.writing > 0) this.armWrite(c);
    this.flush(c);
  }

  /** Writes every reply whose turn has come (RFC 7766 section 6.2.1.1: in request order). */
  private flush(c: Connection): void {
    while (!c.closed && c.slots.length > 0 && c.slots[0].done) {
      if (!this.writeMessages(c, c.slots[0])) return;
      if (c.closed) return;
      const slot = c.slots.shift() as Slot;
      c.queuedBytes -= slot.queued;
      if (slot.failed) {
        this.drop(c, 'handler-error');
        return;
      }
      if (slot.reply === null) {
        this.drop(c, 'no-reply');
        return;
      }
      const framed = this.framed(c, slot);
      if (framed === null) {
        this.drop(c, 'oversize');
        return;
      }
      c.writing++;
      c.socket.write(framed, () => this.drained(c));
      this.notePeak(c);
      if (c.writeTimer === undefined) this.armWrite(c);
    }
    if (!c.closed) this.pump(c);
  }

  /** The reply with its length prefix; an oversized one goes through onOversize. */
  private framed(c: Connection, slot: Slot): Buffer | null {
    const reply = slot.reply as Buffer;
    if (reply.length <= MAX_TCP_MESSAGE) return frame(reply);
    this.counters.oversizeReplies++;
    let instead: Buffer | null = null;
    try {
      instead = this.opts.onOversize?.(slot.request, reply) ?? null;
    } catch (err) {
      c.log.error({ err }, 'building the answer for an oversized reply failed');
    }
    c.log.warn({ bytes: reply.length, replaced: instead !== null }, 'reply too large for TCP');
    return instead !== null && instead.length <= MAX_TCP_MESSAGE ? frame(instead) : null;
  }

  /** One reply reached the kernel: its request is no longer in flight. */
  private drained(c: Connection): void {
    if (c.closed) return;
    c.inFlight--;
    c.writing--;
    this.touch(c);
    c.writeTimer?.cancel();
    c.writeTimer = undefined;
    // Progress: the deadline starts again for what is still buffered.
    if (c.writing > 0) this.armWrite(c);
    this.pump(c);
  }

  private armWrite(c: Connection): void {
    c.writeTimer = this.clock.schedule(this.limits.writeTimeoutMs, () => {
      c.writeTimer = undefined;
      if (c.closed) return;
      c.log.debug({ unsent: c.unsentBytes }, 'peer is not reading its replies, closing connection');
      this.drop(c, 'write-timeout');
    });
  }
}
