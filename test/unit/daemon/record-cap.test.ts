import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { RRClass, Rcode } from '../../../src/dns/constants.js';
import type { DecodedMessage } from '../../../src/dns/message.js';
import { deleteName, deleteRRset } from '../../../src/dns/update.js';
import { handlerLab, LAB_ZONE, type HandlerLab } from '../../helpers/handler-lab.js';
import { a, aaaa, makeClient, signedUpdate, type TestClient } from '../../helpers/sig0-client.js';

function addresses(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `192.0.2.${from + i}`);
}

function refusedForCap(r: DecodedMessage, limit: number): void {
  assert.equal(r.rcode, Rcode.REFUSED);
  assert.deepEqual(
    r.additionals.map((rr) => (rr.type === 'TXT' ? rr.data : null)),
    [[`Too many records for name (limit ${limit})`]],
  );
  assert.equal(r.answers.length, 0);
}

async function send(l: HandlerLab, c: TestClient, rrs: Parameters<typeof signedUpdate>[1]): Promise<DecodedMessage> {
  return l.send(signedUpdate(c, rrs, { now: l.now }));
}

describe('handler: max-records-per-name', () => {
  it('a first claim with more addresses than the cap is refused whole: no key, no records, nothing upstream', async () => {
    const l = handlerLab();
    const c = makeClient('many', LAB_ZONE);
    refusedForCap(await send(l, c, addresses(17).map((x) => a(c.name, x))), 16);
    assert.equal(l.keys.get(c.name), undefined);
    assert.equal(l.cache.size, 0);
    assert.equal(l.upstreams[0]?.changes.length, 0);
    // Exactly the cap is fine, A and AAAA counted together.
    const ok = await send(l, c, [...addresses(15).map((x) => a(c.name, x)), aaaa(c.name, '2001:db8::1')]);
    assert.equal(ok.rcode, Rcode.NOERROR);
    assert.equal(l.cache.size, 16);
  });

  it('counts the live records: one more address beyond the cap is refused, nothing applied', async () => {
    const l = handlerLab({ zone: { maxRecordsPerName: 3 } });
    const c = makeClient('host', LAB_ZONE);
    assert.equal((await send(l, c, addresses(3).map((x) => a(c.name, x)))).rcode, Rcode.NOERROR);
    const changes = l.upstreams[0]?.changes.length;
    refusedForCap(await send(l, c, [a(c.name, '192.0.2.50'), a(c.name, '192.0.2.0', 0, RRClass.NONE), a(c.name, '192.0.2.51')]), 3);
    assert.equal(l.cache.size, 3);
    assert.ok(l.cache.get({ name: c.name, type: 'A', address: '192.0.2.0' }));
    assert.equal(l.upstreams[0]?.changes.length, changes);
  });

  it('refreshes, and removals in the same request, make room: counted as the zone applies them', async () => {
    const l = handlerLab({ zone: { maxRecordsPerName: 3 } });
    const c = makeClient('host', LAB_ZONE);
    assert.equal((await send(l, c, addresses(3).map((x) => a(c.name, x)))).rcode, Rcode.NOERROR);
    // Re-adding live records does not count twice.
    assert.equal((await send(l, c, addresses(3).map((x) => a(c.name, x)))).rcode, Rcode.NOERROR);
    // A single removal makes room for one.
    assert.equal((await send(l, c, [a(c.name, '192.0.2.0', 0, RRClass.NONE), a(c.name, '192.0.2.9')])).rcode, Rcode.NOERROR);
    // Delete-RRset and delete-name clear what they delete first.
    assert.equal((await send(l, c, [deleteRRset(c.name, 'A'), ...addresses(3, 20).map((x) => a(c.name, x))])).rcode, Rcode.NOERROR);
    assert.equal((await send(l, c, [deleteName(c.name), ...addresses(3, 30).map((x) => a(c.name, x))])).rcode, Rcode.NOERROR);
    assert.deepEqual(l.zone.liveRecords(c.name).map((r) => r.address).sort(), addresses(3, 30));
  });

  it('a request without additions is never refused by the cap (a lowered cap still lets a name shrink)', async () => {
    const l = handlerLab({ zone: { maxRecordsPerName: 4 } });
    const c = makeClient('host', LAB_ZONE);
    assert.equal((await send(l, c, addresses(4).map((x) => a(c.name, x)))).rcode, Rcode.NOERROR);
    l.zone.config = { ...l.zone.config, maxRecordsPerName: 1 };
    refusedForCap(await send(l, c, [a(c.name, '192.0.2.0')]), 1);
    assert.equal((await send(l, c, [a(c.name, '192.0.2.0', 0, RRClass.NONE)])).rcode, Rcode.NOERROR);
    assert.equal(l.cache.size, 3);
  });

  it('a raised cap takes a thousand records for one name, echoed name-compressed', async () => {
    const l = handlerLab({ zone: { maxRecordsPerName: 1000, allowAnyAddr: true } });
    const c = makeClient('big', LAB_ZONE);
    const rrs = Array.from({ length: 1000 }, (_, i) => a(c.name, `10.0.${i >> 8}.${i & 255}`));
    const raw = signedUpdate(c, rrs, { now: l.now });
    const out = await l.send(raw);
    assert.equal(out.rcode, Rcode.NOERROR);
    assert.equal(out.answers.length, 1000);
    // Each echoed record after the first: 2-octet pointer + 10 + 4.
    assert.ok(out.raw.length < 1000 * 16 + 200, `${out.raw.length} octets`);
  });
});
