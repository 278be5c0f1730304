import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientKey } from '../../../src/client/keys.js';
import { COALESCE_MS, RETRY_CAP_MS, Registrar, type RegistrarState } from '../../../src/client/registrar.js';
import { buildRegistration, type RegistrarAddress } from '../../../src/client/update-message.js';
import { Opcode, RRClass, Rcode } from '../../../src/dns/constants.js';
import { TransportError } from '../../../src/dns/errors.js';
import { decodeMessage, type DecodedMessage } from '../../../src/dns/message.js';
import { keyRecords, verifySig0 } from '../../../src/dns/sig0.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { goNsregcKey } from '../../helpers/fixtures.js';
import { eventually } from '../../helpers/eventually.js';
import { logSink as sink } from '../../helpers/log-sink.js';
import { updateReply, type UpdateAnswer } from '../../helpers/update-replies.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.resolve(here, '../../../../test/fixtures/go-nsregc');

const ZONE = 'dynamic.example.org.';
const NAME = 'foxtrot.dynamic.example.org.';
const KEY_TTL = 2592000;

let key: ClientKey;
let signedAt = 0;

before(async () => {
  key = await goNsregcKey();
  signedAt = Number((await readFile(path.join(fixtures, 'signed-at.txt'), 'utf8')).trim());
});


interface Sent {
  at: number;
  msg: DecodedMessage;
}

/** What the fake server does with one update: reply with this rcode (echoing with `ttl`), or fail on the network. */
type Behaviour = UpdateAnswer | 'network-error';

class Harness {
  readonly clock: FakeClock;
  readonly sent: Sent[] = [];
  readonly states: RegistrarState[] = [];
  /** What onServerHealth reported, in order. */
  readonly health: boolean[] = [];
  addresses: RegistrarAddress[];
  behaviour: Behaviour = {};
  readonly registrar: Registrar;
  readonly lines: Array<Record<string, unknown>>;

  /** Whether the fake server answers liveness probes; probe times are recorded. */
  probeAnswers = true;
  readonly probes: number[] = [];
  /** While set, the fake server's answers wait for it (an update in flight). */
  hold: Promise<void> | undefined;
  /** The start-up identifier the fake server's probe answers carry (undefined: none). */
  instance: string | undefined = 'first-start';

  constructor(addresses: RegistrarAddress[], opts: { clock?: FakeClock; server?: string; probeIntervalMs?: number; keyTtl?: number } = {}) {
    this.clock = opts.clock ?? new FakeClock(Date.UTC(2026, 0, 1));
    this.addresses = addresses;
    const { logger, lines } = sink();
    this.lines = lines;
    let id = 100;
    this.registrar = new Registrar({
      zone: ZONE,
      name: NAME,
      server: opts.server ?? '192.0.2.53:53',
      key,
      keyTtl: opts.keyTtl ?? KEY_TTL,
      addresses: { list: async () => [...this.addresses] },
      send: async (update: Buffer) => {
        const msg = decodeMessage(update);
        this.sent.push({ at: this.clock.now(), msg });
        await this.hold;
        const b = this.behaviour;
        if (b === 'network-error') throw new TransportError('connect', 'connection refused');
        return updateReply(msg, b, NAME);
      },
      clock: this.clock,
      logger,
      randomId: () => id++,
      onStateChange: (s) => this.states.push(s),
      onServerHealth: (healthy) => this.health.push(healthy),
      ...(opts.probeIntervalMs === undefined
        ? {}
        : {
            probeIntervalMs: opts.probeIntervalMs,
            probe: async (): Promise<string | undefined> => {
              this.probes.push(this.clock.now());
              if (!this.probeAnswers) throw new TransportError('connect', 'connection refused');
              return this.instance;
            },
          }),
    });
  }

  /** Moves the fake clock and lets the registrar finish what the timers started (probes included). */
  async advance(ms: number): Promise<void> {
    this.clock.advance(ms);
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.registrar.idle();
  }

  /** Moves the clock one millisecond at a time … in steps of `step` ms, settling after each. */
  async advanceBy(total: number, step: number): Promise<void> {
    for (let t = 0; t < total; t += step) await this.advance(Math.min(step, total - t));
  }

  last(): DecodedMessage {
    const s = this.sent.at(-1);
    assert.ok(s, 'an update was sent');
    return s.msg;
  }
}

/** [type, class, ttl, address] of the update section. */
function updates(m: DecodedMessage): Array<[string, number, number, string | null]> {
  return m.authorities.map((rr) => [rr.type, rr.class, rr.ttl, rr.type === 'A' || rr.type === 'AAAA' ? rr.data : null]);
}

