/**
 * Hijack attempts against nsregd with a real BIND named upstream, and
 * against the built-in zone server: a `*` claim (a wildcard would answer for
 * every unclaimed name), a claim of a name holding the operator's records
 * (protect-existing), and whole-name removals that must leave the
 * operator's TXT/MX records alone.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { systemClock } from '../../src/clock.js';
import { Opcode, RRClass, RRType, Rcode } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage, type DecodedMessage } from '../../src/dns/message.js';
import { deleteName } from '../../src/dns/update.js';
import { exchange } from '../../src/net/transport.js';
import type { AddrRecord } from '../../src/daemon/records.js';
import { createUpstream } from '../../src/daemon/upstreams/registry.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { a, makeClient, signedUpdate, type TestClient } from '../helpers/sig0-client.js';
import { nsupdateUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';

const ZONE = 'dynamic.example.org.';
const key: TsigKeySpec = { name: 'nsregd.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
const OPERATOR = [
  'taken IN TXT "operator record"',
  'shared IN TXT "operator record"',
  'shared IN MX 10 mail.example.org.',
  'expiring IN TXT "operator record"',
];

const now = (): number => Math.floor(Date.now() / 1000);

function reasons(m: DecodedMessage): string[] {
  return m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data ? rr.data : []));
}

function register(d: NsregdLab, c: TestClient, records: Parameters<typeof signedUpdate>[1]): Promise<DecodedMessage> {
  return d.send(signedUpdate(c, records, { now: now(), id: Math.floor(Math.random() * 65535) }));
}

function zones(named: NamedLab, opts: { maxKeyTtl?: string; upstream?: Record<string, unknown> } = {}): string {
  return zoneYaml(ZONE, {
    'max-key-ttl': opts.maxKeyTtl ?? '720h',
    'max-addr-ttl': '1h',
    'allowed-nets': ['127.0.0.0/8', '192.0.2.0/24'],
    upstreams: [nsupdateUpstream(ZONE, named.port, key, { timeout: '3s', ...opts.upstream })],
  });
}

/** dig's status line for `name`/`type` at named. */
async function status(named: NamedLab, name: string, type: string): Promise<string> {
  return /status: ([A-Z]+)/.exec(await named.dig([name, type]))?.[1] ?? '';
}

describe('hijack: names and existing records at BIND (protect-existing on, the default)', () => {
  let named: NamedLab;
  let d: NsregdLab;

  before(async () => {
    named = await startNamed({ tsigKeys: [key], zones: [{ name: ZONE, allowUpdateKey: key.name, records: OPERATOR }] });
    d = await startNsregd({ zonesYaml: zones(named) });
  });

  after(async () => {
    await d?.stop();
    await named?.stop();
  });

  it('a * claim is refused, and an unclaimed name stays NXDOMAIN instead of answering with the attacker\'s address', async () => {
    const c = makeClient('*', ZONE);
    const r = await register(d, c, [a(c.name, '192.0.2.66')]);
    assert.equal(r.rcode, Rcode.REFUSED);
    assert.deepEqual(reasons(r), ['Name must be a host name (letters, digits, hyphens)']);
    assert.equal(await status(named, `unclaimed.${ZONE}`, 'A'), 'NXDOMAIN');
    assert.deepEqual(await named.query(`*.${ZONE}`, 'A'), []);
  });

  it('service labels, escaped dots and control bytes are refused too', async () => {
    for (const label of ['_nsreg', 'a\\.b', 'a\\000b', 'a\\032b']) {
      const c = makeClient(label, ZONE);
      const r = await register(d, c, [a(c.name, '192.0.2.67')]);
      assert.equal(r.rcode, Rcode.REFUSED, label);
      assert.deepEqual(reasons(r), ['Name must be a host name (letters, digits, hyphens)']);
    }
  });

  it('a claim of a name holding an operator TXT is refused; nothing of it reaches named and the name stays unclaimed', async () => {
    const c = makeClient('taken', ZONE);
    const r = await register(d, c, [deleteName(c.name), a(c.name, '192.0.2.68')]);
    assert.equal(r.rcode, Rcode.REFUSED);
    assert.deepEqual(reasons(r), ['Name is in use by other records']);
    assert.deepEqual(await named.query(c.name, 'TXT'), ['"operator record"']);
    assert.deepEqual(await named.query(c.name, 'A'), []);
    // Unclaimed: another key hears the same refusal, not "Invalid key for name".
    const other = makeClient('taken', ZONE);
    const again = await register(d, other, [a(other.name, '192.0.2.69')]);
    assert.deepEqual(reasons(again), ['Name is in use by other records']);
    // Not retried behind the scenes: no upstream failure was logged.
    assert.equal(d.logs().filter((l) => l.msg === 'upstream update failed; operations kept and retried').length, 0);
    assert.deepEqual(await named.query(c.name, 'A'), []);
  });

  it('a free name is still claimed normally', async () => {
    const c = makeClient('free', ZONE);
    const r = await register(d, c, [a(c.name, '192.0.2.70')]);
    assert.equal(r.rcode, Rcode.NOERROR, reasons(r).join());
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.70']);
  });
});

