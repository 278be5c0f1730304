import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import { setImmediate as tick } from 'node:timers/promises';
import {
  browseDomains,
  daemonInstance,
  daemonSite,
  discoverZones,
  findServers,
  MAX_SRV_TARGETS,
  orderSrvRecords,
  makeQuery,
  resolveTarget,
  reverseNetworkDomain,
  type QueryFn,
} from '../../../src/client/discover.js';
import { Opcode, RRClass, Rcode } from '../../../src/dns/constants.js';
import { TransportError } from '../../../src/dns/errors.js';
import {
  decodeMessage,
  emptyMessage,
  encodeMessage,
  type DecodedMessage,
  type ResourceRecord,
} from '../../../src/dns/message.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { logSink as sink } from '../../helpers/log-sink.js';
import { answer, ptr, srv } from '../../helpers/dns-answers.js';
import type { SrvData } from '../../../src/dns/rdata.js';


describe('reverseNetworkDomain (RFC 6763 §11: reverse name of the network address)', () => {
  const cases: Array<[string, number, string | null]> = [
    ['192.168.12.34', 16, '0.0.168.192.in-addr.arpa.'],
    ['192.0.2.77', 24, '0.2.0.192.in-addr.arpa.'],
    ['10.1.2.3', 8, '0.0.0.10.in-addr.arpa.'],
    ['198.51.100.9', 32, '9.100.51.198.in-addr.arpa.'],
    ['198.51.100.9', 0, '0.0.0.0.in-addr.arpa.'],
    ['198.51.100.130', 25, '128.100.51.198.in-addr.arpa.'],
    [
      '2001:db8:1:2:3:4:5:6',
      64,
      '0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.',
    ],
    ['fe80::1%eth0', 10, '0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.'],
    ['not an address', 24, null],
  ];
  for (const [addr, plen, want] of cases) {
    it(`${addr}/${plen}`, () => assert.equal(reverseNetworkDomain(addr, plen), want));
  }

  it('browse domains: local., home.arpa., then each network once', () => {
    assert.deepEqual(
      browseDomains([
        { address: '192.0.2.77', prefixLength: 24 },
        { address: '192.0.2.78', prefixLength: 24 },
        { address: '198.51.100.1', prefixLength: 24 },
      ]),
      ['local.', 'home.arpa.', '0.2.0.192.in-addr.arpa.', '0.100.51.198.in-addr.arpa.'],
    );
  });
});

describe('discoverZones', () => {
  it('adds every PTR target of every browse domain as a zone', async () => {
    const asked: string[] = [];
    const query: QueryFn = async (name, type) => {
      asked.push(`${name} ${type}`);
      if (name === 'r._dns-sd._udp.0.2.0.192.in-addr.arpa.') {
        return answer(name, type, [ptr(name, 'Dynamic.Example.org.'), ptr(name, 'lab.example.net.')]);
      }
      if (name === 'r._dns-sd._udp.home.arpa.') return answer(name, type, [ptr(name, 'home.arpa.')]);
      return answer(name, type, [], Rcode.NXDOMAIN);
    };
    const { logger, lines } = sink();
    const zones = await discoverZones({
      query,
      networks: [{ address: '192.0.2.77', prefixLength: 24 }],
      clock: new FakeClock(),
      retryDelayMs: 10_000,
      logger,
    });
    assert.deepEqual(zones, { zones: ['home.arpa.', 'dynamic.example.org.', 'lab.example.net.'], complete: true });
    assert.deepEqual(asked.sort(), [
      'r._dns-sd._udp.0.2.0.192.in-addr.arpa. PTR',
      'r._dns-sd._udp.home.arpa. PTR',
      'r._dns-sd._udp.local. PTR',
    ]);
    assert.ok(lines.some((l) => l['msg'] === 'found registration zone' && l['zone'] === 'lab.example.net.'));
  });

  it('retries a failed discovery once, after dns-timeout', async () => {
    const clock = new FakeClock();
    const attempts = new Map<string, number>();
    const query: QueryFn = async (name, type) => {
      const n = (attempts.get(name) ?? 0) + 1;
      attempts.set(name, n);
      if (name === 'r._dns-sd._udp.local.' && n === 1) throw new TransportError('timeout', 'no reply');
      if (name === 'r._dns-sd._udp.local.') return answer(name, type, [ptr(name, 'found.example.')]);
      if (name === 'r._dns-sd._udp.home.arpa.') return answer(name, type, [], Rcode.SERVFAIL);
      return answer(name, type, []);
    };
    const { logger } = sink();
    let done = false;
    const result = discoverZones({ query, networks: [], clock, retryDelayMs: 10_000, logger }).then((z) => {
      done = true;
      return z;
    });
    while (clock.pendingTimers === 0) await tick();
    clock.advance(9_999);
    await tick();
    assert.equal(done, false);
    assert.equal(attempts.get('r._dns-sd._udp.local.'), 1);
    clock.advance(1);
    // home.arpa. failed twice: what was found is returned, marked incomplete.
    assert.deepEqual(await result, { zones: ['found.example.'], complete: false });
    assert.equal(attempts.get('r._dns-sd._udp.local.'), 2);
    // SERVFAIL counts as failed: retried once, then given up on (no third try).
    assert.equal(attempts.get('r._dns-sd._udp.home.arpa.'), 2);
    assert.equal(clock.pendingTimers, 0);
  });
});

