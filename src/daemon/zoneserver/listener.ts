/**
 * UDP and TCP sockets of the built-in zone server. Several zones (and
 * reverse zones) can share one address and port, so listeners are shared
 * and reference-counted per host:port; each query goes to the authority
 * whose apex matches best.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { Rcode } from '../../dns/constants.js';
import { MalformedMessageError } from '../../dns/errors.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../dns/message.js';
import { TcpDnsServer, type TcpLimits } from '../../net/tcp-server.js';
import { formatHostPort } from '../../net/address.js';
import { resolveListenAddresses } from '../../net/listen.js';
import { answerQuery, truncateForUdp, type Authority } from './authority.js';
import { ResponseRateLimiter } from './ratelimit.js';

/**
 * The zone server's TCP limits that its configuration sets (connections,
 * per source, idle: the `tcp-*` keys of `type: serve`); the rest (5 s to
 * finish a message, 16 requests in flight, 64 KiB of unsent replies, 10 s
 * for the peer to take them) is the shared layer's default.
 */
export type ZoneTcpLimits = Pick<TcpLimits, 'maxConnections' | 'maxPerSource' | 'idleTimeoutMs'>;

/**
 * Answers and rate-limit decisions of every zone-server listener in this
 * process, since it started (metrics): answers by rcode, UDP queries
 * dropped or answered truncated ("slip") by the response rate limiter.
 */
export const zoneServerStats = {
  answers: new Map<number, number>(),
  rateLimited: { drop: 0, slip: 0 },
};

function counted(reply: Buffer | null): Buffer | null {
  if (reply !== null && reply.length >= 4) {
    const rcode = (reply[3] ?? 0) & 0xf;
    zoneServerStats.answers.set(rcode, (zoneServerStats.answers.get(rcode) ?? 0) + 1);
  }
  return reply;
}

/** The reply bytes for a query, or null when nothing should be sent. */
export function respond(raw: Buffer, authorities: Iterable<Authority>, transport: 'udp' | 'tcp'): Buffer | null {
  let req;
  try {
    req = decodeMessage(raw);
  } catch (err) {
    if (!(err instanceof MalformedMessageError) || err.id === undefined || raw.length < 12) return null;
    const m = emptyMessage(err.id, ((raw[2]) >> 3) & 0xf);
    m.qr = true;
    m.rcode = Rcode.FORMERR;
    return encodeMessage(m);
  }
  if (req.qr) return null; // never answer a response (loops, reflection)
  const { message, udpLimit } = answerQuery(req, authorities);
  const bytes = encodeMessage(message);
  if (transport === 'udp' && bytes.length > udpLimit) return encodeMessage(truncateForUdp(message));
  return bytes;
}

/**
 * What goes out instead of an answer too large for a TCP frame: the same
 * answer truncated to its header and question, TC set (RFC 1035 section
 * 4.1.1); null if the answer cannot be read back.
 */
export function truncatedReply(reply: Buffer): Buffer | null {
  try {
    return encodeMessage(truncateForUdp(decodeMessage(reply)));
  } catch {
    return null;
  }
}

class SharedListener {
  readonly authorities = new Set<Authority>();
  /** UDP sockets by the address they are bound to. */
  private readonly udp = new Map<string, dgram.Socket>();
  private readonly tcp: TcpDnsServer;
  private readonly limiter: ResponseRateLimiter;

  constructor(
    readonly host: string,
    readonly port: number,
    rateLimit: number,
    tcpLimits: ZoneTcpLimits,
    private readonly logger: Logger,
  ) {
    this.limiter = new ResponseRateLimiter({ perSecond: rateLimit });
    this.tcp = new TcpDnsServer({
      handler: (raw) => counted(respond(raw, this.authorities, 'tcp')),
      log: logger,
      limits: tcpLimits,
      onOversize: (_request, reply) => truncatedReply(reply),
    });
  }

