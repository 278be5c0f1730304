/**
 * nsregd as a real process with a real BIND named upstream: claims,
 * refreshes, removals, expiry, PTRs, exclude-nets, keep-records, an
 * upstream that fails and recovers, reloads, signals, hostile bytes, and
 * the original's key database.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RRClass, Rcode } from '../../src/dns/constants.js';
import { readKeyPair } from '../../src/keyfile-io.js';
import { keyTag } from '../../src/dns/keys.js';
import type { DecodedMessage } from '../../src/dns/message.js';
import { frame } from '../../src/net/transport.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';
import { daemonYaml, startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { a, aaaa, makeClient, signedUpdate, type TestClient } from '../helpers/sig0-client.js';
import { nsupdateUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';

const ZONE = 'dynamic.example.org.';
const REV = '2.0.192.in-addr.arpa.';
const key: TsigKeySpec = { name: 'nsregd.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };

const now = (): number => Math.floor(Date.now() / 1000);


function namedZone(named: NamedLab, opts: { zone?: string; maxKeyTtl?: string; maxAddrTtl?: string; upstream?: Record<string, unknown> } = {}): string {
  return zoneYaml(opts.zone ?? ZONE, {
    'max-key-ttl': opts.maxKeyTtl ?? '720h',
    'max-addr-ttl': opts.maxAddrTtl ?? '1h',
    'reserved-names': ['www'],
    'allowed-nets': ['127.0.0.0/8', '192.0.2.0/24', '2001:db8::/32'],
    upstreams: [
      nsupdateUpstream(ZONE, named.port, key, { timeout: '3s', 'reverse-zones': [REV], 'exclude-nets': ['192.0.2.200/29'], ...opts.upstream }),
    ],
  });
}

function reasons(m: DecodedMessage): string[] {
  return m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data ? rr.data : []));
}

/** named serving `zones`, each updatable with the TSIG key. */
function namedWith(...zones: string[]): Promise<NamedLab> {
  return startNamed({ tsigKeys: [key], zones: zones.map((name) => ({ name, allowUpdateKey: key.name })) });
}

async function register(d: NsregdLab, c: TestClient, records: ReturnType<typeof a>[]): Promise<DecodedMessage> {
  return d.send(signedUpdate(c, records, { now: now(), id: Math.floor(Math.random() * 65535) }));
}

