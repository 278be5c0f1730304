import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NsregServer, QueryFn } from '../../../src/client/discover.js';
import { MAX_DISCOVERED_ZONES, ZoneLocator } from '../../../src/client/locator.js';
import { Rcode } from '../../../src/dns/constants.js';
import { TransportError } from '../../../src/dns/errors.js';
import { answer, ptr, srv } from '../../helpers/dns-answers.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { logSink } from '../../helpers/log-sink.js';

/** The DNS as the test describes it: SRV targets (IP literals) per zone, browse answers per domain, or an outage. */
class World {
  readonly servers = new Map<string, { target: string; port: number }>();
  readonly browse = new Map<string, string[]>();
  down = false;
  noResolver = false;
  readonly asked: string[] = [];

  readonly query: QueryFn = async (name, type) => {
    this.asked.push(`${name} ${type}`);
    if (this.down) throw new TransportError('timeout', 'no reply');
    if (type === 'PTR') {
      const zones = this.browse.get(name.replace(/^r\._dns-sd\._udp\./, '')) ?? [];
      return answer(name, type, zones.map((z) => ptr(name, z)), zones.length === 0 ? Rcode.NXDOMAIN : Rcode.NOERROR);
    }
    const s = this.servers.get(name.replace(/^_nsreg\._tcp\./, ''));
    return s === undefined ? answer(name, type, [], Rcode.NXDOMAIN) : answer(name, type, [srv(name, s.target, s.port)]);
  };
}

function locator(world: World, opts: { zones?: string[]; discover?: boolean; networks?: Array<{ address: string; prefixLength: number }> } = {}) {
  const clock = new FakeClock();
  const found: Array<{ at: number; server: NsregServer }> = [];
  const { logger, lines } = logSink();
  const l = new ZoneLocator({
    zones: opts.zones ?? [],
    discover: opts.discover ?? false,
    label: 'pc',
    query: async () => {
      if (world.noResolver) throw new Error('/etc/resolv.conf: no nameserver line');
      return world.query;
    },
    networks: () => opts.networks ?? [],
    clock,
    logger,
    discoveryRetryDelayMs: 500,
    onServers: (servers) => {
      // One SRV record per zone in this world: one server each.
      assert.equal(servers.length, 1);
      const server = servers[0];
      assert.ok(server);
      found.push({ at: clock.now() - start, server });
    },
  });
  const start = clock.now();
  /** Moves the fake clock in steps, letting each round finish. */
  const advance = async (ms: number, step = 250): Promise<void> => {
    for (let t = 0; t < ms; t += step) {
      clock.advance(Math.min(step, ms - t));
      await l.idle();
    }
  };
  return { l, clock, found, lines, advance };
}

const where = (s: NsregServer): string => `${s.zone} ${s.host}:${s.port} ${s.name}`;

