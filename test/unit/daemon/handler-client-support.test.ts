/**
 * What the handler offers nsregc to keep a name alive: the start-up
 * identifier in the SRV self-answer (a restart is visible to a liveness
 * probe) and the KEY-only update (a client with no address refreshes its
 * claim).
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { INSTANCE_TXT_PREFIX, SITE_TXT_PREFIX } from '../../../src/daemon/handler.js';
import { Opcode, RRClass, RRType, Rcode } from '../../../src/dns/constants.js';
import { emptyMessage, encodeMessage } from '../../../src/dns/message.js';
import { handlerLab, LAB_ZONE } from '../../helpers/handler-lab.js';
import { a, makeClient, signedUpdate } from '../../helpers/sig0-client.js';

function srvQuery(id: number): Buffer {
  const q = emptyMessage(id, Opcode.QUERY);
  q.questions.push({ name: `_nsreg._tcp.${LAB_ZONE}`, type: RRType.SRV, class: RRClass.IN });
  return encodeMessage(q);
}

describe('handler: SRV self-answer with the start-up identifier', () => {
  it('carries one TXT nsregd-instance=<id> in Additional, the answer itself unchanged', async () => {
    const l = handlerLab();
    const plain = await l.send(srvQuery(5));
    assert.deepEqual(plain.additionals, [], 'no identifier configured: no additional data');
    l.ctx.instanceId = '0123456789abcdef';
    const r = await l.send(srvQuery(5));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(r.answers, plain.answers);
    assert.deepEqual(r.additionals, [
      { name: `_nsreg._tcp.${LAB_ZONE}`, type: 'TXT', class: RRClass.IN, ttl: 0, data: [`${INSTANCE_TXT_PREFIX}0123456789abcdef`] },
    ]);
  });

  it('with a site id: a second TXT nsregd-site=<id> after the instance TXT, the answer itself unchanged', async () => {
    const l = handlerLab();
    const plain = await l.send(srvQuery(6));
    l.ctx.instanceId = '0123456789abcdef';
    l.ctx.siteId = 'site-a';
    const r = await l.send(srvQuery(6));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(r.answers, plain.answers);
    assert.deepEqual(r.additionals, [
      { name: `_nsreg._tcp.${LAB_ZONE}`, type: 'TXT', class: RRClass.IN, ttl: 0, data: [`${INSTANCE_TXT_PREFIX}0123456789abcdef`] },
      { name: `_nsreg._tcp.${LAB_ZONE}`, type: 'TXT', class: RRClass.IN, ttl: 0, data: [`${SITE_TXT_PREFIX}site-a`] },
    ]);
    // A site id alone (no instance id) is carried too.
    delete l.ctx.instanceId;
    const siteOnly = await l.send(srvQuery(7));
    assert.deepEqual(siteOnly.additionals, [
      { name: `_nsreg._tcp.${LAB_ZONE}`, type: 'TXT', class: RRClass.IN, ttl: 0, data: [`${SITE_TXT_PREFIX}site-a`] },
    ]);
  });
});

describe('handler: an update carrying only the KEY', () => {
  it('is accepted and moves the key expiry, records untouched', async () => {
    const l = handlerLab();
    const c = makeClient('quiet', LAB_ZONE);
    const keyTtl = 7200;
    const claim = await l.send(signedUpdate(c, [a(c.name, '192.0.2.10', 3600)], { now: l.now, id: 1, keyTtl }));
    assert.equal(claim.rcode, Rcode.NOERROR);
    const first = l.zone.keyOf(c.name)?.expiry;
    assert.equal(first, l.clock.now() + keyTtl * 1000);

    l.clock.advance(1800_000);
    const now = Math.floor(l.clock.now() / 1000);
    const refresh = await l.send(signedUpdate(c, [], { now, id: 2, keyTtl }));
    assert.equal(refresh.rcode, Rcode.NOERROR);
    assert.deepEqual(refresh.answers, [], 'nothing to echo');
    assert.equal(l.zone.keyOf(c.name)?.expiry, l.clock.now() + keyTtl * 1000);
    assert.deepEqual(
      l.zone.liveRecords(c.name).map((r) => r.address),
      ['192.0.2.10'],
    );
  });

  it('keeps an address-less claim past its first key TTL', async () => {
    const l = handlerLab();
    const c = makeClient('empty', LAB_ZONE);
    const keyTtl = 600;
    assert.equal((await l.send(signedUpdate(c, [], { now: l.now, id: 1, keyTtl }))).rcode, Rcode.NOERROR);
    for (let i = 2; i <= 4; i++) {
      l.clock.advance(300_000);
      const r = await l.send(signedUpdate(c, [], { now: Math.floor(l.clock.now() / 1000), id: i, keyTtl }));
      assert.equal(r.rcode, Rcode.NOERROR);
    }
    // 15 minutes after the claim, past the first 10-minute lifetime: still ours, another key is refused.
    assert.ok(l.zone.keyOf(c.name) !== undefined);
    const thief = makeClient('empty', LAB_ZONE);
    const stolen = await l.send(signedUpdate(thief, [], { now: Math.floor(l.clock.now() / 1000), id: 9, keyTtl }));
    assert.equal(stolen.rcode, Rcode.REFUSED);
  });
});