describe('nsregd with a real named upstream', () => {
  let named: NamedLab;
  let d: NsregdLab;

  before(async () => {
    named = await namedWith(ZONE, REV, 'second.example.org.');
    d = await startNsregd({ zonesYaml: namedZone(named) });
  });

  after(async () => {
    await d?.stop();
    await named?.stop();
  });

  it('claims a name: A, AAAA and PTR appear in named with the record-ttl', async () => {
    const c = makeClient('host1', ZONE);
    const r = await register(d, c, [a(c.name, '192.0.2.1', 300), aaaa(c.name, '2001:db8::1', 300)]);
    assert.equal(r.rcode, Rcode.NOERROR, reasons(r).join());
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.1']);
    assert.deepEqual(await named.query(c.name, 'AAAA'), ['2001:db8::1']);
    assert.deepEqual(await named.query(`1.${REV}`, 'PTR'), [c.name]);
    const ttl = (await named.dig(['+noall', '+answer', c.name, 'A'])).trim().split(/\s+/)[1];
    assert.equal(ttl, '60');
  });

  it('refresh keeps the record; removal takes A and PTR away', async () => {
    const c = makeClient('host2', ZONE);
    assert.equal((await register(d, c, [a(c.name, '192.0.2.2')])).rcode, Rcode.NOERROR);
    assert.equal((await register(d, c, [a(c.name, '192.0.2.2')])).rcode, Rcode.NOERROR);
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.2']);
    const r = await register(d, c, [a(c.name, '192.0.2.2', 0, RRClass.NONE)]);
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(await named.query(c.name, 'A'), []);
    assert.deepEqual(await named.query(`2.${REV}`, 'PTR'), []);
  });

  it('exclude-nets: accepted and echoed but not sent upstream', async () => {
    const c = makeClient('host3', ZONE);
    const r = await register(d, c, [a(c.name, '192.0.2.201'), a(c.name, '192.0.2.3')]);
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(r.answers.map((x) => x.data).sort(), ['192.0.2.201', '192.0.2.3']);
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.3']);
  });

  it('a second key for a claimed name is refused and changes nothing in named', async () => {
    const c = makeClient('host4', ZONE);
    assert.equal((await register(d, c, [a(c.name, '192.0.2.4')])).rcode, Rcode.NOERROR);
    const thief = makeClient('HOST4', ZONE);
    const r = await register(d, thief, [a(thief.name, '192.0.2.66')]);
    assert.equal(r.rcode, Rcode.REFUSED);
    assert.deepEqual(reasons(r), ['Invalid key for name']);
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.4']);
  });

  it('upstream refusing (zone frozen) gives SERVFAIL; the retry after it recovers is installed', async () => {
    const c = makeClient('host5', ZONE);
    await named.rndc(['freeze', ZONE.slice(0, -1)]);
    try {
      const r = await register(d, c, [a(c.name, '192.0.2.5')]);
      assert.equal(r.rcode, Rcode.SERVFAIL);
      assert.deepEqual(reasons(r), ['Unable to update upstream servers']);
    } finally {
      await named.rndc(['thaw', ZONE.slice(0, -1)]);
    }
    const r2 = await register(d, c, [a(c.name, '192.0.2.5')]);
    assert.equal(r2.rcode, Rcode.NOERROR, reasons(r2).join());
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.5']);
  });

  it('hostile bytes never stop the daemon from serving the next client', async () => {
    const junk = [
      Buffer.alloc(0),
      Buffer.from([1]),
      randomBytes(11),
      Buffer.concat([Buffer.from([0xab, 0xcd, 0x28, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), randomBytes(40)]),
      Buffer.from([0, 1, 0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 6, 0, 1]),
      ...Array.from({ length: 50 }, () => randomBytes(1 + Math.floor(Math.random() * 300))),
    ];
    for (const j of junk) {
      await new Promise<void>((resolve) => {
        const s = net.connect(d.port, '127.0.0.1', () => s.end(frame(j)));
        s.on('data', () => undefined);
        s.on('close', () => resolve());
        s.on('error', () => resolve());
        setTimeout(() => s.destroy(), 2000);
      });
    }
    // A connection that sends a frame header and stalls does not block others.
    const stalled = net.connect(d.port, '127.0.0.1', () => stalled.write(Buffer.from([0x01, 0x00, 0x12])));
    stalled.on('error', () => undefined);
    const c = makeClient('host6', ZONE);
    assert.equal((await register(d, c, [a(c.name, '192.0.2.6')])).rcode, Rcode.NOERROR);
    stalled.destroy();
  });

  it('SIGHUP: a bad file keeps the old configuration; zones are added, changed and removed', async () => {
    const cfg = (zones: string): string => daemonYaml(d.port, d.dataDir, zones);
    await d.writeConfig('zones: [this is: not valid');
    d.signal('SIGHUP');
    await d.waitForLog('reload failed');
    const c = makeClient('host7', ZONE);
    assert.equal((await register(d, c, [a(c.name, '192.0.2.7')])).rcode, Rcode.NOERROR);

    const second = 'second.example.org.';
    await d.writeConfig(cfg(namedZone(named) + '\n' + namedZone(named, { zone: second }).replace(`zone: ${ZONE}`, `zone: ${second}`)));
    d.signal('SIGHUP');
    await d.waitForLog('zone added');
    const c2 = makeClient('other', second);
    const r = await register(d, c2, [a(c2.name, '192.0.2.8')]);
    assert.equal(r.rcode, Rcode.NOERROR, reasons(r).join());
    assert.deepEqual(await named.query(c2.name, 'A'), ['192.0.2.8']);
    // The first zone's claim survived the reload: its key still rules.
    assert.equal((await register(d, c, [a(c.name, '192.0.2.7')])).rcode, Rcode.NOERROR);

    // A changed zone takes its new settings without losing keys: max-addr-ttl 1h → 10m.
    await d.writeConfig(cfg(namedZone(named, { maxAddrTtl: '10m' }) + '\n' + namedZone(named, { zone: second }).replace(`zone: ${ZONE}`, `zone: ${second}`)));
    d.signal('SIGHUP');
    await d.waitForLog('zone settings changed');
    const clamped = await register(d, c, [a(c.name, '192.0.2.9', 7200)]);
    assert.equal(clamped.rcode, Rcode.NOERROR, reasons(clamped).join());
    assert.equal(clamped.answers[0]?.ttl, 600);

    await d.writeConfig(cfg(namedZone(named)));
    d.signal('SIGHUP');
    await d.waitForLog('zone removed');
    await eventually('records of the removed zone to go', () => named.query(c2.name, 'A'), (v) => v.length === 0, 5000);
    const r2 = await register(d, c2, [a(c2.name, '192.0.2.8')]);
    assert.equal(r2.rcode, Rcode.REFUSED);
    // listen-addr and listen-port never changed: the listeners were kept, so
    // no client was turned away while a reload ran.
    assert.equal(d.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('listening for registrations')).length, 1);
  });
});

