/**
 * The shared TCP connection layer on real loopback sockets. Deadlines run on
 * a FakeClock, so nothing here waits for time to pass: each step awaits the
 * layer's own event (accepted, read, paused, closed, …) and moves the clock.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { FrameDecoder, frame } from '../../../src/net/transport.js';
import {
  DEFAULT_TCP_LIMITS,
  TcpDnsServer,
  type TcpDnsServerOptions,
  type TcpEvent,
  type TcpLimits,
} from '../../../src/net/tcp-server.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { logSink } from '../../helpers/log-sink.js';

/** Every event the server reported, and a way to await one. */
class Events {
  readonly seen: TcpEvent[] = [];
  #waiters: { from: number; pred: (e: TcpEvent) => boolean; resolve: (e: TcpEvent) => void }[] = [];

  readonly push = (e: TcpEvent): void => {
    this.seen.push(e);
    for (const w of [...this.#waiters]) {
      if (w.pred(e)) {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        w.resolve(e);
      }
    }
  };

  /** A mark to wait from: events before it do not count. */
  mark(): number {
    return this.seen.length;
  }

  /** The first event at or after `from` matching `pred` (already seen or still to come). */
  after(from: number, pred: (e: TcpEvent) => boolean): Promise<TcpEvent> {
    const hit = this.seen.slice(from).find(pred);
    if (hit !== undefined) return Promise.resolve(hit);
    return new Promise((resolve) => this.#waiters.push({ from, pred, resolve }));
  }
}

const is =
  <T extends TcpEvent['type']>(type: T, remote?: string) =>
  (e: TcpEvent): boolean =>
    e.type === type && (remote === undefined || e.remote === remote);

const closedAs = (remote: string, why: string) => (e: TcpEvent): boolean =>
  e.type === 'closed' && e.remote === remote && e.why === why;

/** A 12-byte header and a question: what the layer sees is just bytes with an ID. */
function query(id: number): Buffer {
  const b = Buffer.from('0000010000010000000000000178076578616d706c650000010001', 'hex');
  b.writeUInt16BE(id, 0);
  return b;
}

/** The request with QR set: a reply carrying the request's ID. */
function echo(raw: Buffer): Buffer {
  const r = Buffer.from(raw);
  r[2] |= 0x80;
  return r;
}

interface Lab {
  server: TcpDnsServer;
  clock: FakeClock;
  events: Events;
  port: number;
}

const open: TcpDnsServer[] = [];
const sockets: net.Socket[] = [];

async function start(limits: Partial<TcpLimits>, extra: Partial<TcpDnsServerOptions> = {}): Promise<Lab> {
  const clock = new FakeClock();
  const events = new Events();
  const server = new TcpDnsServer({
    handler: echo,
    log: pino({ level: 'silent' }),
    limits,
    clock,
    observer: events.push,
    ...extra,
  });
  open.push(server);
  await server.listen('127.0.0.1', 0);
  return { server, clock, events, port: server.port };
}

function connect(port: number, localAddress = '127.0.0.1', host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host, localAddress }, () => resolve(s));
    sockets.push(s);
    s.on('error', reject);
  });
}

/** Connects and waits until the server has taken the connection on. */
async function connected(lab: Lab, localAddress: string): Promise<net.Socket> {
  const mark = lab.events.mark();
  const s = await connect(lab.port, localAddress);
  await lab.events.after(mark, (e) => e.remote === localAddress && (e.type === 'accepted' || e.type === 'refused'));
  return s;
}

/** Resolves once the socket has closed. */
function gone(s: net.Socket): Promise<void> {
  if (s.destroyed) return Promise.resolve();
  return new Promise((resolve) => s.once('close', () => resolve()));
}

