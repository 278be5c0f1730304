/**
 * The TCP front end (RFC 1035 §4.2.2 framing; updates are TCP only so the
 * source address that authorises new claims cannot be spoofed). It frames,
 * limits and logs; every decision is the handler's.
 */
import * as net from 'node:net';
import type { Logger } from 'pino';
import { FrameDecoder, frame } from '../net/transport.js';
import { decodeMessage } from '../dns/message.js';
import { formatMessage } from '../dns/present.js';
import { rcodeName } from '../dns/constants.js';
import type { HandlerOutcome } from './handler.js';
import type { RefusalId } from './refusals.js';
import { errorMessage } from '../errors.js';
import { formatHostPort, plainAddress } from '../net/address.js';
import { resolveListenAddresses } from '../net/listen.js';

export interface ServerLimits {
  /** Connections open at once; when full, the longest-idle connection makes room (or the new one is closed). */
  maxConnections: number;
  /** Connections from one address at once. */
  maxPerSource: number;
  /** A message begun but not complete after this long closes the connection (ms). */
  slowReadTimeoutMs: number;
  /** A connection with no complete message for this long is closed (ms). */
  idleTimeoutMs: number;
  /** Largest message accepted (octets). */
  maxMessageSize: number;
  /** Messages of one connection waiting for their reply; reading pauses beyond it. */
  maxPipelined: number;
}

export const DEFAULT_LIMITS: ServerLimits = Object.freeze({
  maxConnections: 512,
  maxPerSource: 32,
  slowReadTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxMessageSize: 65535,
  maxPipelined: 16,
});

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

interface Connection {
  remote: string;
  /** Requests received and not yet answered. */
  inFlight: number;
}

export class RegistrationServer {
  private readonly servers: net.Server[] = [];
  /** Open connections, least recently active first (re-inserted on activity). */
  private readonly sockets = new Map<net.Socket, Connection>();
  private readonly perSource = new Map<string, number>();
  private readonly limits: ServerLimits;
  private connectionSeq = 0;

  constructor(private readonly opts: ServerOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
  }

  /** Addresses actually bound, as host:port strings. */
  get addresses(): string[] {
    return this.servers.map((s) => {
      const a = s.address() as net.AddressInfo;
      return formatHostPort(a.address, a.port);
    });
  }

  /** Connections open now. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  /** The port bound (useful with port 0). */
  get port(): number {
    const a = this.servers[0]?.address() as net.AddressInfo | undefined;
    return a?.port ?? this.opts.port;
  }

