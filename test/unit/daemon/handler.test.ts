import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { handleMessage } from '../../../src/daemon/handler.js';
import { StoredKey, keyObjects } from '../../../src/daemon/keydb/stored-key.js';
import { handlerLab, LAB_REMOTE, LAB_ZONE, type HandlerLab } from '../../helpers/handler-lab.js';
import { Algorithm, Opcode, RRClass, RRType, Rcode } from '../../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage, type DecodedMessage, type ResourceRecord } from '../../../src/dns/message.js';
import { signSig0 } from '../../../src/dns/sig0.js';
import { deleteName, deleteRRset } from '../../../src/dns/update.js';
import { FakeUpstream } from '../../helpers/fake-upstream.js';
import { a, aaaa, makeClient, signedUpdate, type TestClient } from '../../helpers/sig0-client.js';

const ZONE = LAB_ZONE;
const LAN = LAB_REMOTE;
type Lab = HandlerLab;
const lab = handlerLab;

function txtReasons(m: DecodedMessage): string[] {
  return m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data ? rr.data : []));
}

/** An error reply: the rcode and exactly one TXT reason, class ANY, TTL 0. */
function assertRefused(m: DecodedMessage, rcode: number, reason: string, owner?: string): void {
  assert.equal(m.rcode, rcode, `rcode ${m.rcode}, reasons ${txtReasons(m).join(' | ')}`);
  assert.equal(m.additionals.length, 1);
  const txt = m.additionals[0];
  assert.equal(txt.type, 'TXT');
  assert.equal(txt.class, RRClass.ANY);
  assert.equal(txt.ttl, 0);
  assert.deepEqual(txtReasons(m), [reason]);
  if (owner) assert.equal(txt.name, owner);
  assert.equal(m.answers.length, 0);
}

describe('handler: queries', () => {
  it('answers SRV for a name in a zone with the listen address and port', async () => {
    const l = lab();
    const q = emptyMessage(77, Opcode.QUERY);
    q.rd = true;
    q.questions.push({ name: `_nsreg._tcp.${ZONE}`, type: RRType.SRV, class: RRClass.IN });
    const r = await l.send(encodeMessage(q));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.equal(r.id, 77);
    assert.ok(r.qr && r.rd);
    assert.deepEqual(r.questions, q.questions);
    assert.deepEqual(r.answers, [
      {
        name: `_nsreg._tcp.${ZONE}`,
        type: 'SRV',
        class: RRClass.IN,
        ttl: 0,
        data: { priority: 0, weight: 0, port: 8053, target: 'nsregd.example.org.' },
      },
    ]);
  });

  it('refuses other queries in a zone', async () => {
    const l = lab();
    const q = emptyMessage(1, Opcode.QUERY);
    q.questions.push({ name: `host.${ZONE}`, type: RRType.A, class: RRClass.IN });
    assertRefused(await l.send(encodeMessage(q)), Rcode.REFUSED, 'Non-update query refused', ZONE);
  });

  it('refuses names outside every zone', async () => {
    const l = lab();
    const c = makeClient('host', 'other.example.');
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }));
    assert.equal(r.rcode, Rcode.REFUSED);
    assert.equal(txtReasons(r).length, 1);
  });

  it('answers FORMERR to unreadable messages with a readable ID, and closes on less', async () => {
    const l = lab();
    const r = await handleMessage(Buffer.from([0x12, 0x34, 0x28, 0, 0, 5, 0, 0, 0, 0, 0, 0, 1]), LAN, l.ctx);
    assert.ok(r.reply);
    const m = decodeMessage(r.reply);
    assert.equal(m.id, 0x1234);
    assertRefused(m, Rcode.FORMERR, 'Malformed message', '.');
    assert.equal((await handleMessage(Buffer.from([1]), LAN, l.ctx)).reply, null);
  });
});

