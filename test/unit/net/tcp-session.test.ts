import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FrameDecoder, TcpSession, frame } from '../../../src/net/transport.js';

/** What the test server does with each message it reads on a connection. */
type Behaviour = 'echo' | 'reverse-pairs' | 'close-second' | 'silent';

/** A DNS-over-TCP stand-in: echoes messages back (the ID is what matters), counting connections. */
class FakeServer {
  readonly server = net.createServer((s) => this.serve(s));
  port = 0;
  connections = 0;
  behaviour: Behaviour = 'echo';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private serve(s: net.Socket): void {
    this.connections++;
    const decoder = new FrameDecoder();
    let seen = 0;
    let held: Buffer | undefined;
    s.on('error', () => undefined);
    s.on('data', (chunk: Buffer) => {
      for (const m of decoder.push(chunk)) {
        seen++;
        if (this.behaviour === 'silent') continue;
        if (this.behaviour === 'close-second' && seen === 2) {
          s.destroy();
          return;
        }
        if (this.behaviour === 'reverse-pairs') {
          // Answers every pair of messages in reverse order.
          if (held === undefined) {
            held = m;
            continue;
          }
          s.write(frame(m));
          s.write(frame(held));
          held = undefined;
          continue;
        }
        s.write(frame(m));
      }
    });
  }
}

const msg = (id: number): Buffer => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  return b;
};

describe('TcpSession (RFC 7766 connection reuse)', () => {
  const srv = new FakeServer();
  before(() => srv.start());
  after(() => new Promise<void>((resolve) => srv.server.close(() => resolve())));

  it('reuses one connection for sequential and pipelined exchanges, pairing out-of-order replies by ID', async () => {
    srv.behaviour = 'echo';
    const before = srv.connections;
    const s = new TcpSession({ host: '127.0.0.1', port: srv.port });
    for (let id = 1; id <= 5; id++) assert.equal((await s.exchange(msg(id), 2000)).readUInt16BE(0), id);
    srv.behaviour = 'reverse-pairs';
    const replies = await Promise.all([11, 12, 13, 14].map((id) => s.exchange(msg(id), 2000)));
    assert.deepEqual(replies.map((r) => r.readUInt16BE(0)), [11, 12, 13, 14]);
    assert.equal(srv.connections - before, 1);
    s.close();
  });

  it('a reused connection the server closes before replying: the message goes again on a fresh one', async () => {
    srv.behaviour = 'close-second';
    const before = srv.connections;
    const s = new TcpSession({ host: '127.0.0.1', port: srv.port });
    assert.equal((await s.exchange(msg(1), 2000)).readUInt16BE(0), 1);
    assert.equal((await s.exchange(msg(2), 2000)).readUInt16BE(0), 2, 'sent again on a new connection');
    assert.equal(srv.connections - before, 2);
    s.close();
  });

  it('a fresh connection that fails is not retried; a timeout drops the connection for the next message', async () => {
    srv.behaviour = 'silent';
    const before = srv.connections;
    const s = new TcpSession({ host: '127.0.0.1', port: srv.port });
    await assert.rejects(s.exchange(msg(7), 100), (err: unknown) => (err as { reason?: string }).reason === 'timeout');
    srv.behaviour = 'echo';
    assert.equal((await s.exchange(msg(8), 2000)).readUInt16BE(0), 8);
    assert.equal(srv.connections - before, 2);
    const refused = new TcpSession({ host: '127.0.0.1', port: 1 });
    await assert.rejects(refused.exchange(msg(9), 2000), (err: unknown) => (err as { reason?: string }).reason === 'connect');
    s.close();
  });

  it('an ID already in flight goes over a one-off connection; close() rejects what is in flight', async () => {
    srv.behaviour = 'silent';
    const before = srv.connections;
    const s = new TcpSession({ host: '127.0.0.1', port: srv.port });
    const first = s.exchange(msg(5), 5000);
    const twin = s.exchange(msg(5), 300);
    await new Promise<void>((resolve) => {
      const check = (): void => (srv.connections - before === 2 ? resolve() : void setImmediate(check));
      check();
    });
    s.close();
    await assert.rejects(first, (err: unknown) => (err as { reason?: string }).reason === 'closed');
    // The one-off connection is not the session's: closing the session leaves it to its own timeout.
    await assert.rejects(twin, (err: unknown) => (err as { reason?: string }).reason === 'timeout');
    srv.behaviour = 'echo';
  });

  it('close() during an exchange on a reused connection: rejected, and no new connection is opened to send it again', async () => {
    srv.behaviour = 'echo';
    const before = srv.connections;
    const s = new TcpSession({ host: '127.0.0.1', port: srv.port });
    assert.equal((await s.exchange(msg(1), 2000)).readUInt16BE(0), 1);
    srv.behaviour = 'silent';
    const pending = s.exchange(msg(2), 2000);
    s.close();
    await assert.rejects(pending, (err: unknown) => (err as { reason?: string }).reason === 'closed');
    assert.equal(srv.connections - before, 1);
    srv.behaviour = 'echo';
  });
});