  async listen(): Promise<void> {
    const addresses = await resolveListenAddresses(this.opts.host);
    let port = this.opts.port;
    try {
      for (const address of addresses) {
        const server = net.createServer({ pauseOnConnect: false }, (s) => this.accept(s));
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: address, port, ipv6Only: net.isIPv6(address) }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        server.on('error', (err) => this.opts.logger.error({ err }, 'listener error'));
        this.servers.push(server);
        // With port 0 every address shares the port the first one got.
        if (port === 0) port = (server.address() as net.AddressInfo).port;
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    this.opts.logger.info({ addresses: this.addresses }, 'listening for registrations (TCP)');
  }

  /** Stops accepting; open connections may finish their current message. */
  async stopAccepting(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.servers.length = 0;
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    const closing = this.stopAccepting();
    for (const s of this.sockets.keys()) s.destroy();
    await closing;
  }

  /** Closes the connection that has been idle longest (nothing in flight); false if none is idle. */
  private evictIdle(log: Logger): boolean {
    for (const [socket, conn] of this.sockets) {
      if (conn.inFlight > 0) continue;
      log.info({ evicted: conn.remote }, 'connection limit reached, closing the longest-idle connection');
      this.forget(socket);
      socket.destroy();
      return true;
    }
    return false;
  }

  private forget(socket: net.Socket): void {
    const conn = this.sockets.get(socket);
    if (conn === undefined) return;
    this.sockets.delete(socket);
    const n = (this.perSource.get(conn.remote) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(conn.remote);
    else this.perSource.set(conn.remote, n);
  }

  private touch(socket: net.Socket, conn: Connection): void {
    if (!this.sockets.has(socket)) return;
    this.sockets.delete(socket);
    this.sockets.set(socket, conn);
  }

  private accept(socket: net.Socket): void {
    const remote = plainAddress(socket.remoteAddress);
    const log = this.opts.logger.child({ conn: ++this.connectionSeq, remote });
    if ((this.perSource.get(remote) ?? 0) >= this.limits.maxPerSource) {
      log.debug({ limit: this.limits.maxPerSource }, 'too many connections from this address, closing new connection');
      socket.destroy();
      return;
    }
    if (this.sockets.size >= this.limits.maxConnections && !this.evictIdle(log)) {
      log.warn({ limit: this.limits.maxConnections }, 'connection limit reached and none idle, closing new connection');
      socket.destroy();
      return;
    }
    const conn: Connection = { remote, inFlight: 0 };
    this.sockets.set(socket, conn);
    this.perSource.set(remote, (this.perSource.get(remote) ?? 0) + 1);
    socket.setNoDelay(true);
    socket.setTimeout(this.limits.idleTimeoutMs);
    const decoder = new FrameDecoder({ maxFrame: this.limits.maxMessageSize });
    let queue: Promise<void> = Promise.resolve();
    let slowRead: NodeJS.Timeout | undefined;
    const stopSlowRead = (): void => {
      clearTimeout(slowRead);
      slowRead = undefined;
    };
    socket.on('timeout', () => {
      log.debug('idle timeout');
      socket.destroy();
    });
    socket.on('error', (err) => log.debug({ err }, 'connection error'));
    socket.on('close', () => {
      stopSlowRead();
      this.forget(socket);
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        log.warn({ err: err }, 'bad framing, closing connection');
        socket.destroy();
        return;
      }
      this.touch(socket, conn);
      // A message trickled in byte by byte must not hold a connection forever.
      if (decoder.pending === 0) {
        stopSlowRead();
      } else if (slowRead === undefined) {
        slowRead = setTimeout(() => {
          log.debug('message not completed in time, closing connection');
          socket.destroy();
        }, this.limits.slowReadTimeoutMs);
        slowRead.unref();
      }
      for (const raw of frames) {
        conn.inFlight++;
        if (conn.inFlight >= this.limits.maxPipelined) socket.pause();
        // Replies go out in request order; each request is handled as soon as it arrives.
        const outcome = this.handle(raw, remote, log);
        queue = queue.then(async () => {
          const result = await outcome;
          conn.inFlight--;
          this.touch(socket, conn);
          if (socket.isPaused() && conn.inFlight < this.limits.maxPipelined) socket.resume();
          if (socket.destroyed) return;
          if (result === null) {
            socket.destroy();
            return;
          }
          socket.write(frame(result));
        });
      }
    });
  }

  private async handle(raw: Buffer, remote: string, log: Logger): Promise<Buffer | null> {
    if (this.opts.print) printMessage(log, 'received', raw);
    let outcome: HandlerOutcome;
    try {
      outcome = await this.opts.handler(raw, remote);
    } catch (err) {
      log.error({ err }, 'request handler failed');
      return null;
    }
    const fields = { rcode: rcodeName(outcome.rcode), zone: outcome.zone, name: outcome.name, reason: outcome.reason };
    // Turned-away floods are logged at debug: one info line per flooded request would be a second flood.
    if (outcome.rcode === 0 || (outcome.refusal !== undefined && QUIET_REFUSALS.has(outcome.refusal))) {
      log.debug(fields, outcome.rcode === 0 ? 'request handled' : 'request refused');
    } else {
      log.info(fields, 'request refused');
    }
    if (outcome.reply !== null && this.opts.print) printMessage(log, 'reply', outcome.reply);
    return outcome.reply;
  }
}

function printMessage(log: Logger, what: string, raw: Buffer): void {
  try {
    log.info(`${what}:\n${formatMessage(decodeMessage(raw))}`);
  } catch (err) {
    log.info({ bytes: raw.toString('hex') }, `${what}: undecodable (${errorMessage(err)})`);
  }
}
