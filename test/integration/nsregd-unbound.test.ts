/**
 * nsregd with a real Unbound as upstream (remote control over TLS): the
 * local zone is created, claims show up, a second address of a name does
 * not wipe the first (the original re-added only the update's records),
 * removals and shutdown clean up.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RRClass, Rcode } from '../../src/dns/constants.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { a, aaaa, makeClient, signedUpdate } from '../helpers/sig0-client.js';
import { startUnbound, type UnboundLab } from '../helpers/unbound.js';
import { LOOPBACK_ZONE, unboundUpstream, zoneYaml } from '../helpers/config-yaml.js';

const ZONE = 'dynamic.example.org.';

describe('nsregd with a real unbound upstream', () => {
  let unbound: UnboundLab;
  let d: NsregdLab;

  before(async () => {
    unbound = await startUnbound();
    d = await startNsregd({
      zonesYaml: zoneYaml(ZONE, {
        ...LOOPBACK_ZONE,
        upstreams: [unboundUpstream(unbound, { 'reverse-zones': ['2.0.192.in-addr.arpa'] })],
      }),
    });
  });

  after(async () => {
    await d?.stop();
    await unbound?.stop();
  });

  const now = (): number => Math.floor(Date.now() / 1000);

  it('creates the local zone and publishes claimed records with PTRs', async () => {
    assert.ok((await unbound.localZones()).some((l) => l.startsWith(`${ZONE} static`)), (await unbound.localZones()).join('\n'));
    const c = makeClient('ub1', ZONE);
    const r = await d.send(signedUpdate(c, [a(c.name, '192.0.2.11'), aaaa(c.name, '2001:db8::11')], { now: now() }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(await unbound.query(c.name, 'A'), ['192.0.2.11']);
    assert.deepEqual(await unbound.query(c.name, 'AAAA'), ['2001:db8::11']);
    assert.deepEqual(await unbound.query('11.2.0.192.in-addr.arpa.', 'PTR'), [c.name]);
  });

  it('a later address of the same name keeps the earlier ones; removal takes only its own', async () => {
    const c = makeClient('ub2', ZONE);
    assert.equal((await d.send(signedUpdate(c, [a(c.name, '192.0.2.21')], { now: now() }))).rcode, Rcode.NOERROR);
    assert.deepEqual(await unbound.query(c.name, 'A'), ['192.0.2.21']);
    assert.equal((await d.send(signedUpdate(c, [a(c.name, '192.0.2.22')], { now: now() }))).rcode, Rcode.NOERROR);
    assert.deepEqual((await unbound.query(c.name, 'A')).sort(), ['192.0.2.21', '192.0.2.22']);
    const r = await d.send(signedUpdate(c, [a(c.name, '192.0.2.21', 0, RRClass.NONE)], { now: now() }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(await unbound.query(c.name, 'A'), ['192.0.2.22']);
    const lines = await unbound.localData();
    assert.ok(!lines.some((l) => l.includes('192.0.2.21')), lines.join('\n'));
  });

  it('shutdown removes the records from unbound', async () => {
    const c = makeClient('ub3', ZONE);
    assert.equal((await d.send(signedUpdate(c, [a(c.name, '192.0.2.33')], { now: now() }))).rcode, Rcode.NOERROR);
    // Both names are published before the stop, so their absence after it is the shutdown's doing.
    assert.deepEqual(await unbound.query(c.name, 'A'), ['192.0.2.33']);
    assert.deepEqual(await unbound.query(`ub2.${ZONE}`, 'A'), ['192.0.2.22']);
    const before = await unbound.localData();
    assert.ok(before.some((l) => l.includes('192.0.2.33')) && before.some((l) => l.includes('192.0.2.22')), before.join('\n'));
    d.signal('SIGTERM');
    assert.equal(await d.exited(), 0);
    const lines = await unbound.localData();
    assert.ok(!lines.some((l) => l.includes('192.0.2.33') || l.includes('192.0.2.22')), lines.join('\n'));
  });
});
