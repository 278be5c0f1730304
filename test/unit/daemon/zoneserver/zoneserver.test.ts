import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Opcode, RRClass, RRType, Rcode } from '../../../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage, optRecord, type ResourceRecord } from '../../../../src/dns/message.js';
import { answerQuery, findAuthority, type Authority } from '../../../../src/daemon/zoneserver/authority.js';
import { attachAuthorities, respond } from '../../../../src/daemon/zoneserver/listener.js';
import { networkKey, ResponseRateLimiter } from '../../../../src/daemon/zoneserver/ratelimit.js';
import { SerialCounter } from '../../../../src/daemon/zoneserver/serial.js';
import { tcpExchange, udpExchange } from '../../../../src/net/transport.js';
import { pino } from 'pino';
import { freePort } from '../../../helpers/ports.js';
import { logSink } from '../../../helpers/log-sink.js';

const ZONE = 'z.example.';
const soa: ResourceRecord = {
  name: ZONE,
  type: 'SOA',
  class: RRClass.IN,
  ttl: 300,
  data: { mname: `ns.${ZONE}`, rname: `h.${ZONE}`, serial: 7, refresh: 1, retry: 1, expire: 1, minimum: 30 },
};
const authority: Authority = {
  apex: ZONE,
  soa: () => soa,
  glue: () => [],
  lookup(name) {
    if (name === ZONE) return { records: [soa], exists: true };
    if (name === `h.${ZONE}`) {
      return {
        records: [
          { name, type: 'A', class: RRClass.IN, ttl: 60, data: '192.0.2.1' },
          { name, type: 'AAAA', class: RRClass.IN, ttl: 60, data: '2001:db8::1' },
        ],
        exists: true,
      };
    }
    return { records: [], exists: false };
  },
};

function query(name: string, type: number, opts: { opt?: number; version?: number; cls?: number } = {}) {
  const q = emptyMessage(9, Opcode.QUERY);
  q.questions.push({ name, type, class: opts.cls ?? RRClass.IN });
  if (opts.opt !== undefined) q.additionals.push({ ...optRecord(opts.opt), ttl: (opts.version ?? 0) << 16 });
  return decodeMessage(encodeMessage(q));
}

describe('zone server answers', () => {
  it('answers, NXDOMAIN and NODATA with the negative SOA (min of TTL and minimum)', () => {
    const ok = answerQuery(query(`H.${ZONE}`, RRType.A), [authority]).message;
    assert.equal(ok.rcode, Rcode.NOERROR);
    assert.ok(ok.aa);
    assert.deepEqual(ok.answers.map((rr) => [rr.name, rr.data]), [[`H.${ZONE}`, '192.0.2.1']]);
    const nx = answerQuery(query(`x.${ZONE}`, RRType.A), [authority]).message;
    assert.equal(nx.rcode, Rcode.NXDOMAIN);
    assert.equal(nx.authorities[0]?.ttl, 30);
    const nodata = answerQuery(query(`h.${ZONE}`, RRType.TXT), [authority]).message;
    assert.equal(nodata.rcode, Rcode.NOERROR);
    assert.equal(nodata.answers.length, 0);
    assert.equal(nodata.authorities[0]?.type, 'SOA');
  });

  it('refuses other zones, other classes and zone transfers; NOTIMP for other opcodes', () => {
    assert.equal(answerQuery(query('other.example.', RRType.A), [authority]).message.rcode, Rcode.REFUSED);
    assert.equal(answerQuery(query(ZONE, RRType.SOA, { cls: RRClass.CH }), [authority]).message.rcode, Rcode.REFUSED);
    assert.equal(answerQuery(query(ZONE, RRType.AXFR), [authority]).message.rcode, Rcode.REFUSED);
    const notify = emptyMessage(1, Opcode.NOTIFY);
    notify.questions.push({ name: ZONE, type: RRType.SOA, class: RRClass.IN });
    assert.equal(answerQuery(decodeMessage(encodeMessage(notify)), [authority]).message.rcode, Rcode.NOTIMP);
  });

  it('ANY returns one RRset (RFC 8482)', () => {
    const any = answerQuery(query(`h.${ZONE}`, RRType.ANY), [authority]).message;
    assert.deepEqual(any.answers.map((rr) => rr.type), ['A']);
  });

  it('EDNS: buffer size honoured within 512..4096, OPT echoed, BADVERS for version 1', () => {
    assert.equal(answerQuery(query(ZONE, RRType.SOA), [authority]).udpLimit, 512);
    assert.equal(answerQuery(query(ZONE, RRType.SOA, { opt: 100 }), [authority]).udpLimit, 512);
    assert.equal(answerQuery(query(ZONE, RRType.SOA, { opt: 1400 }), [authority]).udpLimit, 1400);
    assert.equal(answerQuery(query(ZONE, RRType.SOA, { opt: 65000 }), [authority]).udpLimit, 4096);
    const r = answerQuery(query(ZONE, RRType.SOA, { opt: 1232 }), [authority]).message;
    assert.equal(r.additionals.filter((rr) => rr.type === 'OPT').length, 1);
    const bad = decodeMessage(encodeMessage(answerQuery(query(ZONE, RRType.SOA, { opt: 1232, version: 1 }), [authority]).message));
    assert.equal(bad.rcode, 16);
  });

  it('respond(): FORMERR for garbage with an ID, silence for responses and unreadable bytes', () => {
    const formerr = respond(Buffer.from([1, 2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0]), [authority], 'udp');
    assert.ok(formerr);
    assert.equal(decodeMessage(formerr).rcode, Rcode.FORMERR);
    assert.equal(respond(Buffer.from([1, 2, 3]), [authority], 'udp'), null);
    const resp = emptyMessage(1, Opcode.QUERY);
    resp.qr = true;
    assert.equal(respond(encodeMessage(resp), [authority], 'udp'), null);
  });

  it('findAuthority picks the longest apex', () => {
    const inner: Authority = { ...authority, apex: `sub.${ZONE}` };
    assert.equal(findAuthority([authority, inner], `a.sub.${ZONE}`), inner);
    assert.equal(findAuthority([authority, inner], `a.${ZONE}`), authority);
    assert.equal(findAuthority([authority, inner], 'example.'), undefined);
  });
});

