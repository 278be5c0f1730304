/**
 * ZoneRegistration (src/client/failover.ts): one zone, several nsregd
 * servers from its SRV records, real Registrars talking to fake servers
 * on a fake clock.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { NsregServer } from '../../../src/client/discover.js';
import { ZoneRegistration, type DaemonIdentity } from '../../../src/client/failover.js';
import type { ClientKey } from '../../../src/client/keys.js';
import { Registrar } from '../../../src/client/registrar.js';
import type { RegistrarAddress } from '../../../src/client/update-message.js';
import { RRClass, Rcode } from '../../../src/dns/constants.js';
import { TransportError } from '../../../src/dns/errors.js';
import { decodeMessage } from '../../../src/dns/message.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { goNsregcKey } from '../../helpers/fixtures.js';
import { logSink as sink } from '../../helpers/log-sink.js';
import { updateReply } from '../../helpers/update-replies.js';

const ZONE = 'dynamic.example.org.';
const NAME = `foxtrot.${ZONE}`;
const PROBE_MS = 15_000;

let key: ClientKey;
before(async () => {
  key = await goNsregcKey();
});

const server = (host: string, priority = 0): NsregServer => ({ zone: ZONE, name: NAME, target: `${host}.`, host, port: 53, priority });

/** How one fake daemon behaves: what updates get, whether probes are answered, what it says of itself. */
interface FakeDaemon {
  updates: 'ok' | 'down' | 'servfail' | 'refused';
  probes: boolean;
  instance: string | undefined;
  site: string | undefined;
}

/** One update as a server saw it. */
interface Seen {
  readonly at: number;
  readonly server: string;
  readonly inserts: string[];
  readonly removals: string[];
}

class World {
  readonly clock = new FakeClock();
  readonly daemons = new Map<string, FakeDaemon>();
  readonly seen: Seen[] = [];
  readonly lines: Array<Record<string, unknown>>;
  readonly zone: ZoneRegistration;
  addresses: RegistrarAddress[] = [
    { address: '192.0.2.30', ttl: 600 },
    { address: '2001:db8::30', ttl: 600 },
  ];
  private readonly t0: number;

  constructor(servers: NsregServer[], daemons: Record<string, Partial<FakeDaemon>>) {
    for (const s of servers) {
      this.daemons.set(s.host, { updates: 'ok', probes: true, instance: `start-of-${s.host}`, site: undefined, ...daemons[s.host] });
    }
    const { logger, lines } = sink();
    this.lines = lines;
    this.t0 = this.clock.now();
    let id = 1;
    this.zone = new ZoneRegistration({
      servers,
      clock: this.clock,
      logger,
      identify: (s) => this.identify(s),
      makeRegistrar: (s, hooks) =>
        new Registrar({
          zone: s.zone,
          name: s.name,
          server: s.host,
          key,
          keyTtl: 86400,
          addresses: { list: async () => [...this.addresses] },
          send: async (update) => {
            const msg = decodeMessage(update);
            const d = this.daemon(s.host);
            const addresses = (cls: number): string[] =>
              msg.authorities.flatMap((rr) => ((rr.type === 'A' || rr.type === 'AAAA') && rr.class === cls && rr.data !== null ? [rr.data] : []));
            this.seen.push({ at: this.clock.now() - this.t0, server: s.host, inserts: addresses(RRClass.IN), removals: addresses(RRClass.NONE) });
            if (d.updates === 'down') throw new TransportError('connect', 'connection refused');
            const rcode = { ok: Rcode.NOERROR, servfail: Rcode.SERVFAIL, refused: Rcode.REFUSED }[d.updates];
            return updateReply(msg, { rcode, ...(d.updates === 'servfail' ? { reason: 'Shared store unavailable, try another server' } : {}) }, NAME);
          },
          probe: hooks.probe,
          onServerHealth: hooks.onServerHealth,
          probeIntervalMs: PROBE_MS,
          clock: this.clock,
          logger,
          randomId: () => id++,
        }),
    });
  }

  daemon(host: string): FakeDaemon {
    const d = this.daemons.get(host);
    assert.ok(d, host);
    return d;
  }

  identify(s: NsregServer): Promise<DaemonIdentity> {
    const d = this.daemon(s.host);
    if (!d.probes || d.updates === 'down') return Promise.reject(new TransportError('connect', 'connection refused'));
    return Promise.resolve({ instance: d.instance, site: d.site });
  }

