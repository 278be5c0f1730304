/**
 * The unbound upstream against a real Unbound's remote control: local zone
 * creation, whole-name rewrites that keep sibling records, PTRs, removal,
 * and error replies.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';

import pino from 'pino';

import { Cidr } from '../../src/net/address.js';
import type { UnboundUpstreamConfig } from '../../src/config/upstreams/index.js';
import { systemClock } from '../../src/clock.js';
import { recordKey, type AddrRecord, type UpstreamChange } from '../../src/daemon/records.js';
import { createUnboundUpstream } from '../../src/daemon/upstreams/unbound.js';
import { UpstreamError, type Upstream } from '../../src/daemon/upstreams/upstream.js';
import { requireTool, run } from '../helpers/tools.js';
import { startUnbound, unboundUpstreamConfig, type UnboundLab } from '../helpers/unbound.js';
import { addr, change } from '../helpers/records.js';

const ZONE = 'dyn.example.';
const REV4 = '2.0.192.in-addr.arpa.';

const A = addr;

/**
 * A stand-in for the daemon's record cache, updated the way the handler
 * does it: only after apply() succeeded.
 */
class Cache {
  readonly #names = new Map<string, Map<string, AddrRecord>>();
  live(name: string): AddrRecord[] {
    return [...(this.#names.get(name)?.values() ?? [])];
  }
  commit(c: UpstreamChange): void {
    for (const n of c.removeNames) this.#names.delete(n.name);
    for (const r of c.remove) this.#names.get(r.name)?.delete(recordKey(r));
    for (const r of c.add) {
      let m = this.#names.get(r.name);
      if (m === undefined) this.#names.set(r.name, (m = new Map<string, AddrRecord>()));
      m.set(recordKey(r), r);
    }
  }
}

describe('unbound upstream against unbound', () => {
  let lab: UnboundLab;

  const make = (cache: Cache, over: Partial<UnboundUpstreamConfig> = {}): Upstream =>
    createUnboundUpstream(
      unboundUpstreamConfig(lab, { reverseZones: [REV4], ...over }),
      { zone: ZONE, logger: pino({ level: 'silent' }), clock: systemClock, liveRecords: (n) => cache.live(n), allLiveRecords: () => [], dataDir: '/nonexistent', registration: () => ({ host: '127.0.0.1', port: 8053 }) },
    );

  const applyAndCommit = async (up: Upstream, cache: Cache, c: UpstreamChange): Promise<void> => {
    await up.apply(c);
    cache.commit(c);
  };

  /** local data lines of one owner name. */
  const dataOf = async (name: string): Promise<string[]> =>
    (await lab.localData()).filter((l) => l.split(' ')[0] === name).sort();

  before(async () => {
    lab = await startUnbound();
  });

  after(async () => {
    await lab?.stop();
  });

  it('creates the local zone at start-up', async () => {
    const up = make(new Cache());
    await up.start();
    assert.ok((await lab.localZones()).includes(`${ZONE} static`));
  });

  it('adds records and PTRs, keeps sibling records across later applies, and removes', async () => {
    const cache = new Cache();
    const up = make(cache);
    await up.start();
    const h = `h1.${ZONE}`;
    await applyAndCommit(up, cache, change({ add: [A(h, '192.0.2.1', 3600)] }));
    assert.deepEqual(await lab.query(h, 'A'), ['192.0.2.1']);
    assert.deepEqual(await lab.query('1.2.0.192.in-addr.arpa.', 'PTR'), [h]);
    // TTL clamped to record-ttl.
    assert.deepEqual(await dataOf(h), [`${h} 600 IN A 192.0.2.1`]);

    // A later apply with another address of the same name must not wipe the first.
    await applyAndCommit(up, cache, change({ add: [A(h, '192.0.2.2'), A(h, '2001:db8::2')] }));
    assert.deepEqual((await lab.query(h, 'A')).sort(), ['192.0.2.1', '192.0.2.2']);
    assert.deepEqual(await lab.query(h, 'AAAA'), ['2001:db8::2']);
    assert.deepEqual(await lab.query('1.2.0.192.in-addr.arpa.', 'PTR'), [h]);
    assert.deepEqual(await lab.query('2.2.0.192.in-addr.arpa.', 'PTR'), [h]);

    // Removing one record keeps its siblings and drops its PTR.
    await applyAndCommit(up, cache, change({ remove: [A(h, '192.0.2.1', 0)] }));
    assert.deepEqual(await lab.query(h, 'A'), ['192.0.2.2']);
    assert.deepEqual(await lab.query(h, 'AAAA'), ['2001:db8::2']);
    assert.deepEqual(await dataOf('1.2.0.192.in-addr.arpa.'), []);
    assert.deepEqual(await dataOf('2.2.0.192.in-addr.arpa.'), [`2.2.0.192.in-addr.arpa. 300 IN PTR ${h}`]);

    // Another name is untouched by all of this.
    const g = `g1.${ZONE}`;
    await applyAndCommit(up, cache, change({ add: [A(g, '192.0.2.9')] }));

    // Removing the name removes everything of it, PTRs included.
    await applyAndCommit(up, cache, change({ removeNames: [{ name: h, addresses: cache.live(h) }] }));
    assert.deepEqual(await dataOf(h), []);
    assert.deepEqual(await dataOf('2.2.0.192.in-addr.arpa.'), []);
    assert.deepEqual(await lab.query(g, 'A'), ['192.0.2.9']);
  });

  it('keeps data it does not manage at the names it rewrites: operator TXT/MX, PTRs to other zones', async () => {
    const cache = new Cache();
    const up = make(cache);
    await up.start();
    const h = `op.${ZONE}`;
    const rev = '5.2.0.192.in-addr.arpa.';
    await lab.control(['local_data', `${h} 300 IN TXT "operator"`]);
    await lab.control(['local_data', `${h} 300 IN MX 10 mail.example.`]);
    await lab.control(['local_data', `${rev} 300 IN PTR printer.example.`]);
    const foreign = [`${h} 300 IN MX 10 mail.example.`, `${h} 300 IN TXT "operator"`];
    await applyAndCommit(up, cache, change({ add: [A(h, '192.0.2.5')] }));
    assert.deepEqual(await dataOf(h), [`${h} 300 IN A 192.0.2.5`, ...foreign]);
    assert.deepEqual(await dataOf(rev), [`${rev} 300 IN PTR ${h}`, `${rev} 300 IN PTR printer.example.`]);
    // A whole-name removal (key expiry) takes only what nsregd put there.
    await applyAndCommit(up, cache, change({ removeNames: [{ name: h, addresses: cache.live(h) }] }));
    assert.deepEqual(await dataOf(h), foreign);
    assert.deepEqual(await dataOf(rev), [`${rev} 300 IN PTR printer.example.`]);
  });

  it('leaves excluded addresses out', async () => {
    const cache = new Cache();
    const net = Cidr.parse('192.0.2.128/25');
    assert.ok(net);
    const up = make(cache, { excludeNets: [net], zoneType: 'none' });
    const h = `h2.${ZONE}`;
    await applyAndCommit(up, cache, change({ add: [A(h, '192.0.2.3'), A(h, '192.0.2.200')] }));
    assert.deepEqual(await dataOf(h), [`${h} 300 IN A 192.0.2.3`]);
    assert.deepEqual(await dataOf('200.2.0.192.in-addr.arpa.'), []);
  });

  it('turns an error reply into UpstreamError', async () => {
    const up = make(new Cache(), { zoneType: 'no_such_type' });
    await assert.rejects(up.start(), (e: unknown) => {
      assert.ok(e instanceof UpstreamError);
      assert.equal(e.code, 'ERR_UPSTREAM');
      return true;
    });
    const bad = make(new Cache());
    // A name Unbound cannot parse (empty label) is reported as an error line.
    await assert.rejects(bad.apply(change({ add: [A('bad..name.', '192.0.2.5')] })), UpstreamError);
  });

  it('fails with UpstreamError when either side of the TLS channel is not trusted', async () => {
    // A second, unrelated set of certificates from unbound-control-setup.
    const other = await mkdtemp(path.join(tmpdir(), 'nsregd-certs-'));
    try {
      const r = await run(requireTool('unbound-control-setup'), ['-d', other], { timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      const foreignClient = make(new Cache(), {
        clientCert: path.join(other, 'unbound_control.pem'),
        clientKey: path.join(other, 'unbound_control.key'),
      });
      await assert.rejects(foreignClient.start(), UpstreamError);
      const foreignServer = make(new Cache(), { serverCert: path.join(other, 'unbound_server.pem') });
      await assert.rejects(foreignServer.start(), UpstreamError);
      const wrongName = make(new Cache(), { serverName: 'not-unbound' });
      await assert.rejects(wrongName.start(), UpstreamError);
      // The genuine material still works.
      await make(new Cache()).start();
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