describe('zone server over TCP', () => {
  // 5000 A records are about 80 000 octets: more than a TCP frame can carry.
  const huge: Authority = {
    ...authority,
    lookup(name) {
      if (name !== `big.${ZONE}`) return authority.lookup(name);
      const records = Array.from({ length: 5000 }, (_, i): ResourceRecord => ({
        name,
        type: 'A',
        class: RRClass.IN,
        ttl: 60,
        data: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      }));
      return { records, exists: true };
    },
  };

  it('answers an answer too large for a TCP frame with a truncated reply, and keeps serving', async () => {
    const port = await freePort();
    const lease = await attachAuthorities('127.0.0.1', port, [huge], { rateLimit: 0, tcp: { maxConnections: 8, maxPerSource: 4, idleTimeoutMs: 10_000 }, logger: pino({ level: 'silent' }) });
    try {
      const big = emptyMessage(31, Opcode.QUERY);
      big.questions.push({ name: `big.${ZONE}`, type: RRType.A, class: RRClass.IN });
      const raw = encodeMessage(big);
      assert.ok((respond(raw, [huge], 'tcp') as Buffer).length > 65535);
      const reply = decodeMessage(await tcpExchange({ host: '127.0.0.1', port, message: raw, timeoutMs: 5000 }));
      assert.equal(reply.id, 31);
      assert.ok(reply.tc);
      assert.equal(reply.answers.length, 0);
      assert.deepEqual(reply.questions.map((q) => q.name), [`big.${ZONE}`]);
      const soaQuery = emptyMessage(32, Opcode.QUERY);
      soaQuery.questions.push({ name: ZONE, type: RRType.SOA, class: RRClass.IN });
      const ok = decodeMessage(await tcpExchange({ host: '127.0.0.1', port, message: encodeMessage(soaQuery), timeoutMs: 5000 }));
      assert.equal(ok.answers[0]?.type, 'SOA');
    } finally {
      await lease.release();
    }
  });
});

