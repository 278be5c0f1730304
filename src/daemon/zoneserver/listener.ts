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
import { decodeMessage, emptyMessage, encodeMessage, type Message } from '../../dns/message.js';
import { FrameDecoder, frame } from '../../net/transport.js';
import { formatHostPort } from '../../net/address.js';
import { resolveListenAddresses } from '../../net/listen.js';
import { answerQuery, truncateForUdp, type Authority } from './authority.js';
import { ResponseRateLimiter } from './ratelimit.js';

const TCP_IDLE_MS = 10_000;
const MAX_TCP_CONNECTIONS = 256;

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

class SharedListener {
  readonly authorities = new Set<Authority>();
  private readonly udp: dgram.Socket[] = [];
  private readonly tcp: net.Server[] = [];
  private readonly conns = new Set<net.Socket>();
  private readonly limiter: ResponseRateLimiter;

  constructor(
    readonly host: string,
    readonly port: number,
    rateLimit: number,
    private readonly logger: Logger,
  ) {
    this.limiter = new ResponseRateLimiter({ perSecond: rateLimit });
  }

  async open(): Promise<void> {
    const addresses = await resolveListenAddresses(this.host);
    try {
      for (const address of addresses) {
        const v6 = net.isIPv6(address);
        const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 });
        await new Promise<void>((resolve, reject) => {
          sock.once('error', reject);
          sock.bind(this.port, address, () => {
            sock.off('error', reject);
            resolve();
          });
        });
        sock.on('error', (err) => this.logger.warn({ err }, 'zone server UDP error'));
        sock.on('message', (msg, rinfo) => this.onDatagram(sock, msg, rinfo));
        this.udp.push(sock);
        const server = net.createServer((s) => this.onConnection(s));
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: address, port: this.port, ipv6Only: v6 }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        server.on('error', (err) => this.logger.warn({ err }, 'zone server TCP error'));
        this.tcp.push(server);
      }
    } catch (err) {
      await this.close();
      throw err;
    }
    this.logger.info(
      { addresses: addresses.map((a) => formatHostPort(a, this.port)) },
      'zone server answering DNS queries (UDP and TCP)',
    );
  }

  private onDatagram(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const decision = this.limiter.check(rinfo.address, performance.now());
    if (decision === 'drop') return;
    let reply = respond(msg, this.authorities, 'udp');
    if (reply === null) return;
    if (decision === 'slip') {
      // A truncated empty reply: too small to amplify, and a real client retries over TCP.
      try {
        const m: Message = decodeMessage(reply);
        reply = encodeMessage(truncateForUdp(m));
      } catch {
        return;
      }
    }
    sock.send(reply, rinfo.port, rinfo.address);
  }

  private onConnection(socket: net.Socket): void {
    if (this.conns.size >= MAX_TCP_CONNECTIONS) {
      socket.destroy();
      return;
    }
    this.conns.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('close', () => this.conns.delete(socket));
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const f of frames) {
        const reply = respond(f, this.authorities, 'tcp');
        if (reply === null) {
          socket.destroy();
          return;
        }
        socket.write(frame(reply));
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    await Promise.all(this.tcp.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    await Promise.all(this.udp.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    this.tcp.length = 0;
    this.udp.length = 0;
  }
}

const listeners = new Map<string, { listener: SharedListener; opening: Promise<void> }>();

/** A zone's hold on a shared listener; release() gives it back. */
export interface ListenerLease {
  release(): Promise<void>;
}

/** Serves `authorities` on host:port, opening the sockets if nobody else has. */
export async function attachAuthorities(
  host: string,
  port: number,
  authorities: readonly Authority[],
  opts: { rateLimit: number; logger: Logger },
): Promise<ListenerLease> {
  const key = `${host}|${port}`;
  let entry = listeners.get(key);
  if (entry === undefined) {
    const listener = new SharedListener(host, port, opts.rateLimit, opts.logger);
    entry = { listener, opening: listener.open() };
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