  /**
   * Binds UDP and TCP on every address the host stands for. An address
   * that cannot be bound (`::1` without IPv6) is skipped with a warning, as
   * the original did; an address is served on both transports or neither.
   * Throws only when no address can be bound.
   */
  async open(resolved?: readonly string[]): Promise<void> {
    const addresses = resolved ?? (await resolveListenAddresses(this.host));
    let firstError: Error | undefined;
    for (const address of addresses) {
      const v6 = net.isIPv6(address);
      const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
      try {
        await new Promise<void>((resolve, reject) => {
          sock.once('error', reject);
          sock.bind(this.port, address, () => {
            sock.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        sock.close();
        if (err instanceof Error) firstError ??= err;
        this.logger.warn({ err, address: formatHostPort(address, this.port) }, 'cannot listen on this address (UDP); carrying on without it');
        continue;
      }
      sock.on('error', (err) => this.logger.warn({ err }, 'zone server UDP error'));
      sock.on('message', (msg, rinfo) => this.onDatagram(sock, msg, rinfo));
      this.udp.set(address, sock);
    }
    if (this.udp.size === 0) throw firstError ?? new RangeError(`${this.host} stands for no address`);
    let bound: string[];
    try {
      bound = await this.tcp.listen([...this.udp.keys()], this.port);
    } catch (err) {
      await this.close();
      throw err;
    }
    // An address TCP could not bind (already warned about) is not served over UDP alone.
    for (const [address, sock] of this.udp) {
      if (bound.includes(address)) continue;
      this.udp.delete(address);
      await new Promise<void>((resolve) => sock.close(() => resolve()));
    }
    this.logger.info(
      { addresses: bound.map((a) => formatHostPort(a, this.port)) },
      'zone server answering DNS queries (UDP and TCP)',
    );
  }

  private onDatagram(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const decision = this.limiter.check(rinfo.address, performance.now());
    if (decision === 'drop') {
      zoneServerStats.rateLimited.drop++;
      return;
    }
    if (decision === 'slip') zoneServerStats.rateLimited.slip++;
    let reply = counted(respond(msg, this.authorities, 'udp'));
    if (reply === null) return;
    // A truncated empty reply: too small to amplify, and a real client retries over TCP.
    if (decision === 'slip') reply = truncatedReply(reply);
    if (reply === null) return;
    sock.send(reply, rinfo.port, rinfo.address);
  }

  async close(): Promise<void> {
    await this.tcp.close();
    await Promise.all([...this.udp.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.udp.clear();
  }
}

const listeners = new Map<string, { listener: SharedListener; opening: Promise<void> }>();

/** A zone's hold on a shared listener; release() gives it back. */
export interface ListenerLease {
  release(): Promise<void>;
}

/**
 * Serves `authorities` on host:port, opening the sockets if nobody else has
 * (the zone that opens them sets the rate and TCP limits).
 */
export async function attachAuthorities(
  host: string,
  port: number,
  authorities: readonly Authority[],
  opts: {
    rateLimit: number;
    tcp: ZoneTcpLimits;
    logger: Logger;
    /** The addresses `host` stands for, when already known (tests); default: resolved. */
    addresses?: readonly string[];
  },
): Promise<ListenerLease> {
  const key = `${host}|${port}`;
  let entry = listeners.get(key);
  if (entry === undefined) {
    const listener = new SharedListener(host, port, opts.rateLimit, opts.tcp, opts.logger);
    entry = { listener, opening: listener.open(opts.addresses) };
    listeners.set(key, entry);
    entry.opening.catch(() => listeners.delete(key));
  }
  await entry.opening;
  const { listener } = entry;
  for (const a of authorities) listener.authorities.add(a);
  let released = false;
  return {
    async release(): Promise<void> {
      if (released) return;
      released = true;
      for (const a of authorities) listener.authorities.delete(a);
      if (listener.authorities.size === 0 && listeners.get(key)?.listener === listener) {
        listeners.delete(key);
        await listener.close();
      }
    },
  };
}
