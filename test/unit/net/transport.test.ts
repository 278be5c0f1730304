import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import * as net from 'node:net';
import { after, describe, it } from 'node:test';
import { letTimePass } from '../../helpers/eventually.js';

import { TransportError } from '../../../src/dns/errors.js';
import {
  FrameDecoder,
  MAX_TCP_MESSAGE,
  exchange,
  frame,
  tcpExchange,
  udpExchange,
} from '../../../src/net/transport.js';

/** A header-sized message with the given ID and flags byte 2, then `body`. */
function msg(id: number, body = 'q', flags2 = 0): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header[2] = flags2;
  return Buffer.concat([header, Buffer.from(body)]);
}

const TC = 0x02;

function assertTransport(reason: string): (err: unknown) => boolean {
  return (err: unknown): boolean => {
    assert.ok(err instanceof TransportError, `expected TransportError, got ${String(err)}`);
    assert.equal(err.code, 'ERR_DNS_TRANSPORT');
    assert.equal(err.reason, reason);
    return true;
  };
}


describe('frame', () => {
  it('prefixes the 16-bit length and round-trips through FrameDecoder', () => {
    const m = msg(0x1234, 'hello');
    const f = frame(m);
    assert.equal(f.length, m.length + 2);
    assert.equal(f.readUInt16BE(0), m.length);
    assert.deepEqual(new FrameDecoder().push(f), [m]);
  });

  it('frames the largest and the empty message', () => {
    const big = Buffer.alloc(MAX_TCP_MESSAGE, 7);
    assert.equal(frame(big).readUInt16BE(0), 0xffff);
    assert.deepEqual(new FrameDecoder().push(frame(big)), [big]);
    assert.deepEqual(frame(Buffer.alloc(0)), Buffer.from([0, 0]));
  });

  it('rejects a message the prefix cannot express', () => {
    assert.throws(() => frame(Buffer.alloc(MAX_TCP_MESSAGE + 1)), assertTransport('too-large'));
  });
});

describe('FrameDecoder', () => {
  const a = msg(1, 'first');
  const b = msg(2, 'second message');
  const c = msg(3, '');

  it('returns several frames coalesced in one chunk, in order', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(Buffer.concat([frame(a), frame(b), frame(c)])), [a, b, c]);
    assert.equal(d.pending, 0);
  });

  it('reassembles a frame split across chunks, prefix split too', () => {
    const d = new FrameDecoder();
    const bytes = Buffer.concat([frame(a), frame(b)]);
    assert.deepEqual(d.push(bytes.subarray(0, 1)), []);
    assert.equal(d.pending, 1);
    assert.deepEqual(d.push(bytes.subarray(1, 5)), []);
    assert.equal(d.pending, 5);
    assert.deepEqual(d.push(bytes.subarray(5, frame(a).length + 3)), [a]);
    assert.equal(d.pending, 3);
    assert.deepEqual(d.push(bytes.subarray(frame(a).length + 3)), [b]);
    assert.equal(d.pending, 0);
  });

  it('handles a stream delivered byte by byte', () => {
    const d = new FrameDecoder();
    const bytes = Buffer.concat([frame(a), frame(c), frame(b)]);
    const out: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) out.push(...d.push(bytes.subarray(i, i + 1)));
    assert.deepEqual(out, [a, c, b]);
    assert.equal(d.pending, 0);
  });

  it('accepts empty chunks without effect', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(Buffer.alloc(0)), []);
    assert.equal(d.pending, 0);
  });

  it('delivers zero-length frames as empty buffers', () => {
    const d = new FrameDecoder();
    const frames = d.push(Buffer.from([0, 0, 0, 0]));
    assert.equal(frames.length, 2);
    assert.equal(frames[0].length, 0);
    assert.equal(frames[1].length, 0);
  });

  it('returns copies, not views of the caller’s chunk', () => {
    const d = new FrameDecoder();
    const chunk = frame(a);
    const [out] = d.push(chunk);
    chunk.fill(0);
    assert.deepEqual(out, a);
  });

  it('throws too-large for a length above maxFrame, and keeps throwing', () => {
    const d = new FrameDecoder({ maxFrame: 10 });
    assert.deepEqual(d.push(frame(Buffer.alloc(10))), [Buffer.alloc(10)]);
    assert.throws(() => d.push(frame(Buffer.alloc(11))), assertTransport('too-large'));
    assert.throws(() => d.push(Buffer.from([0, 1, 0])), assertTransport('too-large'));
  });

  it('checks the length as soon as the prefix is complete', () => {
    const d = new FrameDecoder({ maxFrame: 512 });
    assert.throws(() => d.push(Buffer.from([0x02, 0x01])), assertTransport('too-large'));
  });

  it('rejects an impossible maxFrame by name', () => {
    assert.throws(() => new FrameDecoder({ maxFrame: 70000 }), /maxFrame/);
    assert.throws(() => new FrameDecoder({ maxFrame: -1 }), /maxFrame/);
    assert.equal(new FrameDecoder().maxFrame, 65535);
  });

  it('stays linear on a large message fed one byte at a time', () => {
    const big = Buffer.alloc(60000, 0xab);
    const bytes = frame(big);
    const d = new FrameDecoder();
    let out: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) out = out.concat(d.push(bytes.subarray(i, i + 1)));
    assert.deepEqual(out, [big]);
  });
});

