/**
 * nsregd with a real Unbound that loses its data: records registered
 * through nsregd are back within 30 s of an Unbound restart, and an Unbound
 * not running when nsregd starts gets its local zone once it runs.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Rcode } from '../../src/dns/constants.js';
import { eventually } from '../helpers/eventually.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { a, makeClient, signedUpdate } from '../helpers/sig0-client.js';
import { startUnbound, type UnboundLab } from '../helpers/unbound.js';
import { LOOPBACK_ZONE, unboundUpstream, zoneYaml } from '../helpers/config-yaml.js';

const ZONE = 'dynamic.example.org.';
const REPAIR_MS = 30_000;

describe('nsregd repairs a restarted unbound', () => {
  const labs: Array<{ stop(): Promise<void> }> = [];

  const start = async (): Promise<{ unbound: UnboundLab; d: NsregdLab }> => {
    const unbound = await startUnbound();
    labs.push(unbound);
    const d = await startNsregd({
      zonesYaml: zoneYaml(ZONE, {
        ...LOOPBACK_ZONE,
        upstreams: [unboundUpstream(unbound, { 'reverse-zones': ['2.0.192.in-addr.arpa'], 'status-interval': '1s' })],
      }),
    });
    labs.unshift(d);
    return { unbound, d };
  };

  after(async () => {
    for (const l of labs) await l.stop();
  });

  const now = (): number => Math.floor(Date.now() / 1000);

  it('publishes the registered records again after unbound restarts', async () => {
    const { unbound, d } = await start();
    const c = makeClient('rs1', ZONE);
    const r = await d.send(signedUpdate(c, [a(c.name, '192.0.2.61')], { now: now() }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(await unbound.query(c.name, 'A'), ['192.0.2.61']);
    await unbound.start();
    await eventually('the record back', () => unbound.query(c.name, 'A'), (v) => v.join() === '192.0.2.61', REPAIR_MS);
    await eventually('its PTR back', () => unbound.query('61.2.0.192.in-addr.arpa.', 'PTR'), (v) => v.join() === c.name, REPAIR_MS);
    assert.ok((await unbound.localZones()).some((l) => l.startsWith(`${ZONE} static`)));
  });

  it('creates the local zone once unbound runs when it was down at start-up', async () => {
    const unbound = await startUnbound();
    labs.push(unbound);
    await unbound.halt();
    const d = await startNsregd({
      zonesYaml: zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [unboundUpstream(unbound, { 'status-interval': '1s' })] }),
    });
    labs.unshift(d);
    await unbound.start();
    await eventually('the local zone', () => unbound.localZones(), (z) => z.some((l) => l.startsWith(`${ZONE} static`)), REPAIR_MS);
    const c = makeClient('rs2', ZONE);
    const r = await d.send(signedUpdate(c, [a(c.name, '192.0.2.62')], { now: now() }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(await unbound.query(c.name, 'A'), ['192.0.2.62']);
  });
});