describe('findServers', () => {
  const noLookup = async (host: string): Promise<string> => {
    throw new Error(`unexpected lookup of ${host}`);
  };

  it('equal priorities and weights 0: answer order; host, port, name to register', async () => {
    const query: QueryFn = async (name, type) => {
      assert.equal(name, '_nsreg._tcp.dynamic.example.org.');
      assert.equal(type, 'SRV');
      return answer(name, type, [srv(name, '192.0.2.1.', 5353), srv(name, '192.0.2.2.', 53)]);
    };
    const { logger, lines } = sink();
    const s = await findServers('Dynamic.Example.Org', 'laptop', { query, lookup: noLookup, logger });
    assert.deepEqual(s, [
      {
        zone: 'dynamic.example.org.',
        name: 'laptop.dynamic.example.org.',
        target: '192.0.2.1.',
        host: '192.0.2.1',
        port: 5353,
        priority: 0,
      },
      {
        zone: 'dynamic.example.org.',
        name: 'laptop.dynamic.example.org.',
        target: '192.0.2.2.',
        host: '192.0.2.2',
        port: 53,
        priority: 0,
      },
    ]);
    const line = lines.find((l) => l['msg'] === 'found nsregd server for zone');
    assert.equal(line?.['zone'], 'dynamic.example.org.');
    assert.equal(line?.['port'], 5353);
  });

  it('uses IP-literal targets as addresses without a lookup', async () => {
    assert.equal(await resolveTarget('127.0.0.1.', noLookup), '127.0.0.1');
    assert.equal(await resolveTarget('::1.', noLookup), '::1');
    assert.equal(await resolveTarget('2001:DB8::5.', noLookup), '2001:db8::5');
  });

  it('resolves localhost. through the system resolver (/etc/hosts)', async () => {
    assert.ok(['127.0.0.1', '::1'].includes(await resolveTarget('localhost.')));
  });

  it('resolves other names through the lookup function', async () => {
    const asked: string[] = [];
    const host = await resolveTarget('nsregd.example.org.', async (h) => {
      asked.push(h);
      return '198.51.100.7';
    });
    assert.equal(host, '198.51.100.7');
    assert.deepEqual(asked, ['nsregd.example.org']);
    await assert.rejects(
      resolveTarget('nowhere.example.', async () => {
        throw new Error('ENOTFOUND');
      }),
      { code: 'ERR_NSREGC_DISCOVERY', reason: 'unresolvable-target' },
    );
  });

  it('nothing for zones without SRV, with a failed lookup, or an unresolvable target, with a warning each', async () => {
    const query: QueryFn = async (name, type) => {
      if (name.endsWith('.none.example.')) return answer(name, type, [], Rcode.NXDOMAIN);
      if (name.endsWith('.down.example.')) throw new TransportError('timeout', 'no reply');
      if (name.endsWith('.bad.example.')) return answer(name, type, [srv(name, 'gone.example.', 53)]);
      return answer(name, type, [srv(name, 'localhost.', 5300)]);
    };
    const { logger, lines } = sink();
    const lookup = async (h: string): Promise<string> => {
      if (h === 'localhost') return '127.0.0.1';
      throw new Error('ENOTFOUND');
    };
    const found = [];
    for (const zone of ['none.example.', 'down.example.', 'bad.example.', 'ok.example.']) {
      found.push(await findServers(zone, 'pc', { query, lookup, logger }));
    }
    assert.deepEqual(
      found.map((list) => list.map((s) => [s.zone, s.host, s.port, s.name])),
      [[], [], [], [['ok.example.', '127.0.0.1', 5300, 'pc.ok.example.']]],
    );
    const warned = lines.filter((l) => l['level'] === 40);
    assert.deepEqual(warned.map((l) => l['zone']), ['none.example.', 'down.example.', 'bad.example.']);
  });
});

