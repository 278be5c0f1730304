/**
 * nsupdate reconciliation on a fake clock with a capturing transport: every
 * live record is sent again once per reconcile-interval, in batches spread
 * over it, through the normal update path (split to the UDP size).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { NsupdateUpstreamConfig } from '../../../../src/config/upstreams/index.js';
import { Opcode, RRClass } from '../../../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../../../src/dns/message.js';
import type { TsigRData } from '../../../../src/dns/rdata.js';
import { signTsigResponse, type TsigKey } from '../../../../src/dns/tsig.js';
import { unixSeconds } from '../../../../src/clock.js';
import type { AddrRecord } from '../../../../src/daemon/records.js';
import { createNsupdateUpstream, MAX_UDP_UPDATE, RECONCILE_BATCH, type UpdateTransport } from '../../../../src/daemon/upstreams/nsupdate.js';
import type { Upstream } from '../../../../src/daemon/upstreams/upstream.js';
import { FakeClock } from '../../../helpers/fake-clock.js';
import { logSink } from '../../../helpers/log-sink.js';
import { addr, change } from '../../../helpers/records.js';

const ZONE = 'dyn.example.';
const SECRET = Buffer.alloc(32, 7);
const KEY: TsigKey = { name: 'nsregd-key.', algorithm: 'hmac-sha256.', secret: SECRET };
const INTERVAL = 300_000;

/** Signed NOERROR answers to every UPDATE; the additions each carried, per message. */
function capture(clock: FakeClock): { send: UpdateTransport; messages: Buffer[]; added: () => string[] } {
  const messages: Buffer[] = [];
  const send: UpdateTransport = (opts) => {
    messages.push(opts.message);
    const req = decodeMessage(opts.message);
    const mac = (req.additionals[req.additionals.length - 1]?.data as TsigRData).mac;
    const reply = encodeMessage({ ...emptyMessage(req.id, Opcode.UPDATE), qr: true, questions: req.questions });
    return Promise.resolve({ reply: signTsigResponse(reply, KEY, mac, unixSeconds(clock)), transport: 'udp' });
  };
  const added = (): string[] =>
    messages.flatMap((m) => decodeMessage(m).authorities.filter((rr) => rr.class === RRClass.IN).map((rr) => `${rr.name} ${rr.data as string}`));
  return { send, messages, added };
}

const hosts = (n: number): AddrRecord[] => Array.from({ length: n }, (_, i) => addr(`h${i}.${ZONE}`, `10.0.${i >> 8}.${i & 255}`));

/** Lets the promise chains a timer started run to their end. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

function make(clock: FakeClock, live: () => AddrRecord[], send: UpdateTransport, over: Partial<NsupdateUpstreamConfig> = {}) {
  const sink = logSink();
  const up: Upstream = createNsupdateUpstream(
    {
      type: 'nsupdate',
      hostname: '127.0.0.1',
      port: 53,
      tcp: false,
      timeout: 1000,
      zone: ZONE,
      reverseZones: [],
      recordTtl: 600_000,
      tsigName: KEY.name,
      tsigSecret: SECRET.toString('base64'),
      tsigAlgorithm: 'hmac-sha256',
      keepRecords: false,
      excludeNets: [],
      protectExisting: false,
      reconcileInterval: INTERVAL,
      ...over,
    },
    {
      zone: ZONE,
      logger: sink.logger,
      clock,
      liveRecords: (n) => live().filter((r) => r.name === n),
      allLiveRecords: live,
      dataDir: '/nonexistent',
      registration: () => ({ host: '127.0.0.1', port: 8053 }),
    },
    send,
  );
  return { up, lines: sink.lines };
}

const key = (r: AddrRecord): string => `${r.name} ${r.address}`;

describe('nsupdate reconciliation', () => {
  it('sends every live record again once per interval, in batches spread over it, each message within the UDP size', async () => {
    const clock = new FakeClock();
    const records = hosts(250);
    const t = capture(clock);
    const { up, lines } = make(clock, () => records, t.send);
    await up.start();
    clock.advance(INTERVAL - 1);
    await settle();
    assert.equal(t.messages.length, 0, 'nothing before the first interval is over');

    clock.advance(1);
    await settle();
    assert.deepEqual(t.added(), records.slice(0, RECONCILE_BATCH).map(key), 'the first batch at once');
    // The other batches follow interval / 3 apart.
    clock.advance(Math.floor(INTERVAL / 3) - 1);
    await settle();
    assert.equal(t.added().length, RECONCILE_BATCH);
    clock.advance(1);
    await settle();
    assert.equal(t.added().length, 2 * RECONCILE_BATCH);
    clock.advance(Math.floor(INTERVAL / 3));
    await settle();
    assert.deepEqual(t.added(), records.map(key), 'every record once, in order');
    for (const m of t.messages) assert.ok(m.length <= MAX_UDP_UPDATE, `message of ${m.length} octets`);
    assert.ok(t.messages.length > 3, 'batches were split into several messages');
    const summary = lines.find((l) => l.msg === 'reconciliation round done');
    assert.ok(summary);
    assert.equal(summary.records, 250);
    assert.equal(summary.batches, 3);
    assert.equal(summary.failedBatches, 0);

    // And again in the next round, which starts one interval after the first.
    for (let i = 0; i < 3; i++) {
      clock.advance(Math.floor(INTERVAL / 3));
      await settle();
    }
    assert.equal(t.added().length, 2 * 250);
    await up.close();
    assert.equal(clock.pendingTimers, 0);
  });

  it('never sends a record that stopped being live or whose removal was applied', async () => {
    const clock = new FakeClock();
    const [a, b, c] = hosts(3);
    let live = [a, b, c];
    const t = capture(clock);
    const { up } = make(clock, () => live, t.send);
    await up.start();
    // b's removal went out; the zone has not dropped it yet.
    await up.apply(change({ remove: [b] }));
    live = [a, b];
    t.messages.length = 0;
    clock.advance(INTERVAL);
    await settle();
    assert.deepEqual(t.added(), [key(a)]);
    await up.close();
  });

  it('keeps going when a batch fails and says so in the summary', async () => {
    const clock = new FakeClock();
    const t = capture(clock);
    let fail = true;
    const flaky: UpdateTransport = (opts) => (fail ? Promise.reject(new Error('unreachable')) : t.send(opts));
    const { up, lines } = make(clock, () => hosts(1), flaky);
    await up.start();
    clock.advance(INTERVAL);
    await settle();
    const first = lines.find((l) => l.msg.startsWith('reconciliation round done'));
    assert.equal(first?.failedBatches, 1);
    fail = false;
    clock.advance(INTERVAL);
    await settle();
    assert.deepEqual(t.added(), [key(hosts(1)[0])]);
    await up.close();
  });

  it('is off with reconcile-interval 0', async () => {
    const clock = new FakeClock();
    const t = capture(clock);
    const { up } = make(clock, () => hosts(5), t.send, { reconcileInterval: 0 });
    await up.start();
    assert.equal(clock.pendingTimers, 0);
    clock.advance(10 * INTERVAL);
    await settle();
    assert.equal(t.messages.length, 0);
    await up.close();
  });
});