type TcpHandler = (socket: net.Socket, query: Buffer) => void;

/** A TCP server on 127.0.0.1:0 that decodes one framed query per connection. */
async function tcpServer(handler: TcpHandler, port = 0): Promise<{ server: net.Server; port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const q of decoder.push(chunk)) handler(socket, q);
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { server, port: (server.address() as net.AddressInfo).port, sockets };
}

/** A port that nothing listens on (bound, read, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function replyTo(query: Buffer, body: string, id = query.readUInt16BE(0), flags2 = 0x80): Buffer {
  return msg(id, body, flags2);
}

describe('tcpExchange', () => {
  it('returns the reply with the matching ID and closes the connection', async () => {
    let serverSocketClosed: Promise<unknown> = Promise.resolve();
    const { port } = await tcpServer((socket, q) => {
      serverSocketClosed = once(socket, 'close');
      socket.write(frame(replyTo(q, 'answer')));
    });
    const query = msg(0xbeef, 'question');
    const reply = await tcpExchange({ host: '127.0.0.1', port, message: query, timeoutMs: 2000 });
    assert.deepEqual(reply, replyTo(query, 'answer'));
    await serverSocketClosed;
  });

  it('receives the query exactly as framed', async () => {
    let seen: Buffer | undefined;
    const { port } = await tcpServer((socket, q) => {
      seen = q;
      socket.write(frame(replyTo(q, 'x')));
    });
    const query = msg(7, 'payload');
    await tcpExchange({ host: '127.0.0.1', port, message: query, timeoutMs: 2000 });
    assert.deepEqual(seen, query);
  });

  it('reassembles a reply that arrives in pieces', async () => {
    const { port } = await tcpServer((socket, q) => {
      const bytes = frame(replyTo(q, 'a reply sent in several small writes'));
      void (async (): Promise<void> => {
        for (let i = 0; i < bytes.length; i += 3) {
          socket.write(bytes.subarray(i, i + 3));
          await letTimePass(2); // on purpose: each piece is its own TCP segment
        }
      })();
    });
    const query = msg(42);
    const reply = await tcpExchange({ host: '127.0.0.1', port, message: query, timeoutMs: 5000 });
    assert.deepEqual(reply, replyTo(query, 'a reply sent in several small writes'));
  });

  it('skips a reply with the wrong ID and returns the right one after it', async () => {
    const { port } = await tcpServer((socket, q) => {
      socket.write(frame(replyTo(q, 'wrong', q.readUInt16BE(0) ^ 0xffff)));
      setTimeout(() => socket.write(frame(replyTo(q, 'right'))), 20);
    });
    const query = msg(0x0102);
    const reply = await tcpExchange({ host: '127.0.0.1', port, message: query, timeoutMs: 2000 });
    assert.deepEqual(reply, replyTo(query, 'right'));
  });

  it('times out when the server never answers', async () => {
    const { port } = await tcpServer(() => undefined);
    await assert.rejects(tcpExchange({ host: '127.0.0.1', port, message: msg(1), timeoutMs: 100 }), assertTransport('timeout'));
  });

  it('stops on abort', async () => {
    const { port } = await tcpServer(() => undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    await assert.rejects(
      tcpExchange({ host: '127.0.0.1', port, message: msg(1), timeoutMs: 5000, signal: controller.signal }),
      assertTransport('aborted'),
    );
  });

  it('does not start when the signal is already aborted', async () => {
    const port = await closedPort();
    await assert.rejects(
      tcpExchange({ host: '127.0.0.1', port, message: msg(1), timeoutMs: 5000, signal: AbortSignal.abort() }),
      assertTransport('aborted'),
    );
  });

  it('reports closed when the server hangs up without replying', async () => {
    const { port } = await tcpServer((socket) => socket.end());
    await assert.rejects(tcpExchange({ host: '127.0.0.1', port, message: msg(1), timeoutMs: 5000 }), assertTransport('closed'));
  });

  it('reports closed when the server sends only half a reply then hangs up', async () => {
    const { port } = await tcpServer((socket, q) => socket.end(frame(replyTo(q, 'cut')).subarray(0, 6)));
    await assert.rejects(tcpExchange({ host: '127.0.0.1', port, message: msg(1), timeoutMs: 5000 }), assertTransport('closed'));
  });

  it('reports connect when the port is refused', async () => {
    const port = await closedPort();
    await assert.rejects(tcpExchange({ host: '127.0.0.1', port, message: msg(1), timeoutMs: 5000 }), assertTransport('connect'));
  });

  it('rejects a message too large to frame, before connecting', async () => {
    const port = await closedPort();
    await assert.rejects(
      tcpExchange({ host: '127.0.0.1', port, message: Buffer.alloc(70000), timeoutMs: 1000 }),
      assertTransport('too-large'),
    );
  });

  it('binds the requested local address', async () => {
    let remote: string | undefined;
    const { port } = await tcpServer((socket, q) => {
      remote = socket.remoteAddress;
      socket.write(frame(replyTo(q, 'ok')));
    });
    await tcpExchange({ host: '127.0.0.1', port, message: msg(9), timeoutMs: 2000, localAddress: '127.0.0.1' });
    assert.equal(remote, '127.0.0.1');
  });
});

type UdpHandler = (server: dgram.Socket, query: Buffer, rinfo: dgram.RemoteInfo) => void;

async function udpServer(handler: UdpHandler, port = 0, address = '127.0.0.1'): Promise<{ socket: dgram.Socket; port: number }> {
  const socket = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  socket.on('message', (q, rinfo) => handler(socket, q, rinfo));
  socket.bind(port, address);
  await once(socket, 'listening');
  after(() => socket.close());
  return { socket, port: socket.address().port };
}

/** Binds a TCP listener and a UDP socket on the same 127.0.0.1 port number. */
async function sameSocketPair(tcpHandler: TcpHandler, udpHandler: UdpHandler): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const tcp = await tcpServer(tcpHandler);
    try {
      await udpServer(udpHandler, tcp.port);
      return tcp.port;
    } catch {
      // The UDP port number was taken; try another TCP port.
    }
  }
  throw new Error('could not bind TCP and UDP on the same port');
}