describe('orderSrvRecords (RFC 2782 usage rules)', () => {
  const rec = (target: string, priority: number, weight: number, port = 53): SrvData => ({ priority, weight, port, target });
  const names = (l: readonly SrvData[]): string[] => l.map((r) => r.target);
  /** Always draws 0 (the first record whose running sum is ≥ 0). */
  const zero = (): number => 0;

  it('lowest priority first; within one, weight 0 in answer order when nothing is weighted', () => {
    const ordered = orderSrvRecords([rec('c.', 20, 0), rec('a.', 10, 0), rec('d.', 20, 0), rec('b.', 10, 0)], zero);
    assert.deepEqual(names(ordered), ['a.', 'b.', 'c.', 'd.']);
  });

  it('the weighted draw: weight-0 records listed first, the first running sum ≥ the draw is picked', () => {
    const group = [rec('heavy.', 0, 30), rec('none.', 0, 0), rec('light.', 0, 10)];
    // Every draw from 0 to the sum (40), inclusive: which record comes first.
    const firsts = new Map<string, number>();
    const asked: number[] = [];
    for (let draw = 0; draw <= 40; draw++) {
      let first = true;
      const ordered = orderSrvRecords(group, (max) => {
        if (first) asked.push(max);
        const d = first ? draw : 0;
        first = false;
        return d;
      });
      assert.equal(ordered.length, 3);
      const name = ordered[0]?.target ?? '';
      firsts.set(name, (firsts.get(name) ?? 0) + 1);
    }
    assert.ok(asked.every((m) => m === 40), 'the draw is between 0 and the sum of the weights');
    // Running sums in the list order none(0), heavy(30), light(40): 0 → none, 1..30 → heavy, 31..40 → light.
    assert.deepEqual(Object.fromEntries(firsts), { 'none.': 1, 'heavy.': 30, 'light.': 10 });
  });

  it('a weight-0 record comes after the weighted ones unless the draw is 0', () => {
    const max = (n: number): number => n;
    assert.deepEqual(names(orderSrvRecords([rec('zero.', 0, 0), rec('a.', 0, 5), rec('b.', 0, 5)], max)), ['b.', 'a.', 'zero.']);
    assert.deepEqual(names(orderSrvRecords([rec('zero.', 0, 0), rec('a.', 0, 5), rec('b.', 0, 5)], zero)), ['zero.', 'a.', 'b.']);
  });

  it('clamps a draw outside [0, sum]', () => {
    assert.deepEqual(names(orderSrvRecords([rec('a.', 0, 1), rec('b.', 0, 1)], () => 99)), ['b.', 'a.']);
    assert.deepEqual(names(orderSrvRecords([rec('a.', 0, 1), rec('b.', 0, 1)], () => -5)), ['a.', 'b.']);
  });

  it('drops "." targets and repeats of a target and port; keeps at most the limit, lowest priorities first', () => {
    assert.deepEqual(orderSrvRecords([rec('.', 0, 0)], zero), []);
    assert.deepEqual(names(orderSrvRecords([rec('.', 0, 0), rec('A.example.', 1, 0), rec('a.example.', 1, 0), rec('a.example.', 2, 0, 54)], zero)), [
      'A.example.',
      'a.example.',
    ]);
    const many = Array.from({ length: 40 }, (_, i) => rec(`t${i}.`, 40 - i, 0));
    const ordered = orderSrvRecords(many);
    assert.equal(ordered.length, MAX_SRV_TARGETS);
    assert.deepEqual(
      ordered.map((r) => r.priority),
      Array.from({ length: MAX_SRV_TARGETS }, (_, i) => i + 1),
    );
  });

  it('with the default (crypto) draw, every record is listed once', () => {
    const group = [rec('a.', 0, 1), rec('b.', 0, 2), rec('c.', 0, 0), rec('d.', 0, 65535), rec('e.', 1, 7)];
    const ordered = orderSrvRecords(group);
    assert.deepEqual([...names(ordered)].sort(), ['a.', 'b.', 'c.', 'd.', 'e.']);
    assert.equal(ordered[4]?.target, 'e.');
  });
});

