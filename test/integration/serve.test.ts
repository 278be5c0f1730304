/**
 * The built-in zone server (`type: serve`): queried with real dig over UDP
 * and TCP, and through a real BIND named acting as a forwarding resolver.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import * as dgram from 'node:dgram';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Opcode, RRClass, RRType, Rcode } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../src/dns/message.js';
import { startNamed, type NamedLab } from '../helpers/named.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { a, aaaa, makeClient, signedUpdate } from '../helpers/sig0-client.js';
import { requireTool, run } from '../helpers/tools.js';
import { serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually, letTimePass } from '../helpers/eventually.js';

const ZONE = 'dynamic.example.org.';
const REV = '2.0.192.in-addr.arpa.';
const now = (): number => Math.floor(Date.now() / 1000);

function serveZones(dnsPort: number, opts: { maxAddrTtl?: string; rateLimit?: number } = {}): string {
  return zoneYaml(ZONE, {
    'max-key-ttl': '720h',
    'max-addr-ttl': opts.maxAddrTtl ?? '1h',
    'reserved-names': ['ns'],
    'allowed-nets': ['127.0.0.0/8'],
    'allow-any-addr': true,
    'max-records-per-name': 64,
    upstreams: [
      serveUpstream(dnsPort, {
        'record-ttl': '30s',
        'negative-ttl': '1s',
        hostmaster: 'admin.example.org',
        'reverse-zones': [REV],
        'exclude-nets': ['198.51.100.0/24'],
        'rate-limit': opts.rateLimit ?? 0,
      }),
    ],
  });
}

interface Dig {
  status: string;
  flags: string[];
  answer: string[];
  authority: string[];
  raw: string;
}

async function dig(port: number, args: string[]): Promise<Dig> {
  const r = await run(requireTool('dig'), ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', '+norecurse', ...args]);
  const raw = r.stdout;
  const status = /status: ([A-Z]+)/.exec(raw)?.[1] ?? '';
  const flags = (/;; flags: ([a-z ]+);/.exec(raw)?.[1] ?? '').trim().split(/\s+/);
  const section = (name: string): string[] => {
    const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(raw);
    return m?.[1] ? m[1].split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/).join(' ')) : [];
  };
  return { status, flags, answer: section('ANSWER'), authority: section('AUTHORITY'), raw };
}

describe('built-in zone server', () => {
  let d: NsregdLab;
  let dnsPort: number;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-serve-'));
    dnsPort = await freePort();
    d = await startNsregd({ zonesYaml: serveZones(dnsPort), dir });
  });

  after(async () => {
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers SOA and NS at the apex with the AA bit, over UDP and TCP', async () => {
    for (const tcp of [[], ['+tcp']]) {
      const soa = await dig(dnsPort, [...tcp, ZONE, 'SOA']);
      assert.equal(soa.status, 'NOERROR');
      assert.ok(soa.flags.includes('aa'), soa.raw);
      assert.match(soa.answer[0] ?? '', /^dynamic\.example\.org\. \d+ IN SOA ns\.dynamic\.example\.org\. admin\.example\.org\. \d+ 60 60 604800 1$/);
      const ns = await dig(dnsPort, [...tcp, ZONE, 'NS']);
      assert.deepEqual(ns.answer, ['dynamic.example.org. 3600 IN NS ns.dynamic.example.org.']);
      assert.match(ns.raw, /ns\.dynamic\.example\.org\.\s+3600\s+IN\s+A\s+127\.0\.0\.1/);
    }
  });

  it('serves registered records with the record-ttl, PTRs, NXDOMAIN/NODATA with the SOA, REFUSED outside', async () => {
    const c = makeClient('web', ZONE);
    const before = Number((await dig(dnsPort, [ZONE, 'SOA'])).answer[0]?.split(' ')[6]);
    const r = await d.send(signedUpdate(c, [a(c.name, '192.0.2.80', 600), aaaa(c.name, '2001:db8::80', 10), a(c.name, '198.51.100.5')], { now: now() }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual((await dig(dnsPort, [c.name, 'A'])).answer, [`${c.name} 30 IN A 192.0.2.80`]);
    assert.deepEqual((await dig(dnsPort, [c.name, 'AAAA'])).answer, [`${c.name} 10 IN AAAA 2001:db8::80`]);
    assert.deepEqual((await dig(dnsPort, ['-x', '192.0.2.80'])).answer, [`80.${REV} 30 IN PTR ${c.name}`]);
    const after = Number((await dig(dnsPort, [ZONE, 'SOA'])).answer[0]?.split(' ')[6]);
    assert.ok(after > before, `serial ${before} → ${after}`);

    const nx = await dig(dnsPort, [`nobody.${ZONE}`, 'A']);
    assert.equal(nx.status, 'NXDOMAIN');
    assert.ok(nx.flags.includes('aa'));
    assert.match(nx.authority[0] ?? '', /^dynamic\.example\.org\. 1 IN SOA /);
    const nodata = await dig(dnsPort, [c.name, 'TXT']);
    assert.equal(nodata.status, 'NOERROR');
    assert.deepEqual(nodata.answer, []);
    assert.match(nodata.authority[0] ?? '', / IN SOA /);
    assert.equal((await dig(dnsPort, ['-x', '192.0.2.99'])).status, 'NXDOMAIN');
    const out = await dig(dnsPort, ['example.com.', 'A']);
    assert.equal(out.status, 'REFUSED');
    assert.ok(!out.flags.includes('aa'));
  });

  it('answers the _nsreg._tcp SRV with the registration listener', async () => {
    const srv = await dig(dnsPort, [`_nsreg._tcp.${ZONE}`, 'SRV']);
    assert.deepEqual(srv.answer, [`_nsreg._tcp.${ZONE} 30 IN SRV 0 0 ${d.port} 127.0.0.1.`]);
    assert.equal((await dig(dnsPort, [`_tcp.${ZONE}`, 'A'])).status, 'NOERROR', 'empty non-terminal is NODATA, not NXDOMAIN');
  });

  it('ANY is answered minimally, AXFR/IXFR refused, EDNS honoured, big UDP answers truncated', async () => {
    const c = makeClient('big', ZONE);
    const addrs = Array.from({ length: 40 }, (_, i) => aaaa(c.name, `2001:db8::${(i + 1).toString(16)}`));
    assert.equal((await d.send(signedUpdate(c, addrs, { now: now() }))).rcode, Rcode.NOERROR);
    const any = await dig(dnsPort, [c.name, 'ANY']);
    assert.equal(any.status, 'NOERROR');
    assert.ok(any.answer.length > 0 && any.answer.every((l) => l.includes(' AAAA ')), any.raw);
    const apexAny = await dig(dnsPort, [ZONE, 'ANY']);
    assert.equal(apexAny.answer.length, 1);
    assert.match(apexAny.answer[0] ?? '', / SOA /);
    const axfr = await run(requireTool('dig'), ['@127.0.0.1', '-p', String(dnsPort), '+time=2', '+tries=1', ZONE, 'AXFR']);
    assert.match(axfr.stdout, /Transfer failed|REFUSED/);
    const ixfr = await run(requireTool('dig'), ['@127.0.0.1', '-p', String(dnsPort), '+time=2', '+tries=1', ZONE, 'IXFR=1']);
    assert.match(ixfr.stdout, /Transfer failed|REFUSED/);
    // 40 AAAA = ~1.2 kB: over 512 without EDNS → TC; fits a 4096 buffer; full over TCP.
    const small = await dig(dnsPort, ['+noedns', '+ignore', c.name, 'AAAA']);
    assert.ok(small.flags.includes('tc'), small.raw);
    assert.equal(small.answer.length, 0);
    const edns = await dig(dnsPort, ['+bufsize=4096', '+ignore', c.name, 'AAAA']);
    assert.ok(!edns.flags.includes('tc'));
    assert.equal(edns.answer.length, 40);
    assert.match(edns.raw, /EDNS: version: 0/);
    const tcp = await dig(dnsPort, ['+tcp', '+noedns', c.name, 'AAAA']);
    assert.equal(tcp.answer.length, 40);
  });

  it('the serial survives a restart and keeps increasing', async () => {
    const serial = (): Promise<number> => dig(dnsPort, [ZONE, 'SOA']).then((s) => Number(s.answer[0]?.split(' ')[6]));
    const before = await serial();
    await d.stop();
    d = await startNsregd({ zonesYaml: serveZones(dnsPort), dir });
    const afterRestart = await serial();
    assert.ok(afterRestart > before, `serial ${before} → ${afterRestart} after restart`);
  });
});

describe('built-in zone server behind a real resolver', () => {
  let d: NsregdLab;
  let named: NamedLab;
  let dnsPort: number;

  before(async () => {
    dnsPort = await freePort();
    d = await startNsregd({ zonesYaml: serveZones(dnsPort, { maxAddrTtl: '2s' }) });
    named = await startNamed({
      zones: [{ name: 'lab.example.' }],
      recursion: true,
      extraOptions: 'max-ncache-ttl 1;',
      extraConfig: `zone "${ZONE}" { type forward; forward only; forwarders { 127.0.0.1 port ${dnsPort}; }; };
zone "${REV}" { type forward; forward only; forwarders { 127.0.0.1 port ${dnsPort}; }; };`,
    });
  });

  after(async () => {
    await named?.stop();
    await d?.stop();
  });

  it('a registered record resolves through named within a second and disappears when it expires', async () => {
    const c = makeClient('viaresolver', ZONE);
    const t0 = Date.now();
    assert.equal((await d.send(signedUpdate(c, [a(c.name, '192.0.2.90', 2)], { now: now() }))).rcode, Rcode.NOERROR);
    let got: string[] = [];
    while (Date.now() - t0 < 1000 && got.length === 0) got = await named.query(c.name, 'A');
    assert.deepEqual(got, ['192.0.2.90'], 'resolvable within 1 s');
    assert.deepEqual(await named.query('90.2.0.192.in-addr.arpa.', 'PTR'), [c.name]);
    assert.deepEqual(await named.query(`_nsreg._tcp.${ZONE}`, 'SRV'), [`0 0 ${d.port} 127.0.0.1.`]);
    // Expiry after 2 s; the resolver's cache holds it for at most its TTL (2 s here).
    await eventually('the expired record to leave the resolver', () => named.query(c.name, 'A'), (v) => v.length === 0, 6000);
  });
});

describe('built-in zone server rate limit', () => {
  let d: NsregdLab;
  let dnsPort: number;

  before(async () => {
    dnsPort = await freePort();
    d = await startNsregd({ zonesYaml: serveZones(dnsPort, { rateLimit: 10 }) });
  });

  after(async () => {
    await d?.stop();
  });

  it('limits UDP responses per client network; TCP is not limited', async () => {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    let replies = 0;
    let truncated = 0;
    sock.on('message', (m) => {
      replies++;
      if (decodeMessage(m).tc) truncated++;
    });
    const q = emptyMessage(1, Opcode.QUERY);
    q.questions.push({ name: ZONE, type: RRType.SOA, class: RRClass.IN });
    for (let i = 0; i < 200; i++) {
      q.id = i;
      sock.send(encodeMessage(q), dnsPort, '127.0.0.1');
    }
    // Replies (or drops) follow the burst at once: wait until none has come for 200 ms.
    await eventually(
      'the replies to stop coming',
      async () => {
        const before = replies;
        await letTimePass(200);
        return before > 0 && before === replies;
      },
      (quiet) => quiet,
      3000,
    );
    sock.close();
    // Burst 20 plus ~5/s refill; half of the rest "slip" as empty truncated replies.
    const full = replies - truncated;
    assert.ok(full >= 20 && full <= 30, `full replies: ${full}`);
    assert.ok(truncated > 50 && truncated < 100, `truncated: ${truncated}`);
    const tcp = await dig(dnsPort, ['+tcp', ZONE, 'SOA']);
    assert.equal(tcp.status, 'NOERROR');
  });
});
