/**
 * Moving DNS messages over the network: bytes in, bytes out.
 *
 * This file does not decode messages. It reads only the two things a
 * transport has to know about (RFC 1035 §4.1.1): the ID in the first two
 * bytes, to pair a reply with its query, and the TC bit (byte 2, 0x02), to
 * know when a UDP reply was cut short and must be fetched again over TCP.
 */

import * as dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';

import { TransportError } from '../dns/errors.js';
import { formatHostPort } from './address.js';
import { errorMessage } from '../errors.js';

/** RFC 1035 §4.2.2: the TCP length prefix is 16 bits, so no frame can be larger. */
export const MAX_TCP_MESSAGE = 0xffff;

/** A DNS header is 12 bytes (RFC 1035 §4.1.1); anything shorter cannot be a reply. */
const HEADER_LENGTH = 12;

/** TC flag: byte 2 of the header, bit 0x02 (RFC 1035 §4.1.1). */
const TC_BYTE = 2;
const TC_MASK = 0x02;

function messageId(message: Buffer): number {
  return message.readUInt16BE(0);
}

function isTruncated(message: Buffer): boolean {
  return (message[TC_BYTE] & TC_MASK) !== 0;
}

/**
 * Prefixes a message with its 2-byte length (RFC 1035 §4.2.2).
 * Throws TransportError('too-large') for messages the prefix cannot express.
 */