describe('handler: signature and claim rules', () => {
  it('claims a new name, stores the key, forwards and echoes the records', async () => {
    const l = lab();
    const c = makeClient('host1', ZONE);
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1'), aaaa(c.name, '2001:db8::1', 600)], { now: l.now }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.equal(r.opcode, Opcode.UPDATE);
    assert.equal(r.additionals.length, 0);
    assert.deepEqual(
      r.answers.map((rr) => [rr.name, rr.type, rr.class, rr.ttl, rr.data]),
      [
        [c.name, 'A', RRClass.IN, 300, '192.0.2.1'],
        [c.name, 'AAAA', RRClass.IN, 600, '2001:db8::1'],
      ],
    );
    assert.equal(l.keys.get(c.name)?.keyTag, c.keyTag);
    // Key expiry: min(KEY TTL 30 days, max-key-ttl 30 days).
    assert.equal(l.keys.get(c.name)?.expiry, l.clock.now() + 2592000_000);
    assert.equal(l.upstreams[0]?.changes.length, 1);
    assert.deepEqual(l.upstreams[0]?.changes[0]?.add.map((x) => x.address), ['192.0.2.1', '2001:db8::1']);
    assert.equal(l.cache.size, 2);
  });

  it('accepts the original nsregc capture at its signing time', async () => {
    const signedAt = Number(readFileSync('test/fixtures/go-nsregc/signed-at.txt', 'utf8').trim());
    const l = lab({ start: signedAt * 1000 });
    const r = await l.send(readFileSync('test/fixtures/go-nsregc/update.bin'));
    assert.equal(r.rcode, Rcode.NOERROR, txtReasons(r).join());
    assert.deepEqual(r.answers.map((rr) => rr.data), ['192.0.2.30']);
    assert.ok(l.keys.get('foxtrot.dynamic.example.org.'));
  });

  it('pins the key: another key for a claimed name is refused', async () => {
    const l = lab();
    const owner = makeClient('host1', ZONE);
    const thief = makeClient('host1', ZONE);
    assert.equal((await l.send(signedUpdate(owner, [a(owner.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR);
    const r = await l.send(signedUpdate(thief, [a(thief.name, '192.0.2.66')], { now: l.now }));
    assertRefused(r, Rcode.REFUSED, 'Invalid key for name', owner.name);
    assert.equal(l.upstreams[0]?.changes.length, 1);
  });

  it('names differing only in case are one name (no VICTIM next to victim)', async () => {
    const l = lab();
    const victim = makeClient('victim', ZONE);
    const attacker = makeClient('VICTIM', ZONE);
    assert.equal((await l.send(signedUpdate(victim, [a(victim.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR);
    const r = await l.send(signedUpdate(attacker, [a(attacker.name, '192.0.2.66')], { now: l.now }));
    assertRefused(r, Rcode.REFUSED, 'Invalid key for name');
    assert.equal(l.keys.size, 1);
  });

  it('refuses a KEY RR that differs from the stored key even when the tag matches', async () => {
    const l = lab();
    const c = makeClient('host1', ZONE);
    await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }));
    const other = { ...c.rdata, flags: 512 };
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now, keyRData: other }));
    assertRefused(r, Rcode.REFUSED, 'Invalid KEY for name');
  });

  it('NOTAUTH for a bad signature, expired or not yet valid, for new and known names', async () => {
    const l = lab();
    const c = makeClient('host1', ZONE);
    const cached = keyObjects.size;
    const tampered = signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now });
    const rdataOffset = tampered.indexOf(Buffer.from([192, 0, 2, 1]));
    tampered[rdataOffset + 3] = 2;
    assertRefused(await l.send(tampered), Rcode.NOTAUTH, 'Signature verification failed');
    assertRefused(await l.send(signedUpdate(c, [], { now: l.now - 3600 })), Rcode.NOTAUTH, 'Signature verification failed');
    assertRefused(await l.send(signedUpdate(c, [], { now: l.now + 3600 })), Rcode.NOTAUTH, 'Signature verification failed');
    assert.equal(l.keys.size, 0);
    assert.equal(keyObjects.size, cached, 'a claim whose signature failed takes no place in the shared key cache');
    await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }));
    const t2 = signedUpdate(c, [a(c.name, '192.0.2.9')], { now: l.now });
    t2[t2.length - 1] ^= 0xff;
    assertRefused(await l.send(t2), Rcode.NOTAUTH, 'Signature verification failed');
  });

  for (const alg of [Algorithm.RSASHA256, Algorithm.ECDSAP256SHA256, Algorithm.ED25519, Algorithm.ED448]) {
    it(`accepts claims signed with algorithm ${alg}`, async () => {
      const l = lab();
      const c = makeClient(`alg${alg}`, ZONE, alg);
      assert.equal((await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR);
    });
  }

  it('FORMERR for duplicate KEY, duplicate SIG, missing SIG, missing KEY, KEY TTL 0', async () => {
    const l = lab();
    const c = makeClient('host1', ZONE);
    const recs = [a(c.name, '192.0.2.1')];
    assertRefused(await l.send(signedUpdate(c, recs, { now: l.now, duplicateKey: true })), Rcode.FORMERR, 'Duplicate KEY RR');
    const twice = signSig0(signedUpdate(c, recs, { now: l.now }), {
      name: c.name,
      algorithm: c.algorithm,
      keyTag: c.keyTag,
      privateKey: c.keys.privateKey,
    }, { now: l.now });
    assertRefused(await l.send(twice), Rcode.FORMERR, 'Duplicate SIG RR');
    assertRefused(await l.send(signedUpdate(c, recs, { now: l.now, omitSig: true })), Rcode.FORMERR, 'No SIG RR found');
    assertRefused(await l.send(signedUpdate(c, recs, { now: l.now, omitKey: true })), Rcode.FORMERR, 'No KEY RR found');
    assertRefused(await l.send(signedUpdate(c, recs, { now: l.now, keyTtl: 0 })), Rcode.FORMERR, 'KEY RR must have TTL>0');
    assert.equal(l.keys.size, 0);
    assert.equal(l.upstreams[0]?.changes.length, 0);
  });

  it('NOTZONE when the zone section is not the zone apex of class IN type SOA', async () => {
    const l = lab();
    const c = makeClient('host1', ZONE);
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now, zoneName: c.name }));
    assert.equal(r.rcode, Rcode.NOTZONE);
    assert.equal(txtReasons(r).length, 1);
  });

  it('new claims only from allowed-nets', async () => {
    const l = lab();
    const c = makeClient('host1', ZONE);
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }), '198.51.100.1');
    assertRefused(r, Rcode.REFUSED, 'Remote addr not allowed to add new key');
    assert.equal(l.keys.size, 0);
  });

  it('only names one label below the zone, and not reserved ones', async () => {
    const l = lab();
    for (const label of ['a.b', 'www', 'WWW']) {
      const c = makeClient(label, ZONE);
      assertRefused(await l.send(signedUpdate(c, [], { now: l.now })), Rcode.REFUSED, 'Name disallowed by server config');
    }
    const apex = makeClient('x', ZONE);
    const r = await l.send(signedUpdate(apex, [], { now: l.now, signer: ZONE, keyOwner: ZONE }));
    assertRefused(r, Rcode.REFUSED, 'Name disallowed by server config');
  });

  it('two simultaneous claims of one new name: exactly one wins', async () => {
    const l = lab();
    const c1 = makeClient('race', ZONE);
    const c2 = makeClient('race', ZONE);
    const [r1, r2] = await Promise.all([
      l.send(signedUpdate(c1, [a(c1.name, '192.0.2.1')], { now: l.now })),
      l.send(signedUpdate(c2, [a(c2.name, '192.0.2.2')], { now: l.now })),
    ]);
    assert.deepEqual([r1.rcode, r2.rcode].sort(), [Rcode.NOERROR, Rcode.REFUSED]);
    const loser = r1.rcode === Rcode.REFUSED ? r1 : r2;
    assert.deepEqual(txtReasons(loser), ['Invalid key for name']);
    assert.equal(l.keys.claims, 1);
    assert.equal(l.upstreams[0]?.changes.length, 1);
  });
});

