/**
 * NOTIFY (RFC 1996) from the zone server: a real UDP socket plays the
 * secondary; time is a FakeClock, so the once-per-second limit and the
 * retransmissions are driven step by step.
 */
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { Opcode, RRClass, RRType, Rcode } from '../../../../src/dns/constants.js';
import { decodeMessage, encodeMessage, type DecodedMessage, type ResourceRecord } from '../../../../src/dns/message.js';
import { signTsigResponse, verifyTsigRequest, type TsigKey } from '../../../../src/dns/tsig.js';
import { Notifier } from '../../../../src/daemon/zoneserver/notify.js';
import { FakeClock } from '../../../helpers/fake-clock.js';

const ZONE = 'zone.example.';
const KEY: TsigKey = { name: 'notify.example.', algorithm: 'hmac-sha256', secret: Buffer.alloc(32, 5) };
const soa = (serial: number): ResourceRecord => ({
  name: ZONE,
  type: 'SOA',
  class: RRClass.IN,
  ttl: 60,
  data: { mname: `ns.${ZONE}`, rname: `h.${ZONE}`, serial, refresh: 60, retry: 60, expire: 604800, minimum: 60 },
});

/** A secondary on loopback: every NOTIFY it gets, answered or not as told. */
class Secondary {
  readonly got: Array<{ message: DecodedMessage; raw: Buffer }> = [];
  answer = true;
  /** The key answers are signed with (a wrong one: the notifier must not take the answer). */
  signWith = KEY;
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  readonly socket = dgram.createSocket('udp4');

  async open(): Promise<number> {
    this.socket.on('message', (raw, rinfo) => {
      const message = decodeMessage(raw);
      this.got.push({ message, raw });
      for (const w of this.waiters.filter((x) => this.got.length >= x.n)) w.resolve();
      if (!this.answer) return;
      let reply = encodeMessage({ ...message, qr: true, answers: [], additionals: [] });
      const check = verifyTsigRequest(message, [KEY], message.additionals.length > 0 ? tsigTime(message) : 0);
      if (check?.ok) reply = signTsigResponse(reply, this.signWith, check.tsig.mac, check.tsig.timeSigned);
      this.socket.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', () => r()));
    return this.socket.address().port;
  }

  /** Resolves once `n` NOTIFYs have arrived in all. */
  received(n: number): Promise<void> {
    if (this.got.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
}

function tsigTime(m: DecodedMessage): number {
  const t = m.additionals.at(-1);
  return t?.type === 'TSIG' && t.data !== null ? t.data.timeSigned : 0;
}

const closers: Array<() => void> = [];
after(() => {
  for (const c of closers) c();
});

async function lab(key?: TsigKey) {
  const secondary = new Secondary();
  const port = await secondary.open();
  closers.push(() => secondary.socket.close());
  const clock = new FakeClock();
  let serial = 100;
  const notifier = new Notifier({
    targets: [{ address: '127.0.0.1', port }],
    key,
    zones: () => [{ apex: ZONE, soa: soa(serial) }],
    clock,
    logger: pino({ level: 'silent' }),
  });
  closers.push(() => notifier.close());
  return { secondary, clock, notifier, bump: () => ++serial };
}

/** Lets the event loop deliver datagrams until `cond` holds (no time passes on the fake clock). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; !cond(); i++) {
    assert.ok(i < 10_000, 'condition not reached');
    await new Promise((r) => setImmediate(r));
  }
}

describe('NOTIFY', () => {
  it('tells the secondary with a NOTIFY carrying the SOA; changes within a second go out together, once', async () => {
    const { secondary, clock, notifier, bump } = await lab();
    bump();
    notifier.changed();
    clock.advance(0);
    await secondary.received(1);
    const first = secondary.got[0]?.message;
    assert.ok(first !== undefined && first.opcode === Opcode.NOTIFY && first.aa && !first.qr);
    assert.deepEqual(first.questions, [{ name: ZONE, type: RRType.SOA, class: RRClass.IN }]);
    assert.equal(first.answers[0]?.type === 'SOA' ? first.answers[0].data?.serial : undefined, 101);
    await until(() => notifier.acknowledged === 1);
    // Three changes within the next second: one NOTIFY, a second after the first, with the last serial.
    bump();
    notifier.changed();
    bump();
    notifier.changed();
    bump();
    notifier.changed();
    clock.advance(999);
    await new Promise((r) => setImmediate(r));
    assert.equal(secondary.got.length, 1);
    clock.advance(1);
    await secondary.received(2);
    const second = secondary.got[1]?.message;
    assert.equal(second?.answers[0]?.type === 'SOA' ? second.answers[0].data?.serial : undefined, 104);
    await until(() => notifier.acknowledged === 2);
    clock.advance(120_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(secondary.got.length, 2, 'acknowledged: no retransmission');
  });

  it('retransmits until acknowledged, 1 s doubling', async () => {
    const { secondary, clock, notifier } = await lab();
    secondary.answer = false;
    notifier.changed();
    clock.advance(0);
    await secondary.received(1);
    for (const [step, total] of [
      [1000, 2],
      [2000, 3],
      [4000, 4],
    ] as const) {
      clock.advance(step - 1);
      await new Promise((r) => setImmediate(r));
      assert.equal(secondary.got.length, total - 1, `not before ${step} ms`);
      clock.advance(1);
      await secondary.received(total);
    }
    secondary.answer = true;
    clock.advance(8000);
    await secondary.received(5);
    await until(() => notifier.acknowledged === 1);
    clock.advance(600_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(secondary.got.length, 5);
    assert.equal(new Set(secondary.got.map((g) => g.message.id)).size, 5, 'a new ID each time');
  });

  it('signs with notify-key and accepts only a correctly signed answer', async () => {
    const { secondary, clock, notifier } = await lab(KEY);
    notifier.changed();
    clock.advance(0);
    await secondary.received(1);
    const got = secondary.got[0];
    assert.ok(got !== undefined);
    assert.equal(verifyTsigRequest(got.message, [KEY], tsigTime(got.message))?.ok, true);
    await until(() => notifier.acknowledged === 1);
    assert.equal(got.message.rcode, Rcode.NOERROR);
  });

  it('an answer with a bad signature is no acknowledgement: it keeps retransmitting', async () => {
    const { secondary, clock, notifier } = await lab(KEY);
    secondary.signWith = { ...KEY, secret: Buffer.alloc(32, 6) };
    notifier.changed();
    clock.advance(0);
    await secondary.received(1);
    clock.advance(1000);
    await secondary.received(2);
    assert.equal(notifier.acknowledged, 0);
    secondary.signWith = KEY;
    clock.advance(2000);
    await secondary.received(3);
    await until(() => notifier.acknowledged === 1);
  });
});