describe('ZoneLocator', () => {
  it('reports each zone\'s server; a zone without one is looked up again with a doubling, capped back-off until it has one', async () => {
    const world = new World();
    world.servers.set('a.example.', { target: '192.0.2.53.', port: 5300 });
    const t = locator(world, { zones: ['a.example.', 'b.example.'] });
    t.l.start();
    await t.l.idle();
    assert.deepEqual(t.found.map((f) => where(f.server)), ['a.example. 192.0.2.53:5300 pc.a.example.']);
    // Retries at +2, +6, +14, +30, +62, +122 s (2 s doubling, capped at 60 s), asking only for b.
    world.asked.length = 0;
    await t.advance(122_000);
    assert.deepEqual(
      world.asked,
      Array.from({ length: 6 }, () => '_nsreg._tcp.b.example. SRV'),
    );
    world.servers.set('b.example.', { target: '192.0.2.54.', port: 53 });
    await t.advance(60_000);
    assert.deepEqual(t.found.map((f) => where(f.server)), ['a.example. 192.0.2.53:5300 pc.a.example.', 'b.example. 192.0.2.54:53 pc.b.example.']);
    assert.equal(t.found[1]?.at, 182_000);
    // Every zone has its server: nothing more is asked.
    world.asked.length = 0;
    await t.advance(600_000, 10_000);
    assert.deepEqual(world.asked, []);
    assert.equal(t.clock.pendingTimers, 0);
  });

  it('no DNS server known yet (resolv.conf without nameserver) or no answers: keeps trying, never gives up', async () => {
    const world = new World();
    world.noResolver = true;
    world.servers.set('a.example.', { target: '192.0.2.53.', port: 53 });
    const t = locator(world, { zones: ['a.example.'] });
    t.l.start();
    await t.advance(10_000);
    assert.ok(t.lines.some((l) => l['msg'] === 'no DNS server to look up zones with'));
    world.noResolver = false;
    world.down = true;
    await t.advance(60_000);
    assert.deepEqual(t.found, []);
    world.down = false;
    await t.advance(60_000);
    assert.equal(t.found.length, 1);
  });

  it('a network change looks everything up again at once: discovery and every zone, the same server reported again', async () => {
    const world = new World();
    world.servers.set('a.example.', { target: '192.0.2.53.', port: 53 });
    world.browse.set('0.2.0.192.in-addr.arpa.', ['d.example.']);
    world.servers.set('d.example.', { target: '192.0.2.99.', port: 53 });
    const networks: Array<{ address: string; prefixLength: number }> = [];
    const t = locator(world, { zones: ['a.example.'], discover: true, networks });
    t.l.start();
    await t.l.idle();
    // local. and home.arpa. answer (NXDOMAIN): discovery is complete, with nothing found.
    assert.deepEqual(t.found.map((f) => f.server.zone), ['a.example.']);
    assert.deepEqual(t.l.zones, ['a.example.']);
    assert.equal(t.clock.pendingTimers, 0);

    // The host moves: a prefix whose reverse browse domain names another zone, and a's server moved.
    networks.push({ address: '192.0.2.10', prefixLength: 24 });
    world.servers.set('a.example.', { target: '198.51.100.53.', port: 53 });
    world.asked.length = 0;
    t.l.networkChanged();
    await t.l.idle();
    assert.ok(world.asked.includes('r._dns-sd._udp.0.2.0.192.in-addr.arpa. PTR'));
    assert.deepEqual(t.l.zones, ['a.example.', 'd.example.']);
    assert.deepEqual(
      t.found.slice(1).map((f) => where(f.server)),
      ['a.example. 198.51.100.53:53 pc.a.example.', 'd.example. 192.0.2.99:53 pc.d.example.'],
    );
  });

  it('discovery that finds nothing yet is tried again; a network change while a round runs is carried out after it', async () => {
    const world = new World();
    const t = locator(world, { discover: true });
    t.l.start();
    await t.l.idle();
    assert.ok(t.lines.some((l) => l['msg'] === 'no zone found yet; looking again'));
    world.browse.set('local.', ['late.example.']);
    world.servers.set('late.example.', { target: '192.0.2.1.', port: 53 });
    await t.advance(2_000);
    assert.deepEqual(t.found.map((f) => f.server.zone), ['late.example.']);

    // Two requests during one round: one more round, not two.
    world.asked.length = 0;
    t.l.networkChanged();
    t.l.networkChanged();
    t.l.networkChanged();
    await t.l.idle();
    assert.equal(world.asked.filter((q) => q === '_nsreg._tcp.late.example. SRV').length, 2);
  });

  it('close stops every retry', async () => {
    const world = new World();
    const t = locator(world, { zones: ['a.example.'] });
    t.l.start();
    await t.l.idle();
    assert.equal(t.clock.pendingTimers, 1);
    t.l.close();
    world.asked.length = 0;
    await t.advance(300_000, 10_000);
    assert.deepEqual(world.asked, []);
  });

  it('discovery adds at most MAX_DISCOVERED_ZONES zones over the whole run, however many a resolver names', async () => {
    const world = new World();
    const many = (from: number): string[] => Array.from({ length: 25 }, (_, i) => `z${from + i}.example.`);
    world.browse.set('local.', many(0));
    const t = locator(world, { zones: ['configured.example.'], discover: true });
    t.l.start();
    await t.l.idle();
    world.browse.set('local.', many(100));
    t.l.networkChanged();
    await t.l.idle();
    assert.equal(t.l.zones.length, 1 + MAX_DISCOVERED_ZONES);
    assert.equal(t.l.zones[0], 'configured.example.');
    assert.ok(t.lines.some((l) => l['msg'] === 'discovery found more zones than nsregc takes; ignoring the rest'));
    t.l.close();
  });
});