describe('udpExchange', () => {
  it('returns a UDP reply with the matching ID', async () => {
    const { port } = await udpServer((s, q, r) => s.send(replyTo(q, 'udp answer'), r.port, r.address));
    const query = msg(0x4321, 'question');
    const result = await udpExchange({ host: '127.0.0.1', port, message: query, timeoutMs: 2000 });
    assert.equal(result.transport, 'udp');
    assert.deepEqual(result.reply, replyTo(query, 'udp answer'));
  });

  it('retries over TCP on the same port when the reply is truncated', async () => {
    let udpQueries = 0;
    let tcpQuery: Buffer | undefined;
    const port = await sameSocketPair(
      (socket, q) => {
        tcpQuery = q;
        socket.write(frame(replyTo(q, 'the full answer over tcp')));
      },
      (s, q, r) => {
        udpQueries++;
        s.send(replyTo(q, 'partial', q.readUInt16BE(0), 0x80 | TC), r.port, r.address);
      },
    );
    const query = msg(0x7777, 'big question');
    const result = await udpExchange({ host: '127.0.0.1', port, message: query, timeoutMs: 3000 });
    assert.equal(result.transport, 'tcp');
    assert.deepEqual(result.reply, replyTo(query, 'the full answer over tcp'));
    assert.equal(udpQueries, 1);
    assert.deepEqual(tcpQuery, query);
  });

  it('ignores a datagram with the wrong ID', async () => {
    const { port } = await udpServer((s, q, r) => {
      s.send(replyTo(q, 'wrong', q.readUInt16BE(0) + 1), r.port, r.address);
      setTimeout(() => s.send(replyTo(q, 'right'), r.port, r.address), 20);
    });
    const query = msg(100);
    const result = await udpExchange({ host: '127.0.0.1', port, message: query, timeoutMs: 2000 });
    assert.deepEqual(result.reply, replyTo(query, 'right'));
  });

  it('ignores a matching datagram from another source', async () => {
    const stranger = dgram.createSocket('udp4');
    stranger.bind(0, '127.0.0.1');
    await once(stranger, 'listening');
    after(() => stranger.close());
    const { port } = await udpServer((s, q, r) => {
      stranger.send(replyTo(q, 'spoofed'), r.port, r.address);
      setTimeout(() => s.send(replyTo(q, 'genuine'), r.port, r.address), 30);
    });
    const query = msg(555);
    const result = await udpExchange({ host: '127.0.0.1', port, message: query, timeoutMs: 2000 });
    assert.deepEqual(result.reply, replyTo(query, 'genuine'));
  });

  it('ignores a datagram too short to be a DNS header', async () => {
    const { port } = await udpServer((s, q, r) => {
      s.send(q.subarray(0, 4), r.port, r.address);
      setTimeout(() => s.send(replyTo(q, 'full'), r.port, r.address), 20);
    });
    const query = msg(556);
    const result = await udpExchange({ host: '127.0.0.1', port, message: query, timeoutMs: 2000 });
    assert.deepEqual(result.reply, replyTo(query, 'full'));
  });

  it('times out when nothing answers', async () => {
    const { port } = await udpServer(() => undefined);
    await assert.rejects(udpExchange({ host: '127.0.0.1', port, message: msg(1), timeoutMs: 100 }), assertTransport('timeout'));
  });

  it('stops on abort', async () => {
    const { port } = await udpServer(() => undefined);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 30);
    await assert.rejects(
      udpExchange({ host: '127.0.0.1', port, message: msg(1), timeoutMs: 5000, signal: controller.signal }),
      assertTransport('aborted'),
    );
  });

  it('reports connect when the port answers with ICMP unreachable', async () => {
    const probe = dgram.createSocket('udp4');
    probe.bind(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address();
    await new Promise<void>((r) => probe.close(() => r()));
    await assert.rejects(udpExchange({ host: '127.0.0.1', port, message: msg(1), timeoutMs: 2000 }), assertTransport('connect'));
  });

  it('refuses a message above maxSize', async () => {
    await assert.rejects(
      udpExchange({ host: '127.0.0.1', port: 53, message: Buffer.alloc(600), timeoutMs: 1000, maxSize: 512 }),
      assertTransport('too-large'),
    );
  });

  it('resolves a host name and uses the matching address family', async () => {
    const { address } = await lookup('localhost');
    const { port } = await udpServer((s, q, r) => s.send(replyTo(q, 'by name'), r.port, r.address), 0, address);
    const query = msg(2024);
    const result = await udpExchange({ host: 'localhost', port, message: query, timeoutMs: 2000 });
    assert.deepEqual(result.reply, replyTo(query, 'by name'));
  });

  it('sends over IPv6 to an IPv6 literal', async () => {
    const { port } = await udpServer((s, q, r) => s.send(replyTo(q, 'v6'), r.port, r.address), 0, '::1');
    const query = msg(66);
    const result = await udpExchange({ host: '::1', port, message: query, timeoutMs: 2000 });
    assert.deepEqual(result.reply, replyTo(query, 'v6'));
  });
});

describe('exchange', () => {
  it('goes straight to TCP when asked', async () => {
    const { port } = await tcpServer((socket, q) => socket.write(frame(replyTo(q, 'tcp only'))));
    const query = msg(3);
    const result = await exchange({ host: '127.0.0.1', port, message: query, timeoutMs: 2000, tcp: true });
    assert.equal(result.transport, 'tcp');
    assert.deepEqual(result.reply, replyTo(query, 'tcp only'));
  });

  it('uses UDP otherwise', async () => {
    const { port } = await udpServer((s, q, r) => s.send(replyTo(q, 'udp'), r.port, r.address));
    const query = msg(4);
    const result = await exchange({ host: '127.0.0.1', port, message: query, timeoutMs: 2000, tcp: false });
    assert.equal(result.transport, 'udp');
    assert.deepEqual(result.reply, replyTo(query, 'udp'));
  });
});
