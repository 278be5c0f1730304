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
import { systemClock, unixSeconds } from '../../clock.js';
import { Opcode, RRType, Rcode } from '../../dns/constants.js';
import { MalformedMessageError } from '../../dns/errors.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../dns/message.js';
import { TcpDnsServer, type TcpLimits } from '../../net/tcp-server.js';
import { formatHostPort } from '../../net/address.js';
import { resolveListenAddresses } from '../../net/listen.js';
import { canonicalName } from '../../dns/names.js';
import { answerQuery, findAuthority, truncateForUdp, type Authority } from './authority.js';
import { answerTransfer, checkRequestTsig, type Peer } from './transfer.js';
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

function counted<T extends Buffer | Iterable<Buffer> | null>(reply: T): T {
  // A transfer (several messages) counts as one NOERROR answer.
  const rcode = reply === null ? undefined : Buffer.isBuffer(reply) ? (reply.length >= 4 ? (reply[3] ?? 0) & 0xf : undefined) : Rcode.NOERROR;
  if (rcode !== undefined) zoneServerStats.answers.set(rcode, (zoneServerStats.answers.get(rcode) ?? 0) + 1);
  return reply;
}

/**
 * The reply to one request: one message, the messages of a zone transfer
 * (TCP only), or null when nothing should be sent. `peer` (who asked, and
 * when) is needed for transfers; without it they are refused. A request
 * signed with TSIG is checked against the zone's transfer keys and its
 * answer signed (RFC 8945 §5.3); BIND secondaries sign their SOA queries.
 */
export function serve(raw: Buffer, authorities: Iterable<Authority>, transport: 'udp' | 'tcp', peer?: Peer): Buffer | Iterable<Buffer> | null {
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
  const q = req.questions.length === 1 ? req.questions[0] : undefined;
  const authority = q === undefined ? undefined : findAuthority(authorities, canonicalName(q.name));
  const tsig = checkRequestTsig(req, authority?.transfer?.keys ?? [], peer?.now ?? unixSeconds(systemClock));
  if ('refusal' in tsig) return tsig.refusal;
  if (authority !== undefined && req.opcode === Opcode.QUERY && (q?.type === RRType.AXFR || q?.type === RRType.IXFR)) {
    return answerTransfer(req, authority, transport, peer, tsig);
  }
  const { message, udpLimit } = answerQuery(req, authorities);
  let bytes = encodeMessage(message);
  if (transport === 'udp' && bytes.length + tsig.reserve > udpLimit) bytes = encodeMessage(truncateForUdp(message));
  return tsig.signer === undefined ? bytes : tsig.signer.sign(bytes);
}

/** serve() for one-message answers (tests, fuzzing): a transfer's messages are not wanted there and read as null. */
export function respond(raw: Buffer, authorities: Iterable<Authority>, transport: 'udp' | 'tcp'): Buffer | null {
  const reply = serve(raw, authorities, transport);
  return reply === null || Buffer.isBuffer(reply) ? reply : null;
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
      handler: (raw, ctx) =>
        counted(serve(raw, this.authorities, 'tcp', { remote: ctx.remote, now: unixSeconds(systemClock), onTransfer: (note) => logger.info(note, 'zone transfer') })),
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
    const answer = counted(serve(msg, this.authorities, 'udp', { remote: rinfo.address, now: unixSeconds(systemClock) }));
    // Over UDP every answer is one message (transfers are answered with one there).
    let reply = answer === null || Buffer.isBuffer(answer) ? answer : null;
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
