/**
 * Names that are not host names cannot be claimed, and a first claim of a
 * name that holds the operator's records upstream is refused
 * (README "Names and existing records").
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { handlerLab, LAB_ZONE } from '../../helpers/handler-lab.js';
import { RRClass, Rcode } from '../../../src/dns/constants.js';
import type { DecodedMessage } from '../../../src/dns/message.js';
import { deleteName } from '../../../src/dns/update.js';
import { a, makeClient, signedUpdate } from '../../helpers/sig0-client.js';

const ZONE = LAB_ZONE;
const NOT_HOSTNAME = 'Name must be a host name (letters, digits, hyphens)';
const IN_USE = 'Name is in use by other records';

function assertRefused(m: DecodedMessage, rcode: number, reason: string): void {
  const reasons = m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data ? rr.data : []));
  assert.equal(m.rcode, rcode, `rcode ${m.rcode}, reasons ${reasons.join(' | ')}`);
  assert.deepEqual(reasons, [reason]);
  assert.equal(m.additionals[0]?.class, RRClass.ANY);
  assert.equal(m.answers.length, 0);
}

describe('hijack: claimed labels must be host names', () => {
  for (const label of ['*', '_srv', '_nsreg', 'a\\.b', '\\.', '\\000', 'a\\000', 'a\\032b', '\\255x', '-a', 'a-', 'a_b']) {
    it(`refuses ${JSON.stringify(label)} before storing a key or asking an upstream`, async () => {
      const l = handlerLab();
      const c = makeClient(label, ZONE);
      assertRefused(await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now })), Rcode.REFUSED, NOT_HOSTNAME);
      assert.equal(l.keys.size, 0);
      assert.equal(l.keys.tentative.size, 0);
      assert.equal(l.upstreams[0]?.changes.length, 0);
      assert.equal(l.upstreams[0]?.checked.length, 0);
    });
  }

  it('is checked before the signature (cheap first): a badly signed * claim hears the label refusal', async () => {
    const l = handlerLab();
    const c = makeClient('*', ZONE);
    const other = makeClient('other', ZONE);
    assertRefused(await l.send(signedUpdate(c, [], { now: l.now, signWith: other })), Rcode.REFUSED, NOT_HOSTNAME);
  });

  it('accepts host names of every case and of 1 and 63 octets', async () => {
    const l = handlerLab();
    for (const label of ['h', 'Host-7', '7', 'x'.repeat(63), 'xn--bcher-kva']) {
      const c = makeClient(label, ZONE);
      assert.equal((await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR, label);
    }
  });

  it('label-syntax printable accepts other visible ASCII, but never *, a dot or a byte outside 0x21-0x7e', async () => {
    const l = handlerLab({ zone: { labelSyntax: 'printable' } });
    for (const label of ['_srv', 'a_b', '-a', 'host!']) {
      const c = makeClient(label, ZONE);
      assert.equal((await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR, label);
    }
    for (const label of ['*', '*a', 'a*', 'a\\.b', '\\000', 'a\\032b', '\\200']) {
      const c = makeClient(label, ZONE);
      assertRefused(await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now })), Rcode.REFUSED, NOT_HOSTNAME);
    }
  });

  it('a key stored for such a name earlier (older version) is refused too: a * key publishes nothing more', async () => {
    const l = handlerLab();
    const c = makeClient('*', ZONE);
    l.keys.put(c.name, c.rdata, l.clock.now() + 3600_000);
    assertRefused(await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now })), Rcode.REFUSED, NOT_HOSTNAME);
    assert.equal(l.upstreams[0]?.changes.length, 0);
    assert.equal(l.cache.size, 0);
  });
});

describe('hijack: protect-existing', () => {
  it('a first claim of a name in use upstream is refused; no key, nothing sent, and the name stays unclaimed', async () => {
    const l = handlerLab({ upstreams: 2 });
    const [u0, u1] = l.upstreams;
    assert.ok(u0 && u1);
    u1.inUse.add(`taken.${ZONE}`);
    const c = makeClient('taken', ZONE);
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1'), deleteName(c.name)], { now: l.now }));
    assertRefused(r, Rcode.REFUSED, IN_USE);
    assert.deepEqual(u1.checked, [`taken.${ZONE}`]);
    assert.equal(u0.changes.length + u1.changes.length, 0, 'nothing at all reaches any upstream');
    assert.equal(l.keys.size, 0);
    assert.equal(l.keys.tentative.size, 0);
    assert.equal(l.keys.claims, 0);
    assert.equal(l.cache.size, 0);
    // Once the operator's records are gone, the name can be claimed.
    u1.inUse.clear();
    assert.equal((await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR);
    assert.equal(u1.changes.length, 1);
  });

  it('SERVFAIL (retry later) when an upstream cannot say whether the name is in use; nothing is stored', async () => {
    const l = handlerLab();
    const u = l.upstreams[0];
    assert.ok(u);
    u.failChecks = true;
    const c = makeClient('host1', ZONE);
    assertRefused(await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now })), Rcode.SERVFAIL, 'Unable to update upstream servers');
    assert.equal(l.keys.size + l.keys.tentative.size + u.changes.length, 0);
  });

  it('every upstream is asked; a definite "in use" wins over one that cannot answer', async () => {
    const l = handlerLab({ upstreams: 2 });
    const [u0, u1] = l.upstreams;
    assert.ok(u0 && u1);
    u0.failChecks = true;
    u1.inUse.add(`taken.${ZONE}`);
    const c = makeClient('taken', ZONE);
    assertRefused(await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now })), Rcode.REFUSED, IN_USE);
    assert.deepEqual([u0.checked, u1.checked], [[c.name], [c.name]]);
    assert.equal(u0.changes.length + u1.changes.length + l.keys.size + l.keys.tentative.size, 0);
  });

  it('only first claims are checked: updates with the name\'s key are not', async () => {
    const l = handlerLab();
    const u = l.upstreams[0];
    assert.ok(u);
    const c = makeClient('host1', ZONE);
    assert.equal((await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR);
    u.inUse.add(c.name); // our own records now
    assert.equal((await l.send(signedUpdate(c, [a(c.name, '192.0.2.2')], { now: l.now, id: 2 }))).rcode, Rcode.NOERROR);
    assert.deepEqual(u.checked, [c.name]);
  });
});