describe('handler: record vetting', () => {
  async function claimed(l: Lab): Promise<TestClient> {
    const c = makeClient('host1', ZONE);
    assert.equal((await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR);
    return c;
  }

  it('refuses the whole message for a record of another name; nothing takes effect', async () => {
    const l = lab();
    const c = await claimed(l);
    const before = l.upstreams[0]?.changes.length;
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.5'), a(`other.${ZONE}`, '192.0.2.6')], { now: l.now }));
    assertRefused(r, Rcode.REFUSED, 'Found record with non-authorized name');
    assert.equal(l.upstreams[0]?.changes.length, before);
    assert.equal(l.cache.has({ name: c.name, type: 'A', address: '192.0.2.5' }), false);
  });

  it('a refused first claim stores no key (the original stored it before vetting)', async () => {
    const l = lab();
    const c = makeClient('host1', ZONE);
    const r = await l.send(signedUpdate(c, [a(`other.${ZONE}`, '192.0.2.6')], { now: l.now }));
    assertRefused(r, Rcode.REFUSED, 'Found record with non-authorized name');
    assert.equal(l.keys.size, 0);
  });

  it('FORMERR for TTL 0 with class IN, and for adds of class other than IN', async () => {
    const l = lab();
    const c = await claimed(l);
    assertRefused(await l.send(signedUpdate(c, [a(c.name, '192.0.2.1', 0)], { now: l.now })), Rcode.FORMERR, 'TTL 0 record with class != NONE');
    for (const cls of [RRClass.CH, RRClass.NONE, RRClass.ANY]) {
      const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.9', 300, cls)], { now: l.now }));
      assertRefused(r, Rcode.FORMERR, 'Record with TTL>0 must have class IN');
    }
  });

  it('REFUSED for record types other than A/AAAA', async () => {
    const l = lab();
    const c = await claimed(l);
    const txt: ResourceRecord = { name: c.name, type: 'TXT', class: RRClass.IN, ttl: 300, data: ['hi'] };
    assertRefused(await l.send(signedUpdate(c, [txt], { now: l.now })), Rcode.REFUSED, 'Invalid record type in query');
  });

  it('skips addresses outside allowed-nets silently unless allow-any-addr', async () => {
    const l = lab();
    const c = await claimed(l);
    const r = await l.send(signedUpdate(c, [a(c.name, '198.51.100.9'), a(c.name, '192.0.2.9')], { now: l.now }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(r.answers.map((rr) => rr.data), ['192.0.2.9']);
    const any = lab({ zone: { allowAnyAddr: true } });
    const c2 = makeClient('h', ZONE);
    const r2 = await any.send(signedUpdate(c2, [a(c2.name, '198.51.100.9')], { now: any.now }));
    assert.deepEqual(r2.answers.map((rr) => rr.data), ['198.51.100.9']);
  });

  it('clamps TTLs to max-addr-ttl and echoes the clamped TTL', async () => {
    const l = lab();
    const c = await claimed(l);
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.101', 7200)], { now: l.now }));
    assert.equal(r.answers[0]?.ttl, 3600);
    assert.equal(l.upstreams[0]?.changes.at(-1)?.add[0]?.ttl, 3600);
  });

  it('a refresh of an installed record only moves its expiry', async () => {
    const l = lab();
    const c = await claimed(l);
    l.clock.advance(100_000);
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: Math.floor(l.clock.now() / 1000) }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.equal(l.upstreams[0]?.changes.length, 1);
    assert.equal(l.cache.get({ name: c.name, type: 'A', address: '192.0.2.1' })?.expiresAt, l.clock.now() + 300_000);
  });

  it('a claim\'s key goes into the shared key cache once its signature checked out; the stored key finds it for the refreshes', async () => {
    const l = lab();
    const c = makeClient('cached', ZONE);
    const before = keyObjects.stats;
    const size = keyObjects.size;
    assert.equal((await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR);
    assert.equal(keyObjects.size, size + 1, 'kept after the claim');
    const rdata = l.keys.get(c.name)?.rdata;
    assert.ok(rdata);
    // What the key store keeps for the name (keydb/stored-key.ts) gets the claim's KeyObject, not a new import.
    const stored = new StoredKey(c.name, rdata, l.clock.now() + 60_000);
    const key = stored.publicKey();
    assert.equal(stored.publicKey(), key);
    assert.equal(keyObjects.stats.misses - before.misses, 0, 'not imported again');
    assert.equal(keyObjects.stats.hits - before.hits, 2);
  });

  it('removal (class NONE, TTL 0) leaves the cache, is forwarded and echoed', async () => {
    const l = lab();
    const c = await claimed(l);
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1', 0, RRClass.NONE)], { now: l.now }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(r.answers.map((rr) => [rr.class, rr.ttl, rr.data]), [[RRClass.NONE, 0, '192.0.2.1']]);
    assert.deepEqual(l.upstreams[0]?.changes.at(-1)?.remove.map((x) => x.address), ['192.0.2.1']);
    assert.equal(l.cache.size, 0);
  });

  it('RFC 2136 delete-RRset and delete-name forms remove the claimed name\'s records', async () => {
    const l = lab();
    const c = await claimed(l);
    await l.send(signedUpdate(c, [a(c.name, '192.0.2.2'), aaaa(c.name, '2001:db8::5')], { now: l.now }));
    assert.equal(l.cache.size, 3);
    const r = await l.send(signedUpdate(c, [deleteRRset(c.name, 'A')], { now: l.now }));
    assert.equal(r.rcode, Rcode.NOERROR);
    assert.deepEqual(l.upstreams[0]?.changes.at(-1)?.remove.map((x) => x.address).sort(), ['192.0.2.1', '192.0.2.2']);
    assert.equal(l.cache.size, 1);
    const r2 = await l.send(signedUpdate(c, [deleteName(c.name)], { now: l.now }));
    assert.equal(r2.rcode, Rcode.NOERROR);
    const last = l.upstreams[0]?.changes.at(-1);
    assert.deepEqual(last?.removeNames.map((n) => [n.name, n.addresses.map((x) => x.address)]), [[c.name, ['2001:db8::5']]]);
    assert.equal(l.cache.size, 0);
  });
});

describe('handler: upstream failures', () => {
  it('SERVFAIL when an upstream fails; every upstream still gets the update; a retry is forwarded again', async () => {
    const l = lab({ upstreams: 2 });
    const [u0, u1] = l.upstreams as [FakeUpstream, FakeUpstream];
    u0.fail = true;
    const c = makeClient('host1', ZONE);
    const req = signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now });
    assertRefused(await l.send(req), Rcode.SERVFAIL, 'Unable to update upstream servers');
    assert.deepEqual(u1.changes[0]?.add.map((r) => r.address), ['192.0.2.1'], 'second upstream reached after the first failed');
    await new Promise((r) => setImmediate(r));
    // Not installed, so taken back where it did land: nothing is left behind.
    assert.deepEqual(u1.changes.at(-1)?.remove.map((r) => r.address), ['192.0.2.1']);
    assert.equal(l.keys.size, 0, 'no key stored for a failed request');
    assert.equal(l.cache.size, 0, 'records count as installed only once upstreams accepted them');
    u0.fail = false;
    assert.equal((await l.send(req)).rcode, Rcode.NOERROR);
    assert.deepEqual(u0.changes.at(-1)?.add.map((r) => r.address), ['192.0.2.1'], 'the retry reached the upstream');
    assert.deepEqual(u1.changes.at(-1)?.add.map((r) => r.address), ['192.0.2.1']);
    assert.equal(l.zone.pendingOperations, 0, 'the retry superseded the queued removal');
  });

  it('SERVFAIL when the claim cannot be stored; nothing reaches an upstream', async () => {
    const l = lab();
    l.keys.failWith = new Error('ENOSPC');
    const c = makeClient('host1', ZONE);
    assertRefused(await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now })), Rcode.SERVFAIL, 'Unable to store key');
    assert.deepEqual(l.upstreams[0]?.changes, []);
    assert.equal(l.keys.size, 0);
    assert.equal(l.keys.tentative.size, 0);
  });

  it('SERVFAIL when the claim cannot be confirmed: the forwarded records are taken back, no key, no records', async () => {
    const l = lab();
    l.keys.failConfirmWith = new Error('ENOSPC');
    const c = makeClient('host1', ZONE);
    assertRefused(await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now })), Rcode.SERVFAIL, 'Unable to store key');
    const changes = l.upstreams[0]?.changes ?? [];
    assert.deepEqual(changes.map((ch) => [ch.add.length, ch.remove.length]), [[1, 0], [0, 1]]);
    assert.equal(l.keys.size, 0);
    assert.equal(l.keys.tentative.size, 0, 'the tentative claim is abandoned');
    assert.equal(l.cache.size, 0);
    // The name is free again: the next claim (by anyone) goes through.
    l.keys.failConfirmWith = undefined;
    const other = makeClient('host1', ZONE);
    assert.equal((await l.send(signedUpdate(other, [a(other.name, '192.0.2.2')], { now: l.now }))).rcode, Rcode.NOERROR);
    assert.equal(l.keys.get(other.name)?.keyTag, other.keyTag);
  });

  it('a first claim is durable (tentative) before anything is sent upstream, and confirmed before the answer', async () => {
    const l = lab();
    const c = makeClient('host1', ZONE);
    const u = l.upstreams[0];
    const seen: Array<[boolean, boolean]> = [];
    const apply = u.apply.bind(u);
    u.apply = async (change) => {
      seen.push([l.keys.tentative.has(c.name), l.keys.get(c.name) !== undefined]);
      return apply(change);
    };
    assert.equal((await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }))).rcode, Rcode.NOERROR);
    assert.deepEqual(seen, [[true, false]], 'upstream reached while the claim was tentative');
    assert.equal(l.keys.get(c.name)?.keyTag, c.keyTag);
    assert.equal(l.keys.tentative.size, 0);
  });

  it('a failed first claim abandons its tentative claim, so the name can be claimed again', async () => {
    const l = lab();
    const u = l.upstreams[0];
    u.fail = true;
    const c = makeClient('host1', ZONE);
    assertRefused(await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now })), Rcode.SERVFAIL, 'Unable to update upstream servers');
    assert.equal(l.keys.tentative.size, 0);
    u.fail = false;
    const other = makeClient('host1', ZONE);
    assert.equal((await l.send(signedUpdate(other, [a(other.name, '192.0.2.2')], { now: l.now }))).rcode, Rcode.NOERROR);
  });
});