describe('nsregd expiry against named', () => {
  let named: NamedLab;
  let d: NsregdLab;
  // Record lifetimes may reach an hour, keys live 4 s: a record that goes
  // within seconds of its claim can only have been taken by key expiry.
  const KEY_LIFETIME_MS = 4000;

  before(async () => {
    named = await namedWith(ZONE, REV);
    d = await startNsregd({ zonesYaml: namedZone(named, { maxAddrTtl: '1h', maxKeyTtl: '4s' }) });
  });

  after(async () => {
    await d?.stop();
    await named?.stop();
  });

  it('a record goes one TTL after it was registered, before its key expires', async () => {
    const c = makeClient('short', ZONE);
    const start = Date.now();
    assert.equal((await register(d, c, [a(c.name, '192.0.2.30', 2)])).rcode, Rcode.NOERROR);
    assert.deepEqual(await named.query(c.name, 'A'), ['192.0.2.30']);
    await eventually('record expiry', () => named.query(c.name, 'A'), (v) => v.length === 0, 4000);
    const took = Date.now() - start;
    assert.ok(took >= 1900 && took < KEY_LIFETIME_MS - 300, `expired after ${took} ms`);
  });

  it('an expired key takes its name and PTRs at the key deadline, though the record TTL runs for an hour', async () => {
    const k = makeClient('keyexp', ZONE);
    const start = Date.now();
    // TTL 3600 s: the record alone would stay an hour; nothing refreshes it.
    assert.equal((await register(d, k, [a(k.name, '192.0.2.31', 3600)])).rcode, Rcode.NOERROR);
    assert.deepEqual(await named.query(k.name, 'A'), ['192.0.2.31']);
    assert.deepEqual(await named.query(`31.${REV}`, 'PTR'), [k.name]);
    const gone = async (): Promise<string[]> => [...(await named.query(k.name, 'A')), ...(await named.query(`31.${REV}`, 'PTR'))];
    await eventually('the key expiry to remove the A record and its PTR', gone, (v) => v.length === 0, KEY_LIFETIME_MS + 3000);
    const took = Date.now() - start;
    assert.ok(took >= KEY_LIFETIME_MS - 100 && took < KEY_LIFETIME_MS + 2000, `removed after ${took} ms, key lifetime ${KEY_LIFETIME_MS} ms`);
    const expired = d.logs().filter((l) => l.msg === 'keys expired').flatMap((l) => l['names'] as string[]);
    assert.ok(expired.includes(k.name), `keys expired: ${expired.join()}`);
    // The name is free again: another key may claim it.
    const next = makeClient('keyexp', ZONE);
    assert.equal((await register(d, next, [a(next.name, '192.0.2.32', 60)])).rcode, Rcode.NOERROR);
  });
});

describe('nsregd shutdown and the original key database', () => {
  let named: NamedLab;

  before(async () => {
    named = await namedWith(ZONE, REV);
  });

  after(async () => {
    await named?.stop();
  });

  it('SIGTERM removes records and exits 0; keep-records keeps them; SIGINT exits 2', async () => {
    const d = await startNsregd({ zonesYaml: namedZone(named) });
    const c = makeClient('bye', ZONE);
    assert.equal((await register(d, c, [a(c.name, '192.0.2.40')])).rcode, Rcode.NOERROR);
    d.signal('SIGTERM');
    assert.equal(await d.exited(), 0);
    assert.deepEqual(await named.query(c.name, 'A'), []);
    await d.stop();

    const k = await startNsregd({ zonesYaml: namedZone(named, { upstream: { 'keep-records': true } }) });
    const c2 = makeClient('stay', ZONE);
    assert.equal((await register(k, c2, [a(c2.name, '192.0.2.41')])).rcode, Rcode.NOERROR);
    k.signal('SIGINT');
    assert.equal(await k.exited(), 2);
    assert.deepEqual(await named.query(c2.name, 'A'), ['192.0.2.41']);
    await k.stop();
  });

  it('loads the key database written by the original daemon; its claims hold', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-gokeydb-'));
    try {
      const dataDir = path.join(dir, 'data');
      await mkdir(dataDir);
      await copyFile('test/fixtures/go-keydb/dynamic.example.org.keydb', path.join(dataDir, 'dynamic.example.org.keydb'));
      const d = await startNsregd({ zonesYaml: namedZone(named), dir });
      try {
        const files = await readKeyPair(
          'test/fixtures/go-keydb/Kalpha.dynamic.example.org.+014+32957.key',
          'test/fixtures/go-keydb/Kalpha.dynamic.example.org.+014+32957.private',
        );
        const alpha: TestClient = {
          name: `alpha.${ZONE}`,
          zone: ZONE,
          rdata: files.publicFile.rdata,
          keyTag: keyTag(files.publicFile.rdata),
          keys: { privateKey: files.privateKey, publicKey: files.publicKey },
          algorithm: files.algorithm,
        };
        const ok = await register(d, alpha, [a(alpha.name, '192.0.2.50')]);
        assert.equal(ok.rcode, Rcode.NOERROR, reasons(ok).join());
        assert.deepEqual(await named.query(alpha.name, 'A'), ['192.0.2.50']);
        const impostor = makeClient('alpha', ZONE);
        const r = await register(d, impostor, [a(impostor.name, '192.0.2.51')]);
        assert.equal(r.rcode, Rcode.REFUSED);
        assert.deepEqual(reasons(r), ['Invalid key for name']);
        for (const other of ['bravo', 'charlie', 'delta']) {
          const c = makeClient(other, ZONE);
          assert.equal((await register(d, c, [])).rcode, Rcode.REFUSED, `${other} is claimed`);
        }
      } finally {
        await d.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
