/**
 * The registration server's connection defences on real loopback sockets:
 * per-source cap, slow-read timeout, idle timeout, longest-idle eviction,
 * and a reply too large for TCP answered with SERVFAIL instead of a crash.
 * (The shared TCP layer's own tests, with a fake clock, are in
 * test/unit/net/tcp-server.test.ts.)
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { Opcode, RRClass, RRType, Rcode } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../src/dns/message.js';
import { frame, tcpExchange } from '../../src/net/transport.js';
import { RegistrationServer } from '../../src/daemon/server.js';
import { letTimePass } from '../helpers/eventually.js';

function query(id: number): Buffer {
  const q = emptyMessage(id, Opcode.QUERY);
  q.questions.push({ name: 'x.example.', type: RRType.A, class: RRClass.IN });
  return encodeMessage(q);
}

function connect(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.on('error', reject);
  });
}

function closed(s: net.Socket, withinMs: number): Promise<boolean> {
  if (s.destroyed || s.readyState === 'closed') return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), withinMs);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

describe('registration server limits', () => {
  let server: RegistrationServer;
  let port: number;

  before(async () => {
    server = new RegistrationServer({
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      limits: { maxConnections: 6, maxPerSource: 3, slowReadTimeoutMs: 300, idleTimeoutMs: 1500 },
      // Echo a minimal reply: the limits, not the policy, are under test.
      handler: async (raw) => {
        // ID 999 gets a reply no TCP frame can carry.
        if (raw.readUInt16BE(0) === 999) return { reply: Buffer.alloc(70_000), rcode: 0 };
        const m = emptyMessage(raw.readUInt16BE(0), Opcode.QUERY);
        m.qr = true;
        return { reply: encodeMessage(m), rcode: 0 };
      },
    });
    await server.listen();
    port = server.port;
  });

  after(async () => {
    await server.close();
  });

  it('closes connections beyond the per-source cap; other sources still connect', async () => {
    const mine = await Promise.all([1, 2, 3].map(() => connect(port, '127.0.0.2')));
    const fourth = await connect(port, '127.0.0.2');
    assert.ok(await closed(fourth, 1000), 'fourth connection from one address is closed');
    const other = await connect(port, '127.0.0.3');
    assert.ok(!(await closed(other, 200)));
    for (const s of [...mine, other]) s.destroy();
  });

  it('closes a connection that trickles a message too slowly', async () => {
    const s = await connect(port, '127.0.0.4');
    s.write(frame(query(1)).subarray(0, 5));
    assert.ok(await closed(s, 1500), 'slow reader closed');
  });

  it('closes idle connections', async () => {
    const s = await connect(port, '127.0.0.5');
    assert.ok(await closed(s, 3000), 'idle connection closed');
  });

  it('when full, the longest-idle connection makes room and busy ones are kept', async () => {
    const idle = await Promise.all(['127.0.0.6', '127.0.0.7', '127.0.0.8', '127.0.0.9', '127.0.0.10', '127.0.0.11'].map((a) => connect(port, a)));
    const oldest = idle[0];
    // Time passes on purpose: the activity below must be later than the connections' start.
    await letTimePass(50);
    // Activity on the others makes the first the longest idle; their echoed replies show the server saw it.
    await Promise.all(
      idle.slice(1).map((s) => {
        const answered = new Promise((r) => s.once('data', r));
        s.write(frame(query(2)));
        return answered;
      }),
    );
    const reply = await tcpExchange({ host: '127.0.0.1', port, message: query(3), timeoutMs: 2000, localAddress: '127.0.0.12' });
    assert.equal(reply.readUInt16BE(0), 3);
    assert.ok(await closed(oldest, 500), 'the longest-idle connection was evicted');
    for (const s of idle) s.destroy();
  });

  it('a reply too large for TCP becomes SERVFAIL with one TXT reason; the server keeps serving', async () => {
    const raw = await tcpExchange({ host: '127.0.0.1', port, message: query(999), timeoutMs: 2000, localAddress: '127.0.0.13' });
    const reply = decodeMessage(raw);
    assert.equal(reply.id, 999);
    assert.equal(reply.rcode, Rcode.SERVFAIL);
    assert.deepEqual(
      reply.additionals.map((rr) => [rr.type, rr.data]),
      [['TXT', ['Reply too large for TCP']]],
    );
    const next = await tcpExchange({ host: '127.0.0.1', port, message: query(4), timeoutMs: 2000, localAddress: '127.0.0.13' });
    assert.equal(next.readUInt16BE(0), 4);
  });
});