describe('buildRegistration', () => {
  it('produces the original client\'s bytes for the same registration (up to the SIG)', async () => {
    const golden = await readFile(path.join(fixtures, 'update.bin'));
    const goldenMsg = decodeMessage(golden);
    const ours = buildRegistration({
      id: goldenMsg.id,
      zone: ZONE,
      name: NAME,
      key,
      keyTtl: KEY_TTL,
      now: signedAt,
      inserts: [{ address: '192.0.2.30', ttl: 3600 }],
    });
    const oursMsg = decodeMessage(ours);
    const prefix = (m: DecodedMessage): Buffer => {
      const b = Buffer.from(m.raw.subarray(0, m.spans.additionals.at(-1)!.start));
      b.writeUInt16BE(b.readUInt16BE(10) - 1, 10);
      return b;
    };
    assert.deepEqual(prefix(oursMsg), prefix(goldenMsg));
    const { sig } = verifySig0(oursMsg, { name: NAME, rdata: key.rdata }, signedAt);
    const goldenSig = verifySig0(goldenMsg, { name: NAME, rdata: key.rdata }, signedAt).sig;
    assert.deepEqual(
      { ...sig, signature: null },
      { ...goldenSig, signature: null },
    );
  });
});

describe('Registrar', () => {
  it('initial update: all addresses, zone SOA IN, KEY then SIG(0) that verifies', async () => {
    const h = new Harness([
      { address: '192.0.2.30', ttl: 3600 },
      { address: '2001:db8::30', ttl: 1800 },
    ]);
    await h.registrar.start();
    assert.equal(h.sent.length, 1);
    const m = h.last();
    assert.equal(m.opcode, Opcode.UPDATE);
    assert.deepEqual(m.questions, [{ name: ZONE, type: 6, class: RRClass.IN }]);
    assert.deepEqual(updates(m), [
      ['A', RRClass.IN, 3600, '192.0.2.30'],
      ['AAAA', RRClass.IN, 1800, '2001:db8::30'],
    ]);
    assert.deepEqual(m.additionals.map((rr) => rr.type), ['KEY', 'SIG']);
    const [k] = keyRecords(m);
    assert.equal(k?.name, NAME);
    assert.equal(k?.ttl, KEY_TTL);
    const now = Math.floor(h.clock.now() / 1000);
    const { sig } = verifySig0(m, { name: NAME, rdata: key.rdata }, now);
    assert.equal(sig.signerName, NAME);
    assert.equal(h.registrar.state, 'running');
    assert.deepEqual(h.registrar.registeredAddresses().sort(), ['192.0.2.30', '2001:db8::30']);
    const reg = h.lines.filter((l) => l['msg'] === 'address registered');
    assert.deepEqual(reg.map((l) => [l['address'], l['ttl']]), [['192.0.2.30', 3600], ['2001:db8::30', 1800]]);
    assert.ok(reg.every((l) => l['zone'] === ZONE && l['server'] === '192.0.2.53:53'));
  });

  it('refreshes at half the echoed TTL, only the addresses still present, with their current TTL', async () => {
    const h = new Harness([
      { address: '192.0.2.30', ttl: 3600 },
      { address: '192.0.2.31', ttl: 3600 },
    ]);
    h.behaviour = { ttl: 600 }; // the server lowers the TTL: its value counts
    await h.registrar.start();
    assert.equal(h.sent.length, 1);
    await h.advance(299_999);
    assert.equal(h.sent.length, 1);
    h.addresses = [{ address: '192.0.2.30', ttl: 1200 }];
    await h.advance(1);
    assert.equal(h.sent.length, 2, 'one refresh update for the batch');
    assert.equal(h.sent[1].at - h.sent[0].at, 300_000);
    assert.deepEqual(updates(h.last()), [['A', RRClass.IN, 1200, '192.0.2.30']]);
    assert.deepEqual(h.registrar.registeredAddresses(), ['192.0.2.30']);
    assert.ok(h.lines.some((l) => l['msg'] === 'address gone; letting its record expire' && l['address'] === '192.0.2.31'));
    assert.ok(h.lines.some((l) => l['msg'] === 'refreshing address' && l['address'] === '192.0.2.30' && l['ttl'] === 1200));
    // …and keeps going.
    await h.advance(300_000);
    assert.equal(h.sent.length, 3);
    assert.equal(h.sent[2].at - h.sent[1].at, 300_000);
  });

  it('backs off 1 s, 2 s, 4 s … capped, on network errors and SERVFAIL', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    h.behaviour = 'network-error';
    await h.registrar.start();
    const expected = [1, 2, 4, 8, 16, 32, 64, 128, 256].map((s) => s * 1000);
    expected.push(RETRY_CAP_MS, RETRY_CAP_MS);
    for (const [i, delay] of expected.entries()) {
      if (i === 4) h.behaviour = { rcode: Rcode.SERVFAIL, reason: 'upstream down' };
      const before = h.sent.length;
      await h.advance(delay - 1);
      assert.equal(h.sent.length, before, `no retry before ${delay} ms`);
      await h.advance(1);
      assert.equal(h.sent.length, before + 1, `retry after ${delay} ms`);
      assert.deepEqual(updates(h.last()), [['A', RRClass.IN, 3600, '192.0.2.30']]);
    }
    assert.equal(h.registrar.state, 'running');
    assert.ok(h.lines.some((l) => l['msg'] === 'queueing records for retry' && l['retryInMs'] === 1000));
  });

  it('resets the back-off after a success', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    h.behaviour = 'network-error';
    await h.registrar.start();
    await h.advance(1_000);
    await h.advance(2_000);
    assert.equal(h.sent.length, 3);
    assert.equal(h.registrar.nextRetryDelayMs, 8_000);
    h.behaviour = { ttl: 60 };
    await h.advance(4_000);
    assert.equal(h.sent.length, 4);
    assert.equal(h.registrar.nextRetryDelayMs, 1_000);
    h.behaviour = 'network-error';
    await h.advance(30_000); // refresh at half of 60 s fails…
    assert.equal(h.sent.length, 5);
    await h.advance(999);
    assert.equal(h.sent.length, 5);
    await h.advance(1); // …and is retried after 1 s again
    assert.equal(h.sent.length, 6);
  });

  it('keeps the back-off per server', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const a = new Harness([{ address: '192.0.2.30', ttl: 3600 }], { clock, server: 'a' });
    const b = new Harness([{ address: '192.0.2.30', ttl: 3600 }], { clock, server: 'b' });
    a.behaviour = 'network-error';
    await a.registrar.start();
    await b.registrar.start();
    for (const d of [1_000, 2_000, 4_000, 8_000]) {
      clock.advance(d);
      await a.registrar.idle();
    }
    assert.equal(a.sent.length, 5);
    assert.equal(a.registrar.nextRetryDelayMs, 32_000);
    b.behaviour = 'network-error';
    b.addresses = [...b.addresses, { address: '192.0.2.99', ttl: 60 }];
    b.registrar.addressAdded({ address: '192.0.2.99', ttl: 60 });
    clock.advance(COALESCE_MS);
    await b.registrar.idle();
    const before = b.sent.length;
    assert.equal(updates(b.last()).length, 1, 'the coalesced insert went out and failed');
    clock.advance(1_000);
    await b.registrar.idle();
    assert.equal(b.sent.length, before + 1, 'the other server retries after 1 s');
    assert.equal(a.registrar.nextRetryDelayMs, 32_000, 'and does not touch the first server\'s back-off');
  });

  it('stops on any other rcode, logging the rcode and the server\'s reason', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    h.behaviour = { rcode: Rcode.REFUSED, reason: 'Name already taken' };
    await h.registrar.start();
    assert.equal(h.registrar.state, 'refused');
    assert.deepEqual(h.states, ['refused']);
    const line = h.lines.find((l) => l['msg'] === 'server refused registration; giving up on this server');
    assert.ok(line);
    assert.equal(line['rcode'], 'REFUSED');
    assert.equal(line['reason'], 'Name already taken');
    assert.equal(line['level'], 50);
    assert.equal(line['zone'], ZONE);
    assert.equal(h.clock.pendingTimers, 0);
    h.registrar.addressAdded({ address: '192.0.2.40', ttl: 60 });
    await h.advance(COALESCE_MS);
    await h.registrar.shutdown(false);
    assert.equal(h.sent.length, 1, 'nothing more is sent');
    assert.equal(h.registrar.state, 'refused');
  });

  it('a refusal of a later update stops refreshes too', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 60 }]);
    await h.registrar.start();
    h.behaviour = { rcode: Rcode.NOTAUTH, reason: 'Invalid key for name' };
    await h.advance(30_000);
    assert.equal(h.registrar.state, 'refused');
    assert.ok(h.lines.some((l) => l['rcode'] === 'NOTAUTH' && l['reason'] === 'Invalid key for name'));
    await h.advance(3_600_000);
    assert.equal(h.sent.length, 2);
  });

  it('address events: new → insert; repeat → nothing; removed but still present → nothing; gone → removal', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.registrar.start();
    h.addresses = [...h.addresses, { address: '2001:db8::1', ttl: 900 }];
    h.registrar.addressAdded({ address: '2001:DB8::1', ttl: 900 });
    await h.advance(COALESCE_MS - 1);
    assert.equal(h.sent.length, 1, 'nothing before the window ends');
    await h.advance(1);
    assert.equal(h.sent.length, 2);
    assert.deepEqual(updates(h.last()), [['AAAA', RRClass.IN, 900, '2001:db8::1']]);
    h.registrar.addressAdded({ address: '2001:db8::1', ttl: 800 });
    await h.advance(COALESCE_MS);
    assert.equal(h.sent.length, 2, 'lifetime-only repeat is noise');

    h.registrar.addressRemoved('2001:db8::1');
    await h.advance(COALESCE_MS);
    assert.equal(h.sent.length, 2, 'still on another interface');

    h.addresses = [{ address: '192.0.2.30', ttl: 3600 }];
    h.registrar.addressRemoved('2001:db8::1');
    await h.advance(COALESCE_MS);
    assert.equal(h.sent.length, 3);
    assert.deepEqual(updates(h.last()), [['AAAA', RRClass.NONE, 0, '2001:db8::1']]);
    assert.deepEqual(h.registrar.registeredAddresses(), ['192.0.2.30']);
    assert.ok(h.lines.some((l) => l['msg'] === 'address lost; removing its record'));

    h.registrar.addressRemoved('198.51.100.1');
    await h.advance(COALESCE_MS);
    assert.equal(h.sent.length, 3, 'never registered: nothing to remove');
  });

  it('a burst of events within the window: one update with the net change; add/del/add of a registered address sends nothing', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.registrar.start();
    const v6 = Array.from({ length: 10 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`);
    h.addresses = [{ address: '192.0.2.31', ttl: 3600 }, ...v6.map((address) => ({ address, ttl: 1800 }))];
    // 50 events in one window: each new address announced several times, the old one
    // lost, and NetworkManager-style del/add pairs for addresses that end up present.
    for (let round = 0; round < 4; round++) {
      for (const address of v6) {
        h.registrar.addressAdded({ address, ttl: 1800 - round });
      }
      await h.advance(200);
    }
    for (let i = 0; i < 4; i++) h.registrar.addressRemoved(v6[i]);
    h.registrar.addressRemoved('192.0.2.30');
    h.registrar.addressAdded({ address: '192.0.2.31', ttl: 3600 });
    assert.equal(h.sent.length, 1, 'nothing sent within the window');
    await h.advance(COALESCE_MS);
    assert.equal(h.sent.length, 2, 'one update for the whole burst');
    const u = updates(h.last());
    assert.deepEqual(
      u.filter((x) => x[1] === RRClass.NONE).map((x) => x[3]),
      ['192.0.2.30'],
      'the lost address is removed',
    );
    assert.deepEqual(
      u.filter((x) => x[1] === RRClass.IN).map((x) => x[3]).sort(),
      ['192.0.2.31', ...v6].sort(),
      'every present address is inserted once',
    );

    // add/del/add of registered addresses within one window, and a lifetime-only change: no update.
    h.registrar.addressRemoved('192.0.2.31');
    h.registrar.addressAdded({ address: '192.0.2.31', ttl: 3600 });
    h.registrar.addressAdded({ address: v6[0], ttl: 600 });
    await h.advance(COALESCE_MS * 3);
    assert.equal(h.sent.length, 2);
  });

  it('events in consecutive windows: at most one update per window', async () => {
    const h = new Harness([]);
    await h.registrar.start();
    for (let i = 1; i <= 5; i++) {
      h.addresses = [...h.addresses, { address: `192.0.2.${i}`, ttl: 3600 }];
      h.registrar.addressAdded({ address: `192.0.2.${i}`, ttl: 3600 });
      await h.advance(COALESCE_MS / 2);
    }
    await h.advance(COALESCE_MS);
    const times = h.sent.slice(1).map((x) => x.at);
    assert.equal(times.length, 3);
    for (let i = 1; i < times.length; i++) assert.ok(times[i] - times[i - 1] >= COALESCE_MS, 'at least a window apart');
    assert.equal(h.registrar.registeredAddresses().length, 5);
  });

  it('shutdown sends removals for every registered record, then stops', async () => {
    const h = new Harness([
      { address: '192.0.2.30', ttl: 3600 },
      { address: '2001:db8::30', ttl: 3600 },
    ]);
    await h.registrar.start();
    await h.registrar.shutdown(false);
    assert.equal(h.sent.length, 2);
    const m = h.last();
    assert.deepEqual(updates(m).sort(), [
      ['A', RRClass.NONE, 0, '192.0.2.30'],
      ['AAAA', RRClass.NONE, 0, '2001:db8::30'],
    ]);
    verifySig0(m, { name: NAME, rdata: key.rdata }, Math.floor(h.clock.now() / 1000));
    assert.equal(h.registrar.state, 'stopped');
    assert.deepEqual(h.states, ['stopped']);
    assert.equal(h.clock.pendingTimers, 0);
    await h.advance(3_600_000);
    assert.equal(h.sent.length, 2);
  });

  it('a refused final removal: the state goes to refused, then stopped', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.registrar.start();
    h.behaviour = { rcode: Rcode.NOTAUTH, reason: 'Invalid key for name' };
    await h.registrar.shutdown(false);
    assert.equal(h.sent.length, 2);
    assert.deepEqual(updates(h.last()), [['A', RRClass.NONE, 0, '192.0.2.30']]);
    assert.deepEqual(h.states, ['refused', 'stopped']);
    assert.equal(h.registrar.state, 'stopped');
    assert.deepEqual(h.registrar.registeredAddresses(), []);
    assert.equal(h.clock.pendingTimers, 0);
    await h.registrar.shutdown(false);
    assert.equal(h.sent.length, 2, 'a second shutdown does nothing');
  });

  it('shutdown(keep) sends nothing', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.registrar.start();
    await h.registrar.shutdown(true);
    assert.equal(h.sent.length, 1);
    assert.equal(h.registrar.state, 'stopped');
    assert.equal(h.clock.pendingTimers, 0);
  });

  it('shutdown(keep) still removes what left the host: a removal waiting for its retry, and a loss not flushed yet', async () => {
    const h = new Harness([
      { address: '192.0.2.30', ttl: 3600 },
      { address: '192.0.2.31', ttl: 3600 },
      { address: '192.0.2.32', ttl: 3600 },
    ]);
    await h.registrar.start();
    h.addresses = [{ address: '192.0.2.30', ttl: 3600 }, { address: '192.0.2.32', ttl: 3600 }];
    h.behaviour = 'network-error';
    h.registrar.addressRemoved('192.0.2.31');
    await h.advance(COALESCE_MS);
    assert.equal(h.sent.length, 2, 'the removal failed and waits for its retry');
    h.addresses = [{ address: '192.0.2.30', ttl: 3600 }];
    h.registrar.addressRemoved('192.0.2.32');
    h.behaviour = {};
    await h.registrar.shutdown(true);
    assert.equal(h.sent.length, 3);
    assert.deepEqual(
      updates(h.last()).map((u) => [u[1], u[3]]),
      [
        [RRClass.NONE, '192.0.2.31'],
        [RRClass.NONE, '192.0.2.32'],
      ],
    );
    assert.equal(h.clock.pendingTimers, 0);
  });

  /** Starts shutdown(false) with the server failing; `finish` moves the clock until it is over (bounded). */
  async function failingShutdown(): Promise<{ h: Harness; finish: () => Promise<void> }> {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.registrar.start();
    h.behaviour = 'network-error';
    let done = false;
    const stopping = h.registrar.shutdown(false).then(() => {
      done = true;
    });
    const finish = async (): Promise<void> => {
      for (let i = 0; i < 200 && !done; i++) await h.advance(100);
      await stopping;
    };
    return { h, finish };
  }

  it('shutdown while an insert is in flight: what it registered is removed too', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.registrar.start();
    h.addresses = [...h.addresses, { address: '192.0.2.31', ttl: 3600 }];
    let release: () => void = () => undefined;
    h.hold = new Promise<void>((resolve) => (release = resolve));
    h.registrar.addressAdded({ address: '192.0.2.31', ttl: 3600 });
    h.clock.advance(COALESCE_MS);
    await eventually('the insert in flight', () => h.sent.length, (n) => n === 2, 1000);
    const stopping = h.registrar.shutdown(false);
    h.hold = undefined;
    release();
    await stopping;
    assert.deepEqual(
      updates(h.last()).map((u) => [u[1], u[3]]).sort(),
      [
        [RRClass.NONE, '192.0.2.30'],
        [RRClass.NONE, '192.0.2.31'],
      ],
    );
    assert.equal(h.clock.pendingTimers, 0, 'no refresh armed while stopping');
  });

  it('shutdown retries a failing removal with the back-off until the stop timeout, then gives up saying so', async () => {
    const { h, finish } = await failingShutdown();
    await finish();
    // Attempts at 0, 1, 3 and 7 s; the next (15 s) would pass the 10 s stop timeout.
    assert.deepEqual(
      h.sent.slice(1).map((x) => x.at - h.sent[1].at),
      [0, 1_000, 3_000, 7_000],
    );
    assert.ok(h.lines.some((l) => l['msg'] === 'could not remove records before the stop timeout; they expire with their TTL'));
    assert.equal(h.registrar.state, 'stopped');
  });

  it('shutdown: a removal that fails once is sent again and succeeds', async () => {
    const { h, finish } = await failingShutdown();
    await h.advance(0);
    assert.equal(h.sent.length, 2);
    h.behaviour = {};
    await finish();
    assert.equal(h.sent.length, 3);
    assert.deepEqual(updates(h.last()), [['A', RRClass.NONE, 0, '192.0.2.30']]);
    assert.ok(h.lines.some((l) => l['msg'] === 'records removed'));
  });

  it('a removal that fails on the network is retried if the address is still gone', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.registrar.start();
    h.addresses = [];
    h.behaviour = 'network-error';
    h.registrar.addressRemoved('192.0.2.30');
    await h.advance(COALESCE_MS);
    assert.equal(h.sent.length, 2);
    h.behaviour = {};
    await h.advance(1_000);
    assert.equal(h.sent.length, 3);
    assert.deepEqual(updates(h.last()), [['A', RRClass.NONE, 0, '192.0.2.30']]);
  });
});

describe('Registrar liveness probe', () => {
  const INTERVAL = 15_000;

  /** A registrar probing every INTERVAL whose initial update was answered (TTL 3600). */
  async function probed(addresses: RegistrarAddress[]): Promise<Harness> {
    const h = new Harness(addresses, { probeIntervalMs: INTERVAL });
    h.behaviour = { ttl: 3600 };
    await h.registrar.start();
    return h;
  }

  it('probes every interval and sends nothing while the server answers', async () => {
    const h = await probed([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.advanceBy(60_000, 1_000);
    assert.deepEqual(
      h.probes.map((t) => t - h.sent[0].at),
      [15_000, 30_000, 45_000, 60_000],
    );
    assert.equal(h.sent.length, 1, 'no update beyond the initial one');
    assert.equal(h.registrar.serverDown, false);
  });

  it('a failed probe marks the server down (logged once); back → every current address again with its current TTL', async () => {
    const h = await probed([
        { address: '192.0.2.30', ttl: 3600 },
        { address: '2001:db8::30', ttl: 3600 },
      ]);
    const t0 = h.clock.now();
    h.probeAnswers = false;
    await h.advanceBy(15_000, 500);
    assert.equal(h.registrar.serverDown, true);
    // Probed again after 1, 2, 4, 8 s, then at most every interval.
    await h.advanceBy(60_000, 500);
    const gaps = h.probes.slice(1).map((t, i) => t - (h.probes[i]));
    assert.deepEqual(gaps.slice(0, 6), [1_000, 2_000, 4_000, 8_000, 15_000, 15_000]);
    assert.equal(h.lines.filter((l) => String(l['msg']).includes('server is not answering')).length, 1, 'logged once');
    assert.equal(h.sent.length, 1, 'nothing sent while down');
    // Back, having lost everything; one address changed its TTL, one went away, one is new.
    h.addresses = [
      { address: '192.0.2.30', ttl: 1800 },
      { address: '192.0.2.31', ttl: 3600 },
    ];
    h.probeAnswers = true;
    await h.advanceBy(15_000, 500);
    assert.equal(h.registrar.serverDown, false);
    assert.equal(h.sent.length, 2, 'one re-registration update');
    assert.deepEqual(updates(h.last()), [
      ['A', RRClass.IN, 1800, '192.0.2.30'],
      ['A', RRClass.IN, 3600, '192.0.2.31'],
    ]);
    assert.ok(h.lines.some((l) => l['msg'] === 'server is back; re-registering 2 addresses'));
    assert.deepEqual(h.registrar.registeredAddresses().sort(), ['192.0.2.30', '192.0.2.31']);
    assert.ok(h.clock.now() - t0 < 120_000);
    // Up again: probes at the normal interval, no further updates.
    const before = h.probes.length;
    await h.advanceBy(45_000, 1_000);
    assert.equal(h.probes.length - before, 3);
    assert.equal(h.sent.length, 2);
  });

  it('no storm: retries queued during the outage fold into the one re-registration', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }], { probeIntervalMs: INTERVAL });
    h.behaviour = { ttl: 20 }; // refresh every 10 s
    await h.registrar.start();
    h.probeAnswers = false;
    h.behaviour = 'network-error';
    await h.advanceBy(10_000, 500); // the refresh fails → retry queued, server down
    assert.equal(h.registrar.serverDown, true);
    const failedSends = h.sent.length;
    assert.ok(failedSends >= 2);
    // The retry timer keeps trying while down; the server comes back between two attempts.
    h.behaviour = { ttl: 20 };
    h.probeAnswers = true;
    await h.advanceBy(2_000, 100);
    assert.equal(h.registrar.serverDown, false);
    const after = h.sent.slice(failedSends);
    assert.equal(after.length, 1, 'exactly one update when back');
    assert.deepEqual(updates(h.last()), [['A', RRClass.IN, 3600, '192.0.2.30']]);
    // …and then only the regular refresh at half the TTL, no retry left over.
    const backAt = h.last() === after[0].msg ? after[0].at : 0;
    await h.advance(backAt + 10_000 - 1 - h.clock.now());
    assert.equal(h.sent.length, failedSends + 1);
    await h.advance(1);
    assert.equal(h.sent.length, failedSends + 2);
  });

  it('a network error on an update also marks the server down; the next answer re-registers everything', async () => {
    const h = await probed([
        { address: '192.0.2.30', ttl: 3600 },
        { address: '192.0.2.31', ttl: 3600 },
      ]);
    h.behaviour = 'network-error';
    h.addresses = [...h.addresses, { address: '192.0.2.32', ttl: 3600 }];
    h.registrar.addressAdded({ address: '192.0.2.32', ttl: 3600 });
    await h.advance(COALESCE_MS);
    assert.equal(h.registrar.serverDown, true);
    h.behaviour = { ttl: 3600 };
    await h.advanceBy(1_500, 100); // the probe at +1 s answers
    assert.equal(h.registrar.serverDown, false);
    const all = h.sent.slice(2).map((s) => updates(s.msg).map((u) => u[3]));
    assert.deepEqual(all, [['192.0.2.30', '192.0.2.31', '192.0.2.32']]);
  });

  it('stops probing on shutdown and after a refusal', async () => {
    const h = await probed([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.registrar.shutdown(true);
    await h.advanceBy(60_000, 5_000);
    assert.equal(h.probes.length, 0);
    const r = new Harness([{ address: '192.0.2.30', ttl: 3600 }], { probeIntervalMs: INTERVAL });
    r.behaviour = { rcode: Rcode.REFUSED, reason: 'no' };
    await r.registrar.start();
    await r.advanceBy(60_000, 5_000);
    assert.equal(r.probes.length, 0);
  });

  it('a restart between two probes (every probe answered): the new identifier re-registers everything at the next probe', async () => {
    const h = await probed([
        { address: '192.0.2.30', ttl: 3600 },
        { address: '2001:db8::30', ttl: 3600 },
      ]);
    await h.advanceBy(30_000, 1_000); // two probes answered by the first start
    assert.equal(h.probes.length, 2);
    assert.equal(h.sent.length, 1);
    // The daemon restarts (and loses our records) between the probes at +30 s and +45 s.
    await h.advance(5_000);
    h.instance = 'second-start';
    await h.advanceBy(9_000, 1_000);
    assert.equal(h.sent.length, 1, 'nothing before the next probe');
    await h.advanceBy(1_000, 100);
    assert.equal(h.probes.length, 3);
    assert.equal(h.sent.length, 2, 'one re-registration at the probe that saw the restart');
    assert.equal(h.sent[1].at, h.probes[2]);
    assert.deepEqual(updates(h.last()), [
      ['A', RRClass.IN, 3600, '192.0.2.30'],
      ['AAAA', RRClass.IN, 3600, '2001:db8::30'],
    ]);
    assert.equal(h.registrar.serverDown, false);
    assert.ok(h.lines.some((l) => l['msg'] === 'server restarted; re-registering 2 addresses'));
    const warned = h.lines.find((l) => String(l['msg']).startsWith('server restarted since the last probe'));
    assert.deepEqual([warned?.['before'], warned?.['now']], ['first-start', 'second-start']);
    // The same identifier afterwards: nothing more.
    await h.advanceBy(45_000, 1_000);
    assert.equal(h.sent.length, 2);
  });

  it('an identifier appearing or disappearing counts as a restart; the same one (or none twice) does not', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 3600 }], { probeIntervalMs: INTERVAL });
    h.behaviour = { ttl: 3600 };
    h.instance = undefined; // an original daemon
    await h.registrar.start();
    await h.advanceBy(30_000, 1_000);
    assert.equal(h.sent.length, 1, 'no identifier twice: no restart');
    h.instance = 'nsregd-now'; // replaced by nsregd
    await h.advanceBy(15_000, 1_000);
    assert.equal(h.sent.length, 2);
    h.instance = undefined; // and back
    await h.advanceBy(15_000, 1_000);
    assert.equal(h.sent.length, 3);
    await h.advanceBy(30_000, 1_000);
    assert.equal(h.sent.length, 3);
  });

  it('after an outage the answering probe sets the identifier: no second re-registration', async () => {
    const h = await probed([{ address: '192.0.2.30', ttl: 3600 }]);
    await h.advanceBy(15_000, 1_000);
    h.probeAnswers = false;
    await h.advanceBy(15_000, 500);
    assert.equal(h.registrar.serverDown, true);
    h.instance = 'after-outage';
    h.probeAnswers = true;
    await h.advanceBy(15_000, 500);
    assert.equal(h.sent.length, 2, 'one re-registration');
    await h.advanceBy(45_000, 1_000);
    assert.equal(h.sent.length, 2);
    assert.equal(h.lines.filter((l) => String(l['msg']).startsWith('server restarted')).length, 0);
  });
});

describe('Registrar key claim refresh', () => {
  const KEY = 3600;

  it('no addresses: a KEY-only update at half the key TTL, again and again', async () => {
    const h = new Harness([], { keyTtl: KEY });
    await h.registrar.start();
    assert.equal(h.sent.length, 1);
    assert.deepEqual(h.sent[0].msg.authorities, [], 'the claim itself carries no record');
    await h.advance(KEY * 500 - 1);
    assert.equal(h.sent.length, 1);
    await h.advance(1);
    assert.equal(h.sent.length, 2);
    const m = h.last();
    assert.deepEqual(m.authorities, [], 'no record in the refresh');
    assert.deepEqual(m.additionals.map((rr) => [rr.type, rr.ttl]), [['KEY', KEY], ['SIG', 0]]);
    assert.equal(keyRecords(m)[0]?.ttl, KEY);
    assert.equal(verifySig0(m, { name: NAME, rdata: key.rdata }, Math.floor(h.clock.now() / 1000)).sig.signerName, NAME);
    await h.advance(KEY * 500);
    assert.equal(h.sent.length, 3);
    assert.deepEqual(h.sent.map((s) => s.at - h.sent[0].at), [0, KEY * 500, KEY * 1000]);
    assert.ok(h.lines.some((l) => String(l['msg']).startsWith('refreshing the key claim')));
  });

  it('record refreshes keep the key alive on their own: no extra update', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 600 }], { keyTtl: KEY });
    h.behaviour = { ttl: 600 };
    await h.registrar.start();
    await h.advanceBy(KEY * 2000, 60_000);
    // One refresh every 300 s, each with the address; none KEY-only.
    assert.equal(h.sent.length, 1 + (KEY * 2) / 300);
    assert.ok(h.sent.every((s) => s.msg.authorities.length === 1));
  });

  it('a key refresh that fails is retried', async () => {
    const h = new Harness([], { keyTtl: KEY });
    await h.registrar.start();
    h.behaviour = { rcode: Rcode.SERVFAIL };
    await h.advance(KEY * 500);
    assert.equal(h.sent.length, 2);
    h.behaviour = {};
    await h.advance(1_000);
    assert.equal(h.sent.length, 3, 'retried after the back-off');
    assert.deepEqual(h.last().authorities, []);
    await h.advance(KEY * 500 - 1);
    assert.equal(h.sent.length, 3, 'the next one half a key TTL after the accepted retry');
    await h.advance(1);
    assert.equal(h.sent.length, 4);
  });
});

describe('Registrar under a failover owner', () => {
  it('reports the server\'s health: NOERROR true; no answer, SERVFAIL and an unanswered probe false; REFUSED nothing', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 600 }], { probeIntervalMs: 10_000 });
    await h.registrar.start();
    assert.deepEqual(h.health, [true]);
    h.behaviour = { rcode: Rcode.SERVFAIL, reason: 'Shared store unavailable, try another server' };
    await h.advance(300_000);
    assert.deepEqual(h.health.slice(-1), [false]);
    h.behaviour = 'network-error';
    h.health.length = 0;
    await h.advance(1_000);
    assert.deepEqual(h.health, [false]);
    h.probeAnswers = false;
    h.health.length = 0;
    await h.advance(2_000);
    assert.ok(h.health.length > 0 && h.health.every((x) => !x), JSON.stringify(h.health));
    h.behaviour = { rcode: Rcode.REFUSED };
    h.probeAnswers = true;
    h.health.length = 0;
    await h.advanceBy(20_000, 1_000);
    assert.equal(h.registrar.state, 'refused');
    assert.deepEqual(h.health, [], 'a refusal is an answer, not a server failure');
  });

  it('a delayed start sends, probes and gathers nothing until the delay ends; then every current address in one update', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 600 }], { probeIntervalMs: 1_000 });
    await h.registrar.start(5_000);
    assert.equal(h.registrar.begun, false);
    h.registrar.addressAdded({ address: '192.0.2.31', ttl: 600 });
    h.addresses.push({ address: '192.0.2.31', ttl: 600 });
    h.registrar.networkChanged();
    await h.advanceBy(4_999, 500);
    assert.deepEqual(h.sent, []);
    assert.deepEqual(h.probes, []);
    await h.advance(1);
    assert.equal(h.registrar.begun, true);
    assert.equal(h.sent.length, 1);
    assert.deepEqual(updates(h.last()).map((u) => u[3]), ['192.0.2.30', '192.0.2.31']);
    await h.advance(1_000);
    assert.equal(h.probes.length, 1, 'probing starts with the registration');
  });

  it('a delayed start cut short by shutdown sends nothing', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 600 }]);
    await h.registrar.start(5_000);
    await h.registrar.shutdown(false);
    await h.advance(10_000);
    assert.deepEqual(h.sent, []);
    assert.equal(h.registrar.state, 'stopped');
  });

  it('abandon(): stops at once, removes nothing, and ignores the answer to an update in flight', async () => {
    const h = new Harness([{ address: '192.0.2.30', ttl: 600 }], { probeIntervalMs: 1_000 });
    await h.registrar.start();
    let release: () => void = () => undefined;
    h.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    h.behaviour = { rcode: Rcode.REFUSED };
    h.clock.advance(300_000);
    await eventually('the refresh is in flight', () => h.sent.length, (n) => n === 2, 2_000);
    assert.deepEqual(h.registrar.abandon(), ['192.0.2.30'], 'what the site may hold on its account');
    assert.equal(h.registrar.state, 'stopped');
    assert.deepEqual(h.registrar.abandon(), [], 'once');
    release();
    await h.registrar.idle();
    assert.equal(h.registrar.state, 'stopped', 'the refusal that arrived afterwards changes nothing');
    assert.deepEqual(h.registrar.registeredAddresses(), []);
    const probes = h.probes.length;
    await h.advanceBy(600_000, 10_000);
    assert.equal(h.sent.length, 2, 'nothing more sent: no removal, no refresh');
    assert.equal(h.probes.length, probes, 'no more probes');
    assert.deepEqual(h.states, ['stopped']);
  });
});