describe('hijack: whole-name removals leave the operator\'s records (protect-existing off)', () => {
  let named: NamedLab;
  let d: NsregdLab;

  before(async () => {
    named = await startNamed({ tsigKeys: [key], zones: [{ name: ZONE, allowUpdateKey: key.name, records: OPERATOR }] });
    d = await startNsregd({ zonesYaml: zones(named, { maxKeyTtl: '3s', upstream: { 'protect-existing': false } }) });
  });

  after(async () => {
    await d?.stop();
    await named?.stop();
  });

  it('a first claim with "delete all RRsets" and then the key\'s expiry remove only A/AAAA; TXT and MX stay', async () => {
    const c = makeClient('shared', ZONE);
    const r = await register(d, c, [deleteName(c.name), a(c.name, '192.0.2.71')]);
    assert.equal(r.rcode, Rcode.NOERROR, reasons(r).join());
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.71']);
    assert.deepEqual(await named.query(c.name, 'TXT'), ['"operator record"']);
    assert.deepEqual(await named.query(c.name, 'MX'), ['10 mail.example.org.']);
    await eventually('key expiry removal', () => named.query(c.name, 'A'), (v) => v.length === 0, 8000);
    assert.deepEqual(await named.query(c.name, 'TXT'), ['"operator record"']);
    assert.deepEqual(await named.query(c.name, 'MX'), ['10 mail.example.org.']);
  });

  it('key expiry alone (the records outlive the key) removes the A RRset, not the name', async () => {
    const c = makeClient('expiring', ZONE);
    assert.equal((await register(d, c, [a(c.name, '192.0.2.72', 3600)])).rcode, Rcode.NOERROR);
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.72']);
    await eventually('key expiry removal', () => named.query(c.name, 'A'), (v) => v.length === 0, 8000);
    assert.deepEqual(await named.query(c.name, 'TXT'), ['"operator record"']);
  });
});

describe('hijack: the built-in zone server never publishes a name that is not a host name', () => {
  let dir: string;
  let close: (() => Promise<void>) | undefined;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregd-hijack-'));
  });

  after(async () => {
    await close?.();
    await rm(dir, { recursive: true, force: true });
  });

  it('records of a * name (stored by an earlier version) are neither answered nor given PTRs', async () => {
    const port = await freePort();
    const live: AddrRecord[] = [
      { name: `*.${ZONE}`, type: 'A', address: '192.0.2.66', ttl: 60 },
      { name: `host.${ZONE}`, type: 'A', address: '192.0.2.1', ttl: 60 },
    ];
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
    const up = createUpstream(
      {
        type: 'serve',
        listenAddr: '127.0.0.1',
        listenPort: port,
        recordTtl: 60_000,
        primary: null,
        hostmaster: null,
        nameservers: [],
        negativeTtl: 1000,
        reverseZones: ['2.0.192.in-addr.arpa.'],
        excludeNets: [],
        keepRecords: false,
        rateLimit: 0,
        registrationTarget: null,
        tcpConnections: 256,
        tcpPerSource: 16,
        tcpIdleTimeout: 10_000,
        transferKeys: [],
        allowTransfer: [],
        soaRefresh: 60_000,
        soaRetry: 60_000,
        soaExpire: 604_800_000,
        soaMinimum: null,
        notify: [],
        notifyKey: null,
      },
      {
        zone: ZONE,
        logger,
        clock: systemClock,
        liveRecords: (name) => live.filter((r) => r.name === name),
        allLiveRecords: () => live,
        dataDir: dir,
        registration: () => ({ host: '127.0.0.1', port: 8053 }),
      },
    );
    await up.start();
    close = () => up.close();
    const ask = async (name: string, type: number): Promise<DecodedMessage> => {
      const q = emptyMessage(4242, Opcode.QUERY);
      q.questions.push({ name, type, class: RRClass.IN });
      const { reply } = await exchange({ host: '127.0.0.1', port, message: encodeMessage(q), timeoutMs: 2000, tcp: false });
      return decodeMessage(reply);
    };
    const star = await ask(`*.${ZONE}`, RRType.A);
    assert.equal(star.rcode, Rcode.NXDOMAIN);
    assert.equal(star.answers.length, 0);
    assert.equal((await ask(`66.2.0.192.in-addr.arpa.`, RRType.PTR)).rcode, Rcode.NXDOMAIN);
    const host = await ask(`host.${ZONE}`, RRType.A);
    assert.deepEqual(host.answers.map((rr) => rr.data), ['192.0.2.1']);
    assert.ok(lines.some((l) => l.msg === 'not publishing records of names that are not host names'), JSON.stringify(lines));
  });
});