  /**
   * Settles what is under way: microtasks, then the queue of the registrar
   * in use (not the zone's idle(): a server left behind may be waiting on
   * the fake clock to retry its removals).
   */
  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      await this.zone.registrar.idle();
    }
  }

  /** Moves the fake clock in steps, settling after each. */
  async advance(ms: number, step = 250): Promise<void> {
    await this.settle();
    for (let t = 0; t < ms; t += step) {
      this.clock.advance(Math.min(step, ms - t));
      await this.settle();
    }
  }

  /** [time, server] of every update with inserts. */
  insertsAt(): Array<[number, string]> {
    return this.seen.filter((s) => s.inserts.length > 0).map((s) => [s.at, s.server]);
  }

  /** The addresses whose removal `host` was sent (each once, however often it was retried). */
  removalsAt(host: string): string[] {
    return [...new Set(this.seen.filter((s) => s.server === host).flatMap((s) => s.removals))];
  }

  msgs(text: string): number {
    return this.lines.filter((l) => String(l['msg']).includes(text)).length;
  }
}

describe('ZoneRegistration: failover between a zone\'s servers', () => {
  it('a first server that does not answer: the next one gets the full registration at once, and keeps it (no move back)', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2')], { '192.0.2.1': { updates: 'down' } });
    await w.settle();
    assert.deepEqual(w.insertsAt(), [
      [0, '192.0.2.1'],
      [0, '192.0.2.2'],
    ]);
    assert.deepEqual(w.seen.at(-1)?.inserts.sort(), ['192.0.2.30', '2001:db8::30']);
    assert.equal(w.zone.server.host, '192.0.2.2');
    assert.equal(w.zone.registrar.state, 'running');
    assert.deepEqual(w.zone.registrar.registeredAddresses().sort(), ['192.0.2.30', '2001:db8::30']);
    assert.equal(w.msgs('registering with the next of the zone\'s servers'), 1);

    // The first server is back: the client stays where it is; refreshes (half the 600 s TTL) go to the second.
    w.daemon('192.0.2.1').updates = 'ok';
    w.seen.length = 0;
    await w.advance(700_000, 5_000);
    assert.ok(w.seen.length >= 2);
    assert.ok(w.seen.every((s) => s.server === '192.0.2.2'), JSON.stringify(w.seen));
    assert.equal(w.msgs('registering with the next'), 1);
  });

  it('SERVFAIL (shared store unavailable) moves on; REFUSED is an answer about the request and does not', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2')], { '192.0.2.1': { updates: 'servfail' } });
    await w.settle();
    assert.deepEqual(w.insertsAt(), [
      [0, '192.0.2.1'],
      [0, '192.0.2.2'],
    ]);
    assert.equal(w.zone.server.host, '192.0.2.2');

    const r = new World([server('192.0.2.1'), server('192.0.2.2')], { '192.0.2.1': { updates: 'refused' } });
    await r.advance(60_000, 5_000);
    assert.deepEqual(r.insertsAt(), [[0, '192.0.2.1']]);
    assert.equal(r.zone.server.host, '192.0.2.1');
    assert.equal(r.zone.registrar.state, 'refused');
  });

  it('every server failing: moves within a round at once, one back-off (1 s, 2 s, 4 s …) between rounds, reset by NOERROR', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2'), server('192.0.2.3')], {
      '192.0.2.1': { updates: 'down' },
      '192.0.2.2': { updates: 'servfail' },
      '192.0.2.3': { updates: 'down' },
    });
    await w.advance(7_000, 250);
    assert.deepEqual(w.insertsAt(), [
      [0, '192.0.2.1'],
      [0, '192.0.2.2'],
      [0, '192.0.2.3'],
      [1_000, '192.0.2.1'],
      [1_000, '192.0.2.2'],
      [1_000, '192.0.2.3'],
      [3_000, '192.0.2.1'],
      [3_000, '192.0.2.2'],
      [3_000, '192.0.2.3'],
      [7_000, '192.0.2.1'],
      [7_000, '192.0.2.2'],
      [7_000, '192.0.2.3'],
    ]);
    assert.equal(w.msgs('every nsregd server of the zone failed'), 4, 'rounds ended at 0, 1, 3 and 7 s');
    // The second server recovers: it takes the registration at the next round (after 8 s), and the back-off starts over.
    w.daemon('192.0.2.2').updates = 'ok';
    w.seen.length = 0;
    await w.advance(8_000, 250);
    assert.deepEqual(w.insertsAt(), [
      [15_000, '192.0.2.1'],
      [15_000, '192.0.2.2'],
    ]);
    assert.equal(w.zone.server.host, '192.0.2.2');
    w.daemon('192.0.2.2').updates = 'down';
    w.seen.length = 0;
    await w.advance(1_250, 250);
    // The refresh is far off: the next failure is the probe at +15 s; then 3 and 1 at once, and the first back-off step (1 s) again.
    await w.advance(PROBE_MS, 250);
    assert.deepEqual(w.insertsAt(), [
      [30_000, '192.0.2.3'],
      [30_000, '192.0.2.1'],
      [31_000, '192.0.2.2'],
      [31_000, '192.0.2.3'],
      [31_000, '192.0.2.1'],
    ]);
  });

  it('a server that stops answering probes is left for the next one', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2')], {});
    await w.settle();
    assert.deepEqual(w.insertsAt(), [[0, '192.0.2.1']]);
    w.daemon('192.0.2.1').probes = false;
    await w.advance(PROBE_MS, 1_000);
    assert.deepEqual(w.insertsAt(), [
      [0, '192.0.2.1'],
      [PROBE_MS, '192.0.2.2'],
    ]);
    assert.equal(w.zone.server.host, '192.0.2.2');
  });

  it('same site (both answer nsregd-site=lab): nothing is removed at the server left; the new one gets everything', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2')], {
      '192.0.2.1': { site: 'lab', instance: 'one' },
      '192.0.2.2': { site: 'lab', instance: 'two' },
    });
    await w.settle();
    // The store behind the first daemon goes away; it still answers probes (its SRV self-answer needs no store).
    w.daemon('192.0.2.1').updates = 'servfail';
    const first = w.zone.registrar;
    await w.advance(300_000, 5_000);
    assert.equal(w.zone.server.host, '192.0.2.2');
    assert.deepEqual(w.seen.filter((s) => s.server === '192.0.2.2').map((s) => s.inserts.sort())[0], ['192.0.2.30', '2001:db8::30']);
    assert.deepEqual(w.removalsAt('192.0.2.1'), []);
    assert.equal(first.state, 'stopped');
    assert.equal(w.msgs('the previous nsregd server is of the same site'), 1);
    assert.equal(w.msgs('removing our records there'), 0);
    // Later updates go to the second server only: the first registrar is gone, with its timers.
    w.seen.length = 0;
    await w.advance(600_000, 10_000);
    assert.ok(w.seen.length > 0);
    assert.ok(w.seen.every((s) => s.server === '192.0.2.2'));
  });

  it('same site, the old daemon dead: its site is the one its last probe answered', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2')], {
      '192.0.2.1': { site: 'lab' },
      '192.0.2.2': { site: 'lab' },
    });
    await w.advance(PROBE_MS, 1_000);
    w.daemon('192.0.2.1').updates = 'down';
    await w.advance(PROBE_MS, 1_000);
    assert.equal(w.zone.server.host, '192.0.2.2');
    assert.equal(w.msgs('the previous nsregd server is of the same site'), 1);
    assert.deepEqual(w.removalsAt('192.0.2.1'), []);
  });

  it('same site: the removal the old server still owed (an address that left) is sent to the new one', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2')], {
      '192.0.2.1': { site: 'lab' },
      '192.0.2.2': { site: 'lab' },
    });
    await w.advance(PROBE_MS, 1_000);
    w.daemon('192.0.2.1').updates = 'down';
    w.addresses = w.addresses.filter((a) => a.address !== '2001:db8::30');
    w.zone.registrar.addressRemoved('2001:db8::30');
    await w.advance(2_000);
    assert.equal(w.zone.server.host, '192.0.2.2');
    assert.deepEqual(w.removalsAt('192.0.2.1'), ['2001:db8::30'], 'tried at the first, which did not answer');
    assert.deepEqual(w.removalsAt('192.0.2.2'), ['2001:db8::30']);
    assert.deepEqual(w.insertsAt().at(-1), [PROBE_MS + 1_000, '192.0.2.2']);
    assert.deepEqual(w.seen.filter((x) => x.server === '192.0.2.2').flatMap((x) => x.inserts), ['192.0.2.30']);
    assert.deepEqual(w.zone.registrar.registeredAddresses(), ['192.0.2.30']);
  });

  it('other sites, or none: retired as today — distinct start-up identifiers remove our records at the old server', async () => {
    for (const sites of [
      ['east', 'west'],
      [undefined, undefined],
      ['east', undefined],
    ]) {
      const w = new World([server('192.0.2.1'), server('192.0.2.2')], {
        '192.0.2.1': { site: sites[0], instance: 'one' },
        '192.0.2.2': { site: sites[1], instance: 'two' },
      });
      await w.settle();
      w.daemon('192.0.2.1').updates = 'servfail';
      await w.advance(300_000, 5_000);
      assert.equal(w.zone.server.host, '192.0.2.2');
      assert.deepEqual(w.removalsAt('192.0.2.1').sort(), ['192.0.2.30', '2001:db8::30'], String(sites));
      assert.equal(w.msgs('the previous nsregd server is another daemon; removing our records there'), 1);
    }
  });

  it('other sites, the old server out of reach: only records of addresses that left are removed there', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2')], {});
    await w.settle();
    w.daemon('192.0.2.1').updates = 'down';
    await w.advance(300_000, 5_000);
    assert.equal(w.zone.server.host, '192.0.2.2');
    assert.deepEqual(w.removalsAt('192.0.2.1'), []);
    assert.equal(w.msgs('may be the same daemon or is out of reach'), 1);
  });

  it('one server: no failover, the registrar retries by itself as before', async () => {
    const w = new World([server('192.0.2.1')], { '192.0.2.1': { updates: 'down' } });
    await w.advance(3_000, 250);
    assert.deepEqual(w.insertsAt(), [
      [0, '192.0.2.1'],
      [1_000, '192.0.2.1'],
      [3_000, '192.0.2.1'],
    ]);
    assert.equal(w.msgs('next of the zone'), 0);
  });

  it('a new look-up starts from the SRV order again; the server in use stays when it is among the lowest priority', async () => {
    const w = new World([server('192.0.2.1', 0), server('192.0.2.2', 10)], {
      '192.0.2.1': { updates: 'down', site: 'lab' },
      '192.0.2.2': { site: 'lab' },
    });
    await w.settle();
    assert.equal(w.zone.server.host, '192.0.2.2');
    // The host moved; the first server answers again and comes first in the new order.
    w.daemon('192.0.2.1').updates = 'ok';
    w.seen.length = 0;
    w.zone.update([server('192.0.2.1', 0), server('192.0.2.2', 10)]);
    await w.settle();
    assert.equal(w.zone.server.host, '192.0.2.1');
    assert.deepEqual(w.insertsAt(), [[0, '192.0.2.1']]);
    assert.deepEqual(w.removalsAt('192.0.2.2'), [], 'same site: nothing removed at the server left');

    // Equal priorities, the other one drawn first: the one in use stays, nothing is sent.
    w.seen.length = 0;
    w.zone.update([server('192.0.2.2', 0), server('192.0.2.1', 0)]);
    await w.settle();
    assert.equal(w.zone.server.host, '192.0.2.1');
    assert.deepEqual(w.zone.candidates.map((s) => s.host), ['192.0.2.1', '192.0.2.2']);
    assert.deepEqual(w.seen, []);
  });

  it('a look-up while waiting out the back-off starts at once from the first server', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2')], {
      '192.0.2.1': { updates: 'down' },
      '192.0.2.2': { updates: 'down' },
    });
    await w.settle();
    assert.equal(w.insertsAt().length, 2);
    w.daemon('192.0.2.1').updates = 'ok';
    w.zone.update([server('192.0.2.1'), server('192.0.2.2')]);
    await w.settle();
    assert.deepEqual(w.insertsAt().at(-1), [0, '192.0.2.1']);
    assert.equal(w.zone.registrar.state, 'running');
    // The waiting registrar was dropped: nothing more goes out at 1 s.
    await w.advance(2_000);
    assert.equal(w.insertsAt().length, 3);
  });

  it('shutdown removes our records from the server in use only', async () => {
    const w = new World([server('192.0.2.1'), server('192.0.2.2')], { '192.0.2.1': { updates: 'down' } });
    await w.settle();
    await w.zone.shutdown(false);
    assert.deepEqual(w.removalsAt('192.0.2.2').sort(), ['192.0.2.30', '2001:db8::30']);
    assert.deepEqual(w.removalsAt('192.0.2.1'), []);
  });
});