describe('handler: expiry', () => {
  it('records expire one TTL after the last refresh and are removed upstream', async () => {
    const l = lab();
    const c = makeClient('host1', ZONE);
    await l.send(signedUpdate(c, [a(c.name, '192.0.2.1', 120)], { now: l.now }));
    l.clock.advance(119_000);
    assert.equal(l.cache.size, 1);
    l.clock.advance(1_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(l.cache.size, 0);
    assert.deepEqual(l.upstreams[0]?.changes.at(-1)?.remove.map((x) => x.address), ['192.0.2.1']);
  });

  it('an expired key removes the name (delete-name) with its addresses for PTR clean-up', async () => {
    const l = lab({ zone: { maxKeyTtl: 600_000 } });
    const c = makeClient('host1', ZONE);
    await l.send(signedUpdate(c, [a(c.name, '192.0.2.1', 3600)], { now: l.now }));
    l.clock.advance(600_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(l.keys.size, 0);
    assert.equal(l.cache.size, 0);
    const last = l.upstreams[0]?.changes.at(-1);
    assert.deepEqual(last?.removeNames.map((n) => [n.name, n.addresses.map((x) => x.address)]), [[c.name, ['192.0.2.1']]]);
  });
});

describe('handler: a zone with no upstream', () => {
  it('refuses updates with SERVFAIL and a reason, stores no key, and still answers SRV', async () => {
    const l = lab({ upstreams: 0 });
    const c = makeClient('host1', ZONE);
    const r = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }));
    assertRefused(r, Rcode.SERVFAIL, 'No upstream servers configured for zone', ZONE);
    assert.equal(l.keys.get(c.name), undefined);
    assert.equal(l.cache.size, 0);
    const q = emptyMessage(78, Opcode.QUERY);
    q.questions.push({ name: `_nsreg._tcp.${ZONE}`, type: RRType.SRV, class: RRClass.IN });
    const srv = await l.send(encodeMessage(q));
    assert.equal(srv.rcode, Rcode.NOERROR);
    assert.equal(srv.answers[0]?.type, 'SRV');
  });
});