export function frame(message: Buffer): Buffer {
  if (message.length > MAX_TCP_MESSAGE) {
    throw new TransportError('too-large', `message of ${message.length} bytes exceeds the ${MAX_TCP_MESSAGE}-byte TCP limit`);
  }
  const out = Buffer.allocUnsafe(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}

export interface FrameDecoderOptions {
  /** Largest frame accepted; a larger announced length throws TransportError('too-large'). Default 65535. */
  maxFrame?: number;
}

/**
 * Splits a TCP byte stream into length-prefixed frames (RFC 1035 §4.2.2).
 *
 * Once a prefix is read, a buffer of the announced size is allocated and
 * later bytes are copied straight into it, so every byte is copied once and
 * a message arriving one byte at a time costs linear, not quadratic, work.
 * Zero-length frames are returned as empty buffers: what an empty message
 * means is the caller's decision.
 */
export class FrameDecoder {
  readonly maxFrame: number;
  readonly #prefix = Buffer.alloc(2);
  #prefixFilled = 0;
  /** The frame being assembled, once its prefix has been read. */
  #body: Buffer | undefined;
  #bodyFilled = 0;
  #failed: TransportError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    const maxFrame = options.maxFrame ?? MAX_TCP_MESSAGE;
    if (!Number.isInteger(maxFrame) || maxFrame < 0 || maxFrame > MAX_TCP_MESSAGE) {
      throw new RangeError(`maxFrame must be an integer from 0 to ${MAX_TCP_MESSAGE}, got ${String(maxFrame)}`);
    }
    this.maxFrame = maxFrame;
  }

  /** Bytes received but not yet returned in a frame (length prefix included). */
  get pending(): number {
    return this.#body === undefined ? this.#prefixFilled : 2 + this.#bodyFilled;
  }

  /**
   * Adds received bytes; returns every frame they complete, in order.
   * After a too-large length the stream cannot be resynchronised, so the
   * decoder keeps throwing.
   */
  push(chunk: Buffer): Buffer[] {
    if (this.#failed) throw this.#failed;
    const frames: Buffer[] = [];
    let offset = 0;
    for (;;) {
      if (this.#body === undefined) {
        if (offset >= chunk.length) break;
        const count = Math.min(2 - this.#prefixFilled, chunk.length - offset);
        chunk.copy(this.#prefix, this.#prefixFilled, offset, offset + count);
        this.#prefixFilled += count;
        offset += count;
        if (this.#prefixFilled < 2) break;
        const length = this.#prefix.readUInt16BE(0);
        if (length > this.maxFrame) {
          this.#failed = new TransportError('too-large', `peer announced a ${length}-byte frame; the limit is ${this.maxFrame}`);
          throw this.#failed;
        }
        this.#body = Buffer.allocUnsafe(length);
        this.#bodyFilled = 0;
      }
      const count = Math.min(this.#body.length - this.#bodyFilled, chunk.length - offset);
      chunk.copy(this.#body, this.#bodyFilled, offset, offset + count);
      this.#bodyFilled += count;
      offset += count;
      if (this.#bodyFilled < this.#body.length) break;
      frames.push(this.#body);
      this.#body = undefined;
      this.#prefixFilled = 0;
    }
    return frames;
  }
}

export interface ExchangeOptions {
  host: string;
  port: number;
  /** A complete DNS message; its first two bytes are the ID the reply must carry. */
  message: Buffer;
  /** Budget for the whole exchange (connect, lookup, send, reply). */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Source address to bind before sending. */
  localAddress?: string;
}

export interface UdpExchangeOptions extends ExchangeOptions {
  /** Largest message sent over UDP; a larger one throws TransportError('too-large'). Default 65535. */
  maxSize?: number;
}

export interface ExchangeResult {
  reply: Buffer;
  /** The transport that carried the reply: 'tcp' when a truncated UDP reply was retried. */
  transport: 'udp' | 'tcp';
}

function checkOptions(opts: ExchangeOptions): void {
  if (opts.message.length < 2) {
    throw new RangeError(`message must hold at least the 2-byte ID, got ${opts.message.length} bytes`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    throw new RangeError(`port must be an integer from 1 to 65535, got ${String(opts.port)}`);
  }
  if (!Number.isFinite(opts.timeoutMs) || opts.timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive number, got ${String(opts.timeoutMs)}`);
  }
}

function abortedError(signal: AbortSignal): TransportError {
  return new TransportError('aborted', 'exchange aborted', { cause: signal.reason });
}

/**
 * Runs `body` with a settle-once resolve/reject pair, a timeout and the
 * abort signal wired in; `cleanup` runs exactly once however it ends.
 */
function guarded<T>(
  opts: { timeoutMs: number; signal?: AbortSignal; what: string },
  body: (settle: { resolve(value: T): void; reject(err: Error): void }) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const { signal } = opts;
    if (signal?.aborted) {
      reject(abortedError(signal));
      return;
    }
    let done = false;
    let cleanup: (() => void) | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      cleanup?.();
    };
    const settle = {
      resolve(value: T): void {
        if (done) return;
        done = true;
        finish();
        resolve(value);
      },
      reject(err: Error): void {
        if (done) return;
        done = true;
        finish();
        reject(err);
      },
    };
    const onAbort = (): void => settle.reject(abortedError(signal!));
    const timer = setTimeout(
      () => settle.reject(new TransportError('timeout', `${opts.what}: no reply within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      cleanup = body(settle);
    } catch (err) {
      settle.reject(err instanceof Error ? err : new Error(String(err)));
    }
    // body may have settled synchronously before cleanup was assigned.
    if (done) cleanup?.();
  });
}

/**
 * Sends one message over a fresh TCP connection and returns the first reply
 * frame carrying the same ID (RFC 1035 §4.2.2). Frames with another ID are
 * skipped. The socket is always destroyed before the promise settles.
 */
export async function tcpExchange(opts: ExchangeOptions): Promise<Buffer> {
  checkOptions(opts);
  const framed = frame(opts.message);
  const id = messageId(opts.message);
  const where = formatHostPort(opts.host, opts.port);
  return guarded<Buffer>({ timeoutMs: opts.timeoutMs, signal: opts.signal, what: `TCP ${where}` }, (settle) => {
    const decoder = new FrameDecoder();
    let connected = false;
    const socket = net.connect({
      host: opts.host,
      port: opts.port,
      ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
    });
    socket.on('connect', () => {
      connected = true;
      socket.write(framed);
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        settle.reject(err as TransportError);
        return;
      }
      for (const reply of frames) {
        if (reply.length >= 2 && messageId(reply) === id) {
          settle.resolve(reply);
          return;
        }
      }
    });
    // A peer that half-closes will send nothing more; waiting for the
    // timeout would only delay the inevitable.
    socket.on('end', () => {
      settle.reject(new TransportError('closed', `TCP ${where}: connection closed before a reply (${decoder.pending} bytes pending)`));
    });
    socket.on('close', () => {
      settle.reject(new TransportError('closed', `TCP ${where}: connection closed before a reply`));
    });
    socket.on('error', (err) => {
      settle.reject(
        connected
          ? new TransportError('socket', `TCP ${where}: ${err.message}`, { cause: err })
          : new TransportError('connect', `TCP ${where}: cannot connect: ${err.message}`, { cause: err }),
      );
    });
    return () => {
      socket.destroy();
    };
  });
}

interface Resolved {
  address: string;
  family: 4 | 6;
}

async function resolveHost(host: string): Promise<Resolved> {
  const family = net.isIP(host);
  if (family === 4 || family === 6) return { address: host, family };
  try {
    const found = await lookup(host);
    return { address: found.address, family: found.family === 6 ? 6 : 4 };
  } catch (err) {
    throw new TransportError('connect', `cannot resolve ${host}: ${errorMessage(err)}`, { cause: err });
  }
}

function udpOnce(
  opts: UdpExchangeOptions,
  target: Resolved,
  timeoutMs: number,
): Promise<Buffer> {
  const id = messageId(opts.message);
  const where = formatHostPort(target.address, opts.port);
  return guarded<Buffer>({ timeoutMs, signal: opts.signal, what: `UDP ${where}` }, (settle) => {
    const socket = dgram.createSocket(target.family === 6 ? 'udp6' : 'udp4');
    let closed = false;
    socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      // Only the server we asked may answer, and only to this query: anything
      // else is stray or spoofed (RFC 5452 §9.1) and is dropped.
      if (rinfo.address !== target.address || rinfo.port !== opts.port) return;
      if (msg.length < HEADER_LENGTH || messageId(msg) !== id) return;
      settle.resolve(msg);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // On a connected UDP socket an ICMP port-unreachable surfaces as ECONNREFUSED.
      const reason = err.code === 'ECONNREFUSED' ? 'connect' : 'socket';
      settle.reject(new TransportError(reason, `UDP ${where}: ${err.message}`, { cause: err }));
    });
    socket.on('close', () => {
      closed = true;
    });
    const send = (): void => {
      // Connecting lets the kernel filter foreign sources and report ICMP errors.
      socket.connect(opts.port, target.address, () => {
        socket.send(opts.message, (err) => {
          if (err) settle.reject(new TransportError('socket', `UDP ${where}: send failed: ${err.message}`, { cause: err }));
        });
      });
    };
    if (opts.localAddress === undefined) {
      send();
    } else {
      socket.bind({ address: opts.localAddress, port: 0 }, send);
    }
    return () => {
      if (!closed) socket.close();
    };
  });
}

/**
 * Sends one message over UDP and returns the matching reply. Replies with
 * the TC bit set are discarded and the same message is sent again over TCP
 * (RFC 1035 §4.2.1, RFC 7766 §5), within what is left of `timeoutMs`.
 */
export async function udpExchange(opts: UdpExchangeOptions): Promise<ExchangeResult> {
  checkOptions(opts);
  const maxSize = opts.maxSize ?? MAX_TCP_MESSAGE;
  if (opts.message.length > maxSize) {
    throw new TransportError('too-large', `message of ${opts.message.length} bytes exceeds the UDP limit of ${maxSize}`);
  }
  if (opts.signal?.aborted) throw abortedError(opts.signal);
  // A monotonic clock measures the budget; it never feeds protocol decisions.
  const started = performance.now();
  const remaining = (): number => opts.timeoutMs - (performance.now() - started);

  const target = await raceBudget(resolveHost(opts.host), opts, remaining());
  const reply = await udpOnce(opts, target, Math.max(1, remaining()));
  if (!isTruncated(reply)) return { reply, transport: 'udp' };

  const left = remaining();
  if (left <= 0) throw new TransportError('timeout', `UDP ${formatHostPort(target.address, opts.port)}: truncated reply and no time left to retry over TCP`);
  const tcpOpts: ExchangeOptions = { ...opts, host: target.address, timeoutMs: left };
  return { reply: await tcpExchange(tcpOpts), transport: 'tcp' };
}

/** Bounds a promise (the name lookup) by the exchange's timeout and abort signal. */
function raceBudget<T>(work: Promise<T>, opts: ExchangeOptions, timeoutMs: number): Promise<T> {
  return guarded<T>({ timeoutMs: Math.max(1, timeoutMs), signal: opts.signal, what: `lookup ${opts.host}` }, (settle) => {
    work.then((v) => settle.resolve(v), (e: Error) => settle.reject(e));
    return () => undefined;
  });
}

/** One exchange over TCP (`tcp: true`) or UDP with TCP fallback on truncation. */
export async function exchange(opts: UdpExchangeOptions & { tcp: boolean }): Promise<ExchangeResult> {
  if (opts.tcp) {
    return { reply: await tcpExchange(opts), transport: 'tcp' };
  }
  return udpExchange(opts);
}

interface SessionWaiter {
  readonly resolve: (reply: Buffer) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * One TCP connection to a DNS server kept open and reused for many
 * exchanges (RFC 7766 §6.2.1: connection reuse, with pipelining — several
 * messages in flight, replies paired with their queries by ID, in
 * whatever order they come). Saves a connection set-up and teardown per
 * message on both sides.
 *
 * The connection opens on the first exchange and closes after `idleMs`
 * with nothing in flight. When it fails, everything in flight is rejected
 * (TransportError) and the next exchange opens a new one. A message sent
 * on a connection that had already carried earlier replies is sent once
 * more on a fresh connection if that one closes before any reply: the
 * server may have timed the idle connection out just as it was reused
 * (RFC 7766 §6.2.3). A message whose ID is already in flight goes over a
 * one-off connection (tcpExchange) instead.
 */
export class TcpSession {
  private socket: net.Socket | undefined;
  private readonly inFlight = new Map<number, SessionWaiter>();
  /** Replies received on the current connection. */
  private served = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly opts: { host: string; port: number; idleMs?: number; maxInFlight?: number }) {}

  async exchange(message: Buffer, timeoutMs: number): Promise<Buffer> {
    checkOptions({ host: this.opts.host, port: this.opts.port, message, timeoutMs });
    const id = messageId(message);
    if (this.closed || this.inFlight.has(id) || this.inFlight.size >= (this.opts.maxInFlight ?? 64)) {
      return tcpExchange({ host: this.opts.host, port: this.opts.port, message, timeoutMs });
    }
    const reused = this.socket !== undefined && this.served > 0;
    try {
      return await this.send(message, id, timeoutMs);
    } catch (err) {
      // Sent again only when the server dropped a reused connection; never after close().
      if (this.closed || !reused || !(err instanceof TransportError) || (err.reason !== 'closed' && err.reason !== 'socket')) throw err;
      return this.send(message, id, timeoutMs);
    }
  }

  /** Closes the connection; exchanges in flight are rejected, later ones use one-off connections. */
  close(): void {
    this.closed = true;
    this.drop(new TransportError('closed', `TCP ${formatHostPort(this.opts.host, this.opts.port)}: session closed`));
  }

  private send(message: Buffer, id: number, timeoutMs: number): Promise<Buffer> {
    if (this.inFlight.has(id)) return tcpExchange({ host: this.opts.host, port: this.opts.port, message, timeoutMs });
    const framed = frame(message);
    const socket = this.socket ?? this.connect();
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    // While something is in flight the connection keeps the process alive; an idle one does not.
    socket.ref();
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        // The server is not answering on this connection: give it up, so later messages get a fresh one.
        this.drop(new TransportError('timeout', `TCP ${formatHostPort(this.opts.host, this.opts.port)}: no reply within ${timeoutMs} ms`), socket);
      }, timeoutMs);
      this.inFlight.set(id, { resolve, reject, timer });
      socket.write(framed);
    });
  }

  private connect(): net.Socket {
    const where = formatHostPort(this.opts.host, this.opts.port);
    const socket = net.connect({ host: this.opts.host, port: this.opts.port });
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    let connected = false;
    this.socket = socket;
    this.served = 0;
    socket.on('connect', () => {
      connected = true;
    });
    socket.on('data', (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.drop(err instanceof TransportError ? err : new TransportError('socket', `TCP ${where}: ${errorMessage(err)}`), socket);
        return;
      }
      for (const reply of frames) {
        if (reply.length < 2) continue;
        const waiter = this.inFlight.get(messageId(reply));
        // A reply nobody waits for (one that timed out) is dropped.
        if (waiter === undefined) continue;
        this.inFlight.delete(messageId(reply));
        clearTimeout(waiter.timer);
        this.served++;
        waiter.resolve(reply);
      }
      this.armIdle(socket);
    });
    socket.on('end', () => this.drop(new TransportError('closed', `TCP ${where}: connection closed by the server`), socket));
    socket.on('close', () => this.drop(new TransportError('closed', `TCP ${where}: connection closed`), socket));
    socket.on('error', (err) => {
      this.drop(
        connected
          ? new TransportError('socket', `TCP ${where}: ${err.message}`, { cause: err })
          : new TransportError('connect', `TCP ${where}: cannot connect: ${err.message}`, { cause: err }),
        socket,
      );
    });
    return socket;
  }

  private armIdle(socket: net.Socket): void {
    if (this.inFlight.size > 0 || socket !== this.socket) return;
    socket.unref();
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.inFlight.size === 0 && this.socket === socket) this.drop(undefined, socket);
    }, this.opts.idleMs ?? 10_000);
    this.idleTimer.unref();
  }

  /** Ends the connection (`only`: if it is still the current one), rejecting what is in flight with `err`. */
  private drop(err: TransportError | undefined, only?: net.Socket): void {
    const socket = this.socket;
    if (socket === undefined || (only !== undefined && only !== socket)) return;
    this.socket = undefined;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    socket.destroy();
    const waiting = [...this.inFlight.values()];
    this.inFlight.clear();
    for (const w of waiting) {
      clearTimeout(w.timer);
      w.reject(err ?? new TransportError('closed', 'connection closed'));
    }
  }
}
