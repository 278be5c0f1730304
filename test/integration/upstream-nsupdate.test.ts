/**
 * The nsupdate upstream against a real BIND named: TSIG (two algorithms),
 * UDP and TCP, PTRs, filtering, big batches split over several messages,
 * and the failure paths.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';


import { Cidr } from '../../src/net/address.js';
import type { NsupdateUpstreamConfig } from '../../src/config/upstreams/index.js';
import { systemClock } from '../../src/clock.js';
import { createNsupdateUpstream, UpstreamRcodeError } from '../../src/daemon/upstreams/nsupdate.js';
import { NameInUseError, UpstreamError, type Upstream } from '../../src/daemon/upstreams/upstream.js';
import { Rcode } from '../../src/dns/constants.js';
import { TsigError } from '../../src/dns/errors.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';
import { nsupdateUpstreamConfig } from '../helpers/nsupdate-upstream.js';
import { logSink } from '../helpers/log-sink.js';
import { addr, change } from '../helpers/records.js';

const ZONE = 'dyn.example.';
const REV4 = '2.0.192.in-addr.arpa.';
const REV6 = '8.b.d.0.1.0.0.2.ip6.arpa.';
const LOCKED = 'locked.example.';

const key256: TsigKeySpec = { name: 'nsregd-256.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };
const key512: TsigKeySpec = { name: 'nsregd-512.', algorithm: 'hmac-sha512', secret: randomBytes(64).toString('base64') };


function cidr(s: string): Cidr {
  const c = Cidr.parse(s);
  assert.ok(c);
  return c;
}

const A = addr;

describe('nsupdate upstream against named', () => {
  let lab: NamedLab;
  const sink = logSink();

  const upstream = (over: Partial<NsupdateUpstreamConfig> = {}, key: TsigKeySpec = key256): Upstream =>
    createNsupdateUpstream(
      nsupdateUpstreamConfig(lab, key, { reverseZones: [REV4, REV6], ...over }),
      { zone: ZONE, logger: sink.logger, clock: systemClock, liveRecords: () => [], allLiveRecords: () => [], dataDir: '/nonexistent', registration: () => ({ host: '127.0.0.1', port: 8053 }) },
    );

  /** Owner names and types in the zone, from a full transfer. */
  const axfr = async (zone: string): Promise<string[]> => {
    const out = await lab.dig(['+tcp', '+noall', '+answer', 'AXFR', zone]);
    return out
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith(';'))
      .map((l) => l.split(/\s+/))
      .map((f) => `${f[0]} ${f[2]} ${f[3]}`);
  };

  before(async () => {
    const policy = [`grant ${key256.name} zonesub ANY;`, `grant ${key512.name} zonesub ANY;`];
    lab = await startNamed({
      tsigKeys: [key256, key512],
      zones: [
        { name: ZONE, updatePolicy: policy },
        { name: REV4, updatePolicy: policy },
        { name: REV6, updatePolicy: policy },
        { name: LOCKED },
      ],
      extraOptions: 'allow-transfer { 127.0.0.1; };',
    });
  });

  after(async () => {
    await lab?.stop();
  });

  it('adds, removes single records and removes names, with PTRs following (hmac-sha256, TCP)', async () => {
    const up = upstream();
    const h = `h1.${ZONE}`;
    const v4 = A(h, '192.0.2.10', 3600);
    const v6 = A(h, '2001:db8::10', 120);
    await up.apply(change({ add: [v4, v6] }));
    assert.deepEqual(await lab.query(h, 'A'), ['192.0.2.10']);
    assert.deepEqual(await lab.query(h, 'AAAA'), ['2001:db8::10']);
    assert.deepEqual(await lab.query('10.2.0.192.in-addr.arpa.', 'PTR'), [h]);
    const v6rev = '0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.';
    assert.deepEqual(await lab.query(v6rev, 'PTR'), [h]);
    // TTL clamped to record-ttl (600 s), on the PTR too; the lower one kept.
    const ttlOf = async (name: string, type: string): Promise<number> => {
      const line = (await lab.dig(['+noall', '+answer', name, type])).trim().split(/\s+/);
      return Number(line[1]);
    };
    assert.equal(await ttlOf(h, 'A'), 600);
    assert.equal(await ttlOf('10.2.0.192.in-addr.arpa.', 'PTR'), 600);
    assert.equal(await ttlOf(h, 'AAAA'), 120);

    await up.apply(change({ remove: [{ ...v4, ttl: 0 }] }));
    assert.deepEqual(await lab.query(h, 'A'), []);
    assert.deepEqual(await lab.query('10.2.0.192.in-addr.arpa.', 'PTR'), []);
    assert.deepEqual(await lab.query(h, 'AAAA'), ['2001:db8::10']);

    await up.apply(change({ removeNames: [{ name: h, addresses: [v6] }] }));
    assert.deepEqual(await lab.query(h, 'AAAA'), []);
    assert.deepEqual(await lab.query(v6rev, 'PTR'), [], 'PTR of a removed name must go too');

    const debug = sink.lines.filter((l) => l.level === 20 && l.msg === 'forward update accepted');
    assert.ok(debug.some((l) => l['add'] === 2 && l['messages'] === 1));
  });

  it('works with hmac-sha512 over UDP', async () => {
    const up = upstream({ tcp: false }, key512);
    const h = `h2.${ZONE}`;
    await up.apply(change({ add: [A(h, '192.0.2.20'), A(h, '2001:db8::20')] }));
    assert.deepEqual(await lab.query(h, 'A'), ['192.0.2.20']);
    assert.deepEqual(await lab.query('20.2.0.192.in-addr.arpa.', 'PTR'), [h]);
    await up.apply(change({ removeNames: [{ name: h, addresses: [A(h, '192.0.2.20'), A(h, '2001:db8::20')] }] }));
    assert.deepEqual(await lab.query(h, 'A'), []);
    assert.deepEqual(await lab.query('20.2.0.192.in-addr.arpa.', 'PTR'), []);
  });

  it('drops records inside exclude-nets and succeeds without sending when nothing is left', async () => {
    const up = upstream({ excludeNets: [cidr('192.0.2.128/25'), cidr('10.0.0.0/8')] });
    const h = `h3.${ZONE}`;
    await up.apply(change({ add: [A(h, '192.0.2.30'), A(h, '192.0.2.200'), A(h, '10.9.9.9')] }));
    assert.deepEqual(await lab.query(h, 'A'), ['192.0.2.30']);
    assert.deepEqual(await lab.query('200.2.0.192.in-addr.arpa.', 'PTR'), []);
    const before = sink.lines.length;
    // Only excluded records, against a port nothing listens on: must not even try.
    const nowhere = upstream({ port: 9, excludeNets: [cidr('10.0.0.0/8')] });
    await nowhere.apply(change({ add: [A(h, '10.1.1.1')] }));
    assert.ok(sink.lines.slice(before).some((l) => l.msg === 'nothing to send after filtering'));
  });

  it('with zone unset sends only the reverse updates', async () => {
    const up = upstream({ zone: null });
    const h = `h4.${ZONE}`;
    await up.apply(change({ add: [A(h, '192.0.2.40')] }));
    assert.deepEqual(await lab.query(h, 'A'), []);
    assert.deepEqual(await lab.query('40.2.0.192.in-addr.arpa.', 'PTR'), [h]);
  });

  it('logs, not throws, when a reverse update fails', async () => {
    // named does not serve 100.51.198.in-addr.arpa., so it answers NOTAUTH.
    const up = upstream({ reverseZones: ['100.51.198.in-addr.arpa.'] });
    const h = `h5.${ZONE}`;
    const before = sink.lines.length;
    await up.apply(change({ add: [A(h, '198.51.100.5')] }));
    assert.deepEqual(await lab.query(h, 'A'), ['198.51.100.5']);
    const warn = sink.lines.slice(before).find((l) => l.level === 40 && l.msg === 'reverse update failed');
    assert.ok(warn, 'expected a warning');
  });

  for (const tcp of [true, false]) {
    it(`lands 2,000 records in one apply over ${tcp ? 'TCP' : 'UDP'}, and removes them all again`, async () => {
      const up = upstream({ tcp, reverseZones: [] });
      const tag = tcp ? 'bt' : 'bu';
      const recs = Array.from({ length: 2000 }, (_, i) => A(`${tag}-${i}.${ZONE}`, `192.0.2.${i % 250}`));
      const before = sink.lines.length;
      await up.apply(change({ add: recs }));
      const present = (await axfr(ZONE)).filter((l) => l.startsWith(`${tag}-`) && l.endsWith(' IN A'));
      assert.equal(present.length, 2000);
      const sent = sink.lines.slice(before).find((l) => l.msg === 'forward update accepted');
      assert.ok(sent && typeof sent['messages'] === 'number' && sent['messages'] > 1, 'expected several messages');
      assert.deepEqual(await lab.query(`${tag}-1999.${ZONE}`, 'A'), ['192.0.2.249']);

      await up.apply(change({ remove: recs.map((r) => ({ ...r, ttl: 0 })) }));
      assert.equal((await axfr(ZONE)).filter((l) => l.startsWith(`${tag}-`)).length, 0);
    });
  }

  it('fails with UpstreamError carrying BADSIG when the secret is wrong', async () => {
    const up = upstream({ tsigSecret: randomBytes(32).toString('base64') });
    const err = await up.apply(change({ add: [A(`h6.${ZONE}`, '192.0.2.60')] })).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof UpstreamError);
    assert.equal(err.code, 'ERR_UPSTREAM');
    assert.ok(err.cause instanceof TsigError);
    assert.equal(err.cause.reason, 'BADSIG');
    assert.equal(err.cause.remote, true);
    assert.deepEqual(await lab.query(`h6.${ZONE}`, 'A'), []);
  });

  it('protect-existing: a name holding any record is in use, a free name is not, and asking changes nothing', async () => {
    const up = upstream();
    const ask = (u: Upstream, name: string): Promise<void> => {
      if (u.checkUnused === undefined) return Promise.reject(new Error('nsupdate upstreams can check names'));
      return u.checkUnused(name);
    };
    const op = `op.${ZONE}`;
    const r = await lab.nsupdate([`update add ${op} 300 IN TXT "operator"`], { key: key256 });
    assert.equal(r.code, 0, r.stderr);
    await assert.rejects(ask(up, op), (e: unknown) => e instanceof NameInUseError && e.owner === op);
    // Our own address records count too: nsregd does not know them at a first claim.
    await up.apply(change({ add: [A(`addr.${ZONE}`, '192.0.2.80')] }));
    await assert.rejects(ask(up, `addr.${ZONE}`), NameInUseError);
    await ask(up, `free.${ZONE}`);
    assert.deepEqual(await lab.query(`free.${ZONE}`, 'A'), []);
    assert.deepEqual(await lab.query(op, 'TXT'), ['"operator"']);
    // Switched off: nothing is asked, every name may be claimed.
    await ask(upstream({ protectExisting: false }), op);
    // A server that cannot answer is a failure to retry, not a refusal.
    const badKey = upstream({ tsigSecret: randomBytes(32).toString('base64') });
    await assert.rejects(ask(badKey, op), (e: unknown) => e instanceof UpstreamError && !(e instanceof NameInUseError));
  });

  it('removing a name deletes its A and AAAA RRsets only; the operator\'s TXT and MX stay', async () => {
    const up = upstream();
    const h = `mixed.${ZONE}`;
    const r = await lab.nsupdate([`update add ${h} 300 IN TXT "operator"`, `update add ${h} 300 IN MX 10 mail.example.`], { key: key256 });
    assert.equal(r.code, 0, r.stderr);
    const v4 = A(h, '192.0.2.81');
    await up.apply(change({ add: [v4, A(h, '2001:db8::81')] }));
    await up.apply(change({ removeNames: [{ name: h, addresses: [v4] }] }));
    assert.deepEqual(await lab.query(h, 'A'), []);
    assert.deepEqual(await lab.query(h, 'AAAA'), []);
    assert.deepEqual(await lab.query('81.2.0.192.in-addr.arpa.', 'PTR'), []);
    assert.deepEqual(await lab.query(h, 'TXT'), ['"operator"']);
    assert.deepEqual(await lab.query(h, 'MX'), ['10 mail.example.']);
  });

  it('fails with the rcode when the server refuses the update', async () => {
    const up = upstream({ zone: LOCKED, reverseZones: [] });
    const err = await up.apply(change({ add: [A(`x.${LOCKED}`, '192.0.2.70')] })).then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof UpstreamRcodeError);
    assert.equal(err.code, 'ERR_UPSTREAM');
    assert.equal(err.rcode, Rcode.REFUSED);
  });

  for (const tcp of [true, false]) {
    it(`fails within the timeout when named is gone (${tcp ? 'TCP' : 'UDP'})`, async () => {
      const gone = await startNamed({ tsigKeys: [key256], zones: [{ name: ZONE, allowUpdateKey: key256.name }] });
      const port = gone.port;
      await gone.stop();
      const up = createNsupdateUpstream(
        {
          type: 'nsupdate',
          hostname: '127.0.0.1',
          port,
          tcp,
          timeout: 1500,
          zone: ZONE,
          reverseZones: [],
          recordTtl: 600_000,
          tsigName: key256.name,
          tsigSecret: key256.secret,
          tsigAlgorithm: 'hmac-sha256',
          keepRecords: false,
          excludeNets: [],
          protectExisting: true,
          reconcileInterval: 0,
        },
        { zone: ZONE, logger: sink.logger, clock: systemClock, liveRecords: () => [], allLiveRecords: () => [], dataDir: '/nonexistent', registration: () => ({ host: '127.0.0.1', port: 8053 }) },
      );
      const started = Date.now();
      await assert.rejects(up.apply(change({ add: [A(`h7.${ZONE}`, '192.0.2.70')] })), (e: unknown) => {
        assert.ok(e instanceof UpstreamError);
        assert.equal(e.code, 'ERR_UPSTREAM');
        return true;
      });
      assert.ok(Date.now() - started < 1500 + 1000, `took ${Date.now() - started} ms`);
    });
  }
});
