/**
 * The registration server's TCP front end (updates are TCP only, so the
 * source address that authorises new claims cannot be spoofed). Framing,
 * ordering and connection limits are the shared TCP layer's
 * (src/net/tcp-server.ts); this file supplies the handler, the logging of
 * each outcome and the answer for a reply too large to frame.
 */
import type { Logger } from 'pino';
import type { Limits } from '../config/limits.js';
import { emptyMessage, encodeMessage } from '../dns/message.js';
import { formatWire } from '../dns/present.js';
import { RRClass, Rcode, rcodeName } from '../dns/constants.js';
import { TcpDnsServer, type RequestContext, type TcpLimits, type TcpStats } from '../net/tcp-server.js';
import type { HandlerOutcome } from './handler.js';
import type { RefusalId } from './refusals.js';

/**
 * The registration server's connection limits. The daemon sets those of
 * the `limits:` section (serverLimits); the rest are the TCP layer's
 * (DEFAULT_TCP_LIMITS): 16 requests in flight, 64 KiB unsent, 10 s for the
 * peer to take its replies.
 */
export type ServerLimits = TcpLimits;

/** The connection limits of the `limits:` section (README, "Limits"). */
export function serverLimits(l: Limits): Partial<ServerLimits> {
  return {
    maxConnections: l.connections,
    maxPerSource: l.connectionsPerSource,
    idleTimeoutMs: l.idleTimeout,
    slowReadTimeoutMs: l.messageTimeout,
    maxMessageSize: l.maxMessageSize,
  };
}

export type MessageHandler = (raw: Buffer, remote: string) => Promise<HandlerOutcome>;

export interface ServerOptions {
  host: string;
  port: number;
  handler: MessageHandler;
  logger: Logger;
  limits?: Partial<ServerLimits>;
  /** Log every message and reply in presentation form (`--print`). */
  print?: boolean;
}

const QUIET_REFUSALS: ReadonlySet<RefusalId> = new Set<RefusalId>(['busy', 'rateLimited']);

/** The reason sent with the SERVFAIL that replaces a reply too large for TCP. */
const OVERSIZE_REASON = 'Reply too large for TCP';

/**
 * SERVFAIL with one TXT reason (owner the root, class ANY, TTL 0, like the
 * handler's other error replies) for a request whose reply could not be
 * framed; null when the request's header cannot be read.
 */
export function oversizeReply(request: Buffer): Buffer | null {
  if (request.length < 12) return null;
  const m = emptyMessage(request.readUInt16BE(0), (request[2] >> 3) & 0xf);
  m.qr = true;
  m.rcode = Rcode.SERVFAIL;
  m.additionals.push({ name: '.', type: 'TXT', class: RRClass.ANY, ttl: 0, data: [OVERSIZE_REASON] });
  return encodeMessage(m);
}

export class RegistrationServer {
  private readonly tcp: TcpDnsServer;

  constructor(private readonly opts: ServerOptions) {
    this.tcp = new TcpDnsServer({
      handler: (raw, ctx) => this.handle(raw, ctx),
      log: opts.logger,
      limits: opts.limits ?? {},
      onOversize: (request) => oversizeReply(request),
    });
  }

  /** Addresses actually bound, as host:port strings. */
  get addresses(): string[] {
    return this.tcp.addresses;
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.tcp.connectionCount;
  }

  /** The TCP layer's counters since this listener opened (metrics). */
  get stats(): Readonly<TcpStats> {
    return this.tcp.stats;
  }

  /** The port bound (useful with port 0). */
  get port(): number {
    return this.tcp.port || this.opts.port;
  }

  /**
   * Listens on every address of `host`; one that cannot be bound is skipped
   * with a warning (the TCP layer's), and only none bound is an error.
   */
  async listen(): Promise<void> {
    await this.tcp.listen(this.opts.host, this.opts.port);
    this.opts.logger.info({ addresses: this.addresses }, 'listening for registrations (TCP)');
  }

  /** New limits for connections accepted and deadlines armed from now on (a reload). */
  setLimits(limits: Partial<ServerLimits>): void {
    this.tcp.setLimits(limits);
  }

  /** Stops accepting; open connections may finish their current message. */
  async stopAccepting(): Promise<void> {
    await this.tcp.stopAccepting();
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    await this.tcp.close();
  }

  private async handle(raw: Buffer, { remote, log }: RequestContext): Promise<Buffer | null> {
    if (this.opts.print) log.info({}, `received:\n${formatWire(raw)}`);
    // A handler that throws is the TCP layer's to log; it closes the connection.
    const outcome: HandlerOutcome = await this.opts.handler(raw, remote);
    const fields = (): object => ({ rcode: rcodeName(outcome.rcode), zone: outcome.zone, name: outcome.name, reason: outcome.reason });
    // Turned-away floods are logged at debug: one info line per flooded request would be a second flood.
    if (outcome.rcode === 0 || (outcome.refusal !== undefined && QUIET_REFUSALS.has(outcome.refusal))) {
      // Every request passes here: nothing is built for a level that is not written.
      if (log.isLevelEnabled?.('debug') !== false) log.debug(fields(), outcome.rcode === 0 ? 'request handled' : 'request refused');
    } else {
      log.info(fields(), 'request refused');
    }
    if (outcome.reply !== null && this.opts.print) log.info({}, `reply:\n${formatWire(outcome.reply)}`);
    return outcome.reply;
  }
}