/** Reads `n` reply frames from the socket. */
function replies(s: net.Socket, n: number): Promise<Buffer[]> {
  const decoder = new FrameDecoder();
  const got: Buffer[] = [];
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      got.push(...decoder.push(chunk));
      if (got.length >= n) {
        s.off('data', onData);
        resolve(got);
      }
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error(`closed after ${got.length} of ${n} replies`)));
  });
}

/** Writes bytes and waits until the server has read them. */
async function send(lab: Lab, s: net.Socket, bytes: Buffer): Promise<TcpEvent> {
  const mark = lab.events.mark();
  s.write(bytes);
  return lab.events.after(mark, is('read', s.localAddress));
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(open.splice(0).map((s) => s.close()));
});

describe('TCP layer: connection caps', () => {
  it('caps connections per IPv4 address; other addresses still connect', async () => {
    const lab = await start({ maxPerSource: 2 });
    await connected(lab, '127.0.0.2');
    await connected(lab, '127.0.0.2');
    const mark = lab.events.mark();
    const third = await connect(lab.port, '127.0.0.2');
    const refused = await lab.events.after(mark, is('refused', '127.0.0.2'));
    assert.deepEqual(refused, { type: 'refused', remote: '127.0.0.2', source: '127.0.0.2', why: 'per-source' });
    await gone(third);
    await connected(lab, '127.0.0.3');
    assert.equal(lab.server.connectionCount, 3);
    assert.equal(lab.server.stats.refusedPerSource, 1);
  });

  it('counts IPv6 sources per /64', async () => {
    const clock = new FakeClock();
    const events = new Events();
    const server = new TcpDnsServer({ handler: echo, log: pino({ level: 'silent' }), limits: { maxPerSource: 2 }, clock, observer: events.push });
    open.push(server);
    await server.listen('::1', 0);
    for (let i = 0; i < 2; i++) {
      const mark = events.mark();
      await connect(server.port, '::1', '::1');
      assert.deepEqual(await events.after(mark, is('accepted')), { type: 'accepted', remote: '::1', source: '::/64' });
    }
    const mark = events.mark();
    await connect(server.port, '::1', '::1');
    const refused = await events.after(mark, is('refused'));
    assert.equal(refused.type === 'refused' && refused.source, '::/64');
  });

  it('when full, closes the longest-idle connection; busy ones are kept, and with none idle the new one is refused', async () => {
    let hold: (() => void) | undefined;
    const lab = await start(
      { maxConnections: 3 },
      {
        handler: (raw) =>
          raw.readUInt16BE(0) === 99 ? new Promise<Buffer>((resolve) => (hold = () => resolve(echo(raw)))) : echo(raw),
      },
    );
    const a = await connected(lab, '127.0.0.11');
    const b = await connected(lab, '127.0.0.12');
    const c = await connected(lab, '127.0.0.13');
    // b and c exchange a message, so a is the longest idle.
    for (const s of [b, c]) {
      const got = replies(s, 1);
      s.write(frame(query(1)));
      await got;
    }
    let mark = lab.events.mark();
    const d = await connected(lab, '127.0.0.14');
    await lab.events.after(mark, closedAs('127.0.0.11', 'evicted'));
    await gone(a);
    // Now b, c and d are open; make all of them busy: nothing may be evicted.
    for (const s of [b, c, d]) await send(lab, s, frame(query(99)));
    mark = lab.events.mark();
    await connect(lab.port, '127.0.0.15');
    assert.deepEqual(await lab.events.after(mark, is('refused', '127.0.0.15')), {
      type: 'refused',
      remote: '127.0.0.15',
      source: '127.0.0.15',
      why: 'full',
    });
    assert.equal(lab.server.connectionCount, 3);
    assert.equal(lab.server.stats.evicted, 1);
    hold?.();
  });
});