describe('zone server listening', () => {
  const tcp = { maxConnections: 8, maxPerSource: 4, idleTimeoutMs: 10_000 };

  it('an address of the name that cannot be bound is skipped with a warning; the others answer (UDP and TCP)', async () => {
    // 203.0.113.1 (TEST-NET-3) is not configured here: binding fails with EADDRNOTAVAIL. Nothing is sent to it.
    const port = await freePort();
    const sink = logSink('warn');
    const lease = await attachAuthorities('listen-test.invalid', port, [authority], { rateLimit: 0, tcp, logger: sink.logger, addresses: ['127.0.0.1', '203.0.113.1'] });
    try {
      const warned = sink.lines.filter((l) => l.level === 40);
      assert.equal(warned.length, 1);
      assert.equal(warned[0].address, `203.0.113.1:${port}`);
      const q = emptyMessage(41, Opcode.QUERY);
      q.questions.push({ name: ZONE, type: RRType.SOA, class: RRClass.IN });
      const overTcp = decodeMessage(await tcpExchange({ host: '127.0.0.1', port, message: encodeMessage(q), timeoutMs: 5000 }));
      assert.equal(overTcp.answers[0]?.type, 'SOA');
      const overUdp = await udpExchange({ host: '127.0.0.1', port, message: encodeMessage(q), timeoutMs: 5000 });
      assert.equal(overUdp.transport, 'udp');
      assert.equal(decodeMessage(overUdp.reply).answers[0]?.type, 'SOA');
    } finally {
      await lease.release();
    }
  });

  it('fails when no address of the name can be bound', async () => {
    const port = await freePort();
    await assert.rejects(
      attachAuthorities('listen-test.invalid', port, [authority], { rateLimit: 0, tcp, logger: pino({ level: 'silent' }), addresses: ['203.0.113.1', '203.0.113.2'] }),
      { code: 'EADDRNOTAVAIL' },
    );
  });
});

describe('response rate limit', () => {
  it('groups clients by /24 and /56', () => {
    assert.equal(networkKey('192.0.2.77'), '192.0.2.0/24');
    assert.equal(networkKey('::ffff:192.0.2.1'), '192.0.2.0/24');
    assert.equal(networkKey('2001:db8:1:2345::1'), networkKey('2001:db8:1:23ff::9'));
    assert.notEqual(networkKey('2001:db8:1:2345::1'), networkKey('2001:db8:1:2445::1'));
  });

  it('allows the burst, then refills at the rate; every second drop slips', () => {
    const rl = new ResponseRateLimiter({ perSecond: 10, burst: 5 });
    const d0 = Array.from({ length: 9 }, () => rl.check('192.0.2.1', 0));
    assert.deepEqual(d0, ['send', 'send', 'send', 'send', 'send', 'drop', 'slip', 'drop', 'slip']);
    assert.equal(rl.check('192.0.2.200', 0), 'drop', 'same /24 shares the bucket');
    assert.equal(rl.check('192.0.3.1', 0), 'send', 'another network has its own');
    assert.equal(rl.check('192.0.2.1', 200), 'send', '200 ms refill 2 tokens');
    assert.equal(new ResponseRateLimiter({ perSecond: 0 }).check('192.0.2.1', 0), 'send');
  });

  it('tracks a bounded number of networks', () => {
    const rl = new ResponseRateLimiter({ perSecond: 1, maxNetworks: 100 });
    for (let i = 0; i < 1000; i++) rl.check(`10.${i >> 8}.${i & 255}.1`, 0);
    assert.equal(rl.trackedNetworks, 100);
  });
});

describe('SOA serial counter', () => {
  it('increases on every change and after a restart starts above anything served', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'serial-'));
    try {
      const file = path.join(dir, 'z.serial');
      const a = await SerialCounter.open(file, 1000);
      const seen: number[] = [];
      for (let i = 0; i < 1200; i++) seen.push(a.next());
      await a.settle();
      assert.ok(seen.every((v, i) => i === 0 || v > (seen[i - 1])));
      // Simulated crash: no close; the reservation on disk is above the last served serial.
      const b = await SerialCounter.open(file, 0);
      assert.ok(b.value > (seen.at(-1) as number), `${b.value} > ${seen.at(-1)}`);
      assert.match(await readFile(file, 'utf8'), /^[0-9]+\n$/);
      assert.deepEqual(await readdir(dir), ['z.serial'], 'no temporary file left behind');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a reservation that fails in the background is reported, not thrown; serials keep increasing', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'serial-'));
    try {
      const file = path.join(dir, 'z.serial');
      const errors: unknown[] = [];
      const a = await SerialCounter.open(file, 1000, (err) => errors.push(err));
      // The directory goes away: the next reservation cannot be written.
      await rm(dir, { recursive: true, force: true });
      await writeFile(dir, 'not a directory');
      const seen: number[] = [];
      for (let i = 0; i < 600; i++) seen.push(a.next());
      await a.settle();
      assert.equal(errors.length, 1);
      assert.ok(seen.every((v, i) => i === 0 || v > (seen[i - 1])));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