describe('findServers: several targets', () => {
  const lookup = async (h: string): Promise<string> => {
    if (h === 'one.example') return '192.0.2.1';
    throw new Error('ENOTFOUND');
  };
  const srvAt = (name: string, target: string, port: number, priority: number): ResourceRecord => ({
    name,
    type: 'SRV',
    class: RRClass.IN,
    ttl: 60,
    data: { priority, weight: 0, port, target },
  });

  it('every target in SRV order, those that do not resolve left out', async () => {
    const query: QueryFn = async (name, type) =>
      answer(name, type, [srvAt(name, '192.0.2.9.', 5300, 20), srvAt(name, 'gone.example.', 53, 5), srvAt(name, 'one.example.', 53, 10)]);
    const { logger, lines } = sink();
    const found = await findServers('z.example.', 'pc', { query, lookup, logger });
    assert.deepEqual(
      found.map((s) => [s.target, s.host, s.port, s.priority]),
      [
        ['one.example.', '192.0.2.1', 53, 10],
        ['192.0.2.9.', '192.0.2.9', 5300, 20],
      ],
    );
    assert.equal(lines.filter((l) => l['msg'] === 'nsregd server address unknown').length, 1);
  });

  it('a "." target: the service is not available, nothing found', async () => {
    const query: QueryFn = async (name, type) => answer(name, type, [srvAt(name, '.', 0, 0)]);
    const { logger, lines } = sink();
    assert.deepEqual(await findServers('z.example.', 'pc', { query, lookup, logger }), []);
    assert.ok(lines.some((l) => String(l['msg']).includes('decidedly not available')));
  });

  it('keeps at most MAX_SRV_TARGETS targets', async () => {
    const query: QueryFn = async (name, type) =>
      answer(name, type, Array.from({ length: 30 }, (_, i) => srvAt(name, `192.0.2.${i + 1}.`, 53, i)));
    const { logger } = sink();
    const found = await findServers('z.example.', 'pc', { query, lookup, logger });
    assert.equal(found.length, MAX_SRV_TARGETS);
    assert.deepEqual(found.map((s) => s.host), Array.from({ length: MAX_SRV_TARGETS }, (_, i) => `192.0.2.${i + 1}`));
  });
});

describe('makeQuery over UDP', () => {
  let server: dgram.Socket;
  let port = 0;
  before(async () => {
    server = dgram.createSocket('udp4');
    server.on('message', (msg, rinfo) => {
      const q = decodeMessage(msg);
      const question = q.questions[0];
      const r = emptyMessage(q.id, Opcode.QUERY);
      r.qr = true;
      // A reply for another name when asked about "wrong.example.".
      const name = question.name === '_nsreg._tcp.wrong.example.' ? 'other.example.' : question.name;
      r.questions.push({ ...question, name });
      r.answers.push(srv(name, '127.0.0.1.', 5353));
      server.send(encodeMessage(r), rinfo.port, rinfo.address);
    });
    server.bind(0, '127.0.0.1');
    await once(server, 'listening');
    port = server.address().port;
  });
  after(() => {
    server.close();
  });

  it('asks the configured server and returns its reply; rejects a reply to another question', async () => {
    const query = makeQuery({ server: { host: '127.0.0.1', port }, tcp: false, timeoutMs: 2_000 });
    const reply = await query('_nsreg._tcp.dynamic.example.org.', 'SRV');
    const first = reply.answers[0];
    assert.equal(first?.type, 'SRV');
    assert.equal(first.type === 'SRV' ? first.data?.port : undefined, 5353);
    await assert.rejects(query('_nsreg._tcp.wrong.example.', 'SRV'), { code: 'ERR_NSREGC_DISCOVERY', reason: 'bad-reply' });
  });
});

describe('daemonInstance', () => {
  const reply = (additionals: ResourceRecord[]): DecodedMessage => {
    const m = emptyMessage(1, Opcode.QUERY);
    m.qr = true;
    m.additionals = additionals;
    return decodeMessage(encodeMessage(m));
  };
  const txt = (texts: string[]): ResourceRecord => ({ name: '_nsreg._tcp.z.example.', type: 'TXT', class: RRClass.IN, ttl: 0, data: texts });

  it('reads nsregd-instance=<id> from a TXT record in Additional', () => {
    assert.equal(daemonInstance(reply([txt(['nsregd-instance=00ff'])])), '00ff');
    assert.equal(daemonInstance(reply([txt(['other']), txt(['x', 'nsregd-instance=abc'])])), 'abc');
  });

  it('undefined without one (the original daemon adds nothing)', () => {
    assert.equal(daemonInstance(reply([])), undefined);
    assert.equal(daemonInstance(reply([txt(['nsregd-instance', 'instance=1'])])), undefined);
  });

  it('daemonSite reads nsregd-site=<id> next to the instance; undefined when absent or empty', () => {
    const both = reply([txt(['nsregd-instance=00ff']), txt(['nsregd-site=lab-1'])]);
    assert.equal(daemonSite(both), 'lab-1');
    assert.equal(daemonInstance(both), '00ff');
    assert.equal(daemonSite(reply([txt(['nsregd-instance=00ff'])])), undefined);
    assert.equal(daemonSite(reply([txt(['nsregd-site='])])), undefined);
  });
});