describe('TCP layer: deadlines', () => {
  it('idle deadline counts from the last complete message', async () => {
    const lab = await start({ idleTimeoutMs: 1000, slowReadTimeoutMs: 60_000 });
    const s = await connected(lab, '127.0.0.21');
    lab.clock.advance(900);
    const got = replies(s, 1);
    s.write(frame(query(7)));
    assert.equal((await got)[0].readUInt16BE(0), 7);
    lab.clock.advance(900); // 1800 ms since accept, 900 since the message
    assert.equal(lab.server.connectionCount, 1);
    const mark = lab.events.mark();
    lab.clock.advance(100);
    await lab.events.after(mark, closedAs('127.0.0.21', 'idle'));
    assert.equal(lab.server.connectionCount, 0);
  });

  it('dripping bytes does not reset the idle deadline', async () => {
    const lab = await start({ idleTimeoutMs: 1000, slowReadTimeoutMs: 60_000 });
    const s = await connected(lab, '127.0.0.22');
    const bytes = frame(query(1));
    const mark = lab.events.mark();
    let closed: TcpEvent | undefined;
    void lab.events.after(mark, is('closed', '127.0.0.22')).then((e) => (closed = e));
    let dripped = 0;
    while (closed === undefined) {
      assert.ok(dripped < bytes.length - 1, 'closed before the message could complete');
      await send(lab, s, bytes.subarray(dripped, dripped + 1));
      dripped++;
      lab.clock.advance(250);
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(closed, { type: 'closed', remote: '127.0.0.22', why: 'idle' });
    assert.equal(dripped, 4, 'four bytes in 1000 ms did not keep it open');
    assert.equal(lab.clock.now() - Date.UTC(2026, 0, 1), 1000);
  });

  it('a message dripped a byte at a time is closed at the whole-message deadline', async () => {
    const lab = await start({ idleTimeoutMs: 60_000, slowReadTimeoutMs: 1000 });
    const s = await connected(lab, '127.0.0.23');
    const bytes = frame(query(1));
    // A first message completes, so the deadline below belongs to the second one alone.
    const got = replies(s, 1);
    s.write(bytes);
    await got;
    lab.clock.advance(5000);
    const mark = lab.events.mark();
    for (let i = 0; i < 4; i++) {
      await send(lab, s, bytes.subarray(i, i + 1));
      lab.clock.advance(300);
    }
    const closed = await lab.events.after(mark, is('closed', '127.0.0.23'));
    assert.deepEqual(closed, { type: 'closed', remote: '127.0.0.23', why: 'slow-read' });
    assert.equal(lab.server.stats.closed['slow-read'], 1);
  });

  it('closes a connection on a frame longer than the message cap', async () => {
    const lab = await start({ maxMessageSize: 512 });
    const s = await connected(lab, '127.0.0.24');
    const mark = lab.events.mark();
    s.write(Buffer.from([0x04, 0x00]));
    assert.deepEqual(await lab.events.after(mark, is('closed')), { type: 'closed', remote: '127.0.0.24', why: 'bad-framing' });
  });
});

describe('TCP layer: limits changed while running', () => {
  it('setLimits applies caps, timeouts and the message size to connections accepted from then on; open ones stay', async () => {
    const lab = await start({ maxPerSource: 3, idleTimeoutMs: 60_000 });
    const a = await connected(lab, '127.0.0.31');
    await connected(lab, '127.0.0.31');
    lab.server.setLimits({ maxPerSource: 1, idleTimeoutMs: 1000, maxMessageSize: 512 });
    assert.equal(lab.server.connectionCount, 2, 'open connections stay');
    let mark = lab.events.mark();
    const third = await connect(lab.port, '127.0.0.31');
    assert.deepEqual(await lab.events.after(mark, is('refused', '127.0.0.31')), { type: 'refused', remote: '127.0.0.31', source: '127.0.0.31', why: 'per-source' });
    await gone(third);
    // An open connection keeps the message size it was accepted with.
    const got = replies(a, 1);
    a.write(frame(Buffer.concat([query(5), Buffer.alloc(600)])));
    assert.equal((await got)[0].readUInt16BE(0), 5);
    // A new one gets the new idle deadline and message size.
    const idle = await connected(lab, '127.0.0.32');
    const big = await connected(lab, '127.0.0.33');
    mark = lab.events.mark();
    big.write(Buffer.from([0x04, 0x00]));
    assert.deepEqual(await lab.events.after(mark, is('closed', '127.0.0.33')), { type: 'closed', remote: '127.0.0.33', why: 'bad-framing' });
    mark = lab.events.mark();
    lab.clock.advance(1000);
    assert.deepEqual(await lab.events.after(mark, is('closed', '127.0.0.32')), { type: 'closed', remote: '127.0.0.32', why: 'idle' });
    await gone(idle);
    assert.throws(() => lab.server.setLimits({ maxConnections: 0 }), /maxConnections/);
  });
});

describe('TCP layer: logging off the hot path', () => {
  it('makes a connection\'s child logger only when the connection logs at a level that is written', async () => {
    const sink = logSink('info');
    let children = 0;
    const base = sink.logger;
    // The server's logger: pino at info, counting the child loggers made from it.
    const log = Object.assign(Object.create(base) as typeof base, {
      child: (bindings: Record<string, unknown>) => {
        children++;
        return base.child(bindings);
      },
    });
    const seen: Array<{ remote: string; debugOn: boolean }> = [];
    const lab = await start(
      { maxMessageSize: 512 },
      {
        log,
        handler: (raw, ctx) => {
          // What the registration server does per request: a debug line (not written at info).
          ctx.log.debug({ id: raw.readUInt16BE(0) }, 'request handled');
          seen.push({ remote: ctx.remote, debugOn: ctx.log.isLevelEnabled?.('debug') ?? true });
          return echo(raw);
        },
      },
    );
    for (const addr of ['127.0.0.91', '127.0.0.92']) {
      const s = await connected(lab, addr);
      const got = replies(s, 1);
      s.write(frame(query(5)));
      assert.equal((await got)[0].readUInt16BE(0), 5);
      s.destroy();
      await gone(s);
    }
    assert.deepEqual(seen, [
      { remote: '127.0.0.91', debugOn: false },
      { remote: '127.0.0.92', debugOn: false },
    ]);
    assert.equal(children, 0, 'no child logger for connections that wrote no line');
    // A warning is written, with the connection's fields.
    const s = await connected(lab, '127.0.0.93');
    const mark = lab.events.mark();
    s.write(Buffer.from([0x04, 0x00]));
    await lab.events.after(mark, is('closed', '127.0.0.93'));
    assert.equal(children, 1);
    const warned = sink.lines.filter((l) => l.level === 40);
    assert.equal(warned.length, 1);
    assert.equal(warned[0].remote, '127.0.0.93');
    assert.equal(typeof warned[0].conn, 'number');
  });
});

describe('TCP layer: pipelining and back-pressure', () => {
  it('answers in request order and stops reading at the in-flight cap', async () => {
    const pending: { id: number; resolve: () => void }[] = [];
    let arrived: (() => void) | undefined;
    const lab = await start(
      { maxPipelined: 4 },
      {
        handler: (raw) =>
          new Promise<Buffer>((resolve) => {
            pending.push({ id: raw.readUInt16BE(0), resolve: () => resolve(echo(raw)) });
            arrived?.();
          }),
      },
    );
    const s = await connected(lab, '127.0.0.31');
    const mark = lab.events.mark();
    s.write(Buffer.concat(Array.from({ length: 10 }, (_, i) => frame(query(i)))));
    await lab.events.after(mark, is('paused', '127.0.0.31'));
    assert.deepEqual(
      pending.map((p) => p.id),
      [0, 1, 2, 3],
    );
    assert.equal(lab.server.stats.peakInFlight, 4);
    const got = replies(s, 10);
    // Answer each batch out of order; replies must still leave in request order.
    let done = 0;
    while (done < 10) {
      if (pending.length === done) await new Promise<void>((r) => (arrived = r));
      const batch = pending.slice(done);
      done = pending.length;
      for (const p of batch.reverse()) p.resolve();
    }
    assert.deepEqual(
      (await got).map((r) => r.readUInt16BE(0)),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.ok(lab.server.stats.peakInFlight <= 4);
  });

  it('a client that never reads: reading stops, unsent bytes stay bounded, the write deadline closes it', async () => {
    const big = 60_000;
    let handled = 0;
    const lab = await start(
      { maxPipelined: 4, maxUnsentBytes: 64 * 1024, writeTimeoutMs: 1000 },
      {
        handler: (raw) => {
          handled++;
          const r = Buffer.alloc(big);
          raw.copy(r, 0, 0, 2);
          return r;
        },
      },
    );
    const s = await connected(lab, '127.0.0.32');
    s.pause();
    const total = 2000;
    const mark = lab.events.mark();
    s.write(Buffer.concat(Array.from({ length: total }, (_, i) => frame(query(i)))));
    await lab.events.after(mark, is('paused', '127.0.0.32'));
    // Move the clock past the write deadline until the layer gives up on this peer.
    const closing = lab.events.after(mark, is('closed', '127.0.0.32'));
    let closed: TcpEvent | undefined;
    void closing.then((e) => (closed = e));
    for (let i = 0; closed === undefined; i++) {
      assert.ok(i < 100_000, 'the connection is closed');
      lab.clock.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(closed, { type: 'closed', remote: '127.0.0.32', why: 'write-timeout' });
    const st = lab.server.stats;
    assert.ok(st.readPauses >= 1);
    assert.ok(handled < total, `handled ${handled} of ${total}: reading stopped`);
    assert.ok(st.peakInFlight <= 4, `peak in flight ${st.peakInFlight}`);
    assert.ok(st.peakUnsentBytes <= 64 * 1024 + 4 * (big + 2), `peak unsent ${st.peakUnsentBytes}`);
  });
});

describe('TCP layer: time shared between connections', () => {
  it('a connection pipelining cheap requests gets maxPipelined of them per turn of the event loop while another request takes its steps', async () => {
    const BURST = 2_000;
    const SLOW = 0xbbbb;
    const STEPS = 5;
    let cheapHandled = 0;
    let cheapWhenSlowDone = -1;
    const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
    const lab = await start(
      { maxPipelined: 16 },
      {
        handler: async (raw) => {
          if (raw.readUInt16BE(0) !== SLOW) {
            cheapHandled++;
            return echo(raw);
          }
          // A request whose steps each wait for the event loop, as a signature check on the pool or a journal write does.
          for (let i = 0; i < STEPS; i++) await turn();
          cheapWhenSlowDone = cheapHandled;
          return echo(raw);
        },
      },
    );
    const slow = await connected(lab, '127.0.0.61');
    const hostile = await connected(lab, '127.0.0.62');
    const slowReply = replies(slow, 1);
    const cheapReplies = replies(hostile, BURST);
    const mark = lab.events.mark();
    hostile.write(Buffer.concat(Array.from({ length: BURST }, (_, i) => frame(query(i)))));
    await lab.events.after(mark, is('read', '127.0.0.62'));
    slow.write(frame(query(SLOW)));
    assert.equal((await slowReply)[0].readUInt16BE(0), SLOW);
    // Each of the slow request's turns let the other connection hand over at
    // most 16 requests (one more turn for the read that brought it in).
    assert.ok(cheapWhenSlowDone >= 0 && cheapWhenSlowDone <= (STEPS + 3) * 16, `${cheapWhenSlowDone} of ${BURST} cheap requests handled during ${STEPS} turns`);
    assert.deepEqual(
      (await cheapReplies).map((r) => r.readUInt16BE(0)),
      Array.from({ length: BURST }, (_, i) => i),
    );
  });
});

describe('TCP layer: multi-message replies', () => {
  it('writes every message in order before the next reply, pulling them only as the peer takes them', async () => {
    const big = 60_000;
    const count = 200;
    let pulled = 0;
    function* messages(id: number): Generator<Buffer> {
      for (let i = 0; i < count; i++) {
        pulled++;
        const m = Buffer.alloc(big);
        m.writeUInt16BE(id, 0);
        m.writeUInt32BE(i, 12);
        yield m;
      }
    }
    const lab = await start(
      { maxUnsentBytes: 64 * 1024 },
      { handler: (raw) => (raw.readUInt16BE(0) === 1 ? messages(1) : echo(raw)) },
    );
    const s = await connected(lab, '127.0.0.33');
    const got = replies(s, count + 1);
    s.write(Buffer.concat([frame(query(1)), frame(query(2))]));
    const all = await got;
    assert.equal(pulled, count);
    assert.deepEqual(
      all.slice(0, count).map((m) => [m.readUInt16BE(0), m.readUInt32BE(12)]),
      Array.from({ length: count }, (_, i) => [1, i]),
    );
    assert.equal(all[count]?.readUInt16BE(0), 2, 'the next reply follows the last message');
    // Back-pressure: never much more than the bound unsent (one message may overshoot it), not the 12 MB of the whole reply.
    const st = lab.server.stats;
    assert.ok(st.peakUnsentBytes <= 64 * 1024 + big + 2 + 64, `peak unsent ${st.peakUnsentBytes}`);
    assert.ok(st.peakInFlight <= 2);
  });

  it('a reply whose messages fail midway closes the connection', async () => {
    function* failing(): Generator<Buffer> {
      yield echo(query(5));
      throw new Error('broken transfer');
    }
    const lab = await start({}, { handler: () => failing() });
    const s = await connected(lab, '127.0.0.34');
    const mark = lab.events.mark();
    s.write(frame(query(5)));
    assert.deepEqual(await lab.events.after(mark, is('closed', '127.0.0.34')), { type: 'closed', remote: '127.0.0.34', why: 'handler-error' });
    assert.equal(lab.server.stats.handlerErrors, 1);
  });
});

describe('TCP layer: failing and oversized replies', () => {
  it('a handler that throws or rejects closes only its connection, logged', async () => {
    const sink = logSink('debug');
    const lab = await start(
      {},
      {
        log: sink.logger,
        handler: (raw) => {
          const id = raw.readUInt16BE(0);
          if (id === 1) throw new Error('sync boom');
          if (id === 2) return Promise.reject(new Error('async boom'));
          return echo(raw);
        },
      },
    );
    for (const [addr, id] of [['127.0.0.41', 1], ['127.0.0.42', 2]] as const) {
      const s = await connected(lab, addr);
      const mark = lab.events.mark();
      s.write(frame(query(id)));
      assert.deepEqual(await lab.events.after(mark, is('closed', addr)), { type: 'closed', remote: addr, why: 'handler-error' });
    }
    const ok = await connected(lab, '127.0.0.43');
    const got = replies(ok, 1);
    ok.write(frame(query(3)));
    assert.equal((await got)[0].readUInt16BE(0), 3);
    assert.equal(lab.server.stats.handlerErrors, 2);
    const logged = sink.lines.filter((l) => l.msg === 'request handler failed, closing connection');
    assert.deepEqual(
      logged.map((l) => (l.err as { message: string }).message),
      ['sync boom', 'async boom'],
    );
  });

  it('a reply too large to frame is replaced by the hook’s answer, or closes the connection without one', async () => {
    const lab = await start(
      {},
      {
        handler: (raw) => (raw.readUInt16BE(0) === 5 ? Buffer.alloc(70_000) : echo(raw)),
        onOversize: (request) => {
          const r = Buffer.from(request.subarray(0, 12));
          r[2] |= 0x82; // QR and TC
          return r;
        },
      },
    );
    const s = await connected(lab, '127.0.0.51');
    const got = replies(s, 2);
    s.write(Buffer.concat([frame(query(5)), frame(query(6))]));
    const [first, second] = await got;
    assert.equal(first.length, 12);
    assert.equal(first.readUInt16BE(0), 5);
    assert.equal(first[2] & 0x82, 0x82);
    assert.equal(second.readUInt16BE(0), 6);
    assert.equal(lab.server.stats.oversizeReplies, 1);

    const bare = await start({}, { handler: () => Buffer.alloc(70_000) });
    const t = await connected(bare, '127.0.0.52');
    const mark = bare.events.mark();
    t.write(frame(query(1)));
    assert.deepEqual(await bare.events.after(mark, is('closed')), { type: 'closed', remote: '127.0.0.52', why: 'oversize' });
  });

  it('a handler answering null closes the connection', async () => {
    const lab = await start({}, { handler: () => null });
    const s = await connected(lab, '127.0.0.53');
    const mark = lab.events.mark();
    s.write(frame(query(1)));
    assert.deepEqual(await lab.events.after(mark, is('closed')), { type: 'closed', remote: '127.0.0.53', why: 'no-reply' });
  });
});

describe('TCP layer: listening and shutdown', () => {
  it('stopAccepting keeps open connections serving; close() ends them', async () => {
    const lab = await start({});
    const s = await connected(lab, '127.0.0.61');
    await lab.server.stopAccepting();
    await assert.rejects(connect(lab.port, '127.0.0.62'));
    const got = replies(s, 1);
    s.write(frame(query(9)));
    assert.equal((await got)[0].readUInt16BE(0), 9);
    assert.equal(lab.server.connectionCount, 1);
    await lab.server.close();
    assert.equal(lab.server.connectionCount, 0);
    assert.equal(lab.server.stats.closed.shutdown, 1);
  });

  it('an address that cannot be bound is skipped with a warning; the others listen', async () => {
    // 203.0.113.1 (TEST-NET-3) is not configured here: binding it fails with EADDRNOTAVAIL. Nothing is sent to it.
    const sink = logSink('warn');
    const server = new TcpDnsServer({ handler: echo, log: sink.logger });
    try {
      const bound = await server.listen(['203.0.113.1', '127.0.0.1'], 0);
      assert.deepEqual(bound, ['127.0.0.1']);
      assert.deepEqual(server.addresses, [`127.0.0.1:${server.port}`]);
      const warned = sink.lines.filter((l) => l.level === 40);
      assert.equal(warned.length, 1);
      assert.match(String(warned[0].address), /^203\.0\.113\.1:/);
      assert.equal((warned[0].err as { code?: string }).code, 'EADDRNOTAVAIL');
      const s = await connect(server.port, '127.0.0.1');
      const got = replies(s, 1);
      s.write(frame(query(7)));
      assert.equal((await got)[0].readUInt16BE(0), 7);
      s.destroy();
    } finally {
      await server.close();
    }
  });

  it('fails only when no address can be bound', async () => {
    const server = new TcpDnsServer({ handler: echo, log: pino({ level: 'silent' }) });
    await assert.rejects(server.listen(['203.0.113.1', '203.0.113.2'], 0), { code: 'EADDRNOTAVAIL' });
    assert.deepEqual(server.addresses, []);
  });

  it('rejects limits that are not positive integers or exceed a TCP frame', () => {
    assert.throws(() => new TcpDnsServer({ handler: echo, log: pino({ level: 'silent' }), limits: { maxPerSource: 0 } }), /maxPerSource/);
    assert.throws(() => new TcpDnsServer({ handler: echo, log: pino({ level: 'silent' }), limits: { maxMessageSize: 70_000 } }), /maxMessageSize/);
    assert.equal(DEFAULT_TCP_LIMITS.maxMessageSize, 65535);
  });
});
