/**
 * A fuzzer for the daemon's request path: mutations of valid signed
 * updates (bit flips, byte changes, truncation, splices, count edits,
 * duplication) and plain random bytes, each fed to the real handler. The
 * property: the handler never throws, never hangs, and every reply is a
 * well-formed response to the request (same ID, QR set, at most one TXT
 * reason) that fits a TCP frame. The seeds include updates with hundreds
 * to thousands of records (name-compressed, the per-name cap raised), some
 * sent unmutated so they are accepted and echoed in full, and some over
 * the cap; and queries for the names so filled, with their mutations, go
 * to the zone server's answer path (`respond`) over UDP and TCP, so large
 * echoes and large zone answers are exercised. Shared by the bounded CI
 * test and the longer bench run.
 */
import { strict as assert } from 'node:assert';
import { Algorithm, Opcode, RRClass, RRType, Rcode } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage, optRecord, type ResourceRecord } from '../../src/dns/message.js';
import { handleMessage } from '../../src/daemon/handler.js';
import type { Zone } from '../../src/daemon/zone.js';
import type { Authority } from '../../src/daemon/zoneserver/authority.js';
import { respond, truncatedReply } from '../../src/daemon/zoneserver/listener.js';
import { deleteName, deleteRRset } from '../../src/dns/update.js';
import { MAX_TCP_MESSAGE } from '../../src/net/transport.js';
import { handlerLab, LAB_ZONE } from './handler-lab.js';
import { a, aaaa, makeClient, signedUpdate } from './sig0-client.js';

/** xorshift32: repeatable runs from a seed. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export interface FuzzStats {
  cases: number;
  replies: number;
  closed: number;
  byRcode: Map<number, number>;
  /** Accepted updates echoing more than 500 records. */
  largeEchoes: number;
  /** Zone-server queries answered (UDP and TCP). */
  zoneQueries: number;
  /** Zone-server answers of more than 500 records, or too large for a TCP frame and sent truncated. */
  largeZoneAnswers: number;
}

/** Records per name the fuzz lab allows: large enough for big echoes and answers, small enough to refuse some seeds. */
const FUZZ_RECORD_CAP = 2500;

/** The zone server's view of the lab zone: its live records, as the `serve` upstream publishes them. */
function labAuthority(zone: Zone): Authority {
  const soa: ResourceRecord = {
    name: LAB_ZONE,
    type: 'SOA',
    class: RRClass.IN,
    ttl: 60,
    data: { mname: `ns.${LAB_ZONE}`, rname: `hostmaster.${LAB_ZONE}`, serial: 1, refresh: 60, retry: 60, expire: 600, minimum: 60 },
  };
  return {
    apex: LAB_ZONE,
    soa: () => soa,
    glue: () => [],
    lookup(name) {
      if (name === LAB_ZONE) return { records: [soa], exists: true };
      const records = zone.liveRecords(name).map((r): ResourceRecord => ({ name, type: r.type, class: RRClass.IN, ttl: 60, data: r.address }));
      return { records, exists: records.length > 0 };
    },
  };
}

function zoneQuery(id: number, name: string, type: number, edns?: number): Buffer {
  const q = emptyMessage(id, Opcode.QUERY);
  q.questions.push({ name, type, class: RRClass.IN });
  if (edns !== undefined) q.additionals.push(optRecord(edns));
  return encodeMessage(q);
}

/** `count` A records for `name` over `distinct` addresses. */
function manyA(name: string, count: number, distinct: number): ResourceRecord[] {
  return Array.from({ length: count }, (_, i) => a(name, `10.${(i % distinct) >> 16}.${((i % distinct) >> 8) & 255}.${i % distinct & 255}`));
}

function mutate(seed: Buffer, rnd: () => number): Buffer {
  const int = (n: number): number => Math.floor(rnd() * n);
  const b = Buffer.from(seed);
  switch (int(8)) {
    case 0: // flip bits
      for (let i = 0, n = 1 + int(4); i < n; i++) b[int(b.length)] ^= 1 << int(8);
      return b;
    case 1: // random bytes
      for (let i = 0, n = 1 + int(8); i < n; i++) b[int(b.length)] = int(256);
      return b;
    case 2: // truncate
      return b.subarray(0, int(b.length));
    case 3: // trailing garbage
      return Buffer.concat([b, Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256)))]);
    case 4: // edit a section count
      b.writeUInt16BE(int(4) === 0 ? 0xffff : int(8), 4 + 2 * int(4));
      return b;
    case 5: {
      // duplicate a slice
      const s = int(b.length);
      const e = s + int(b.length - s);
      return Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)]);
    }
    case 6: // compression pointers at random places
      if (b.length > 14) {
        const at = 12 + int(b.length - 13);
        b[at] = 0xc0 | int(64);
        b[at + 1] = int(256);
      }
      return b;
    default: // pure noise
      return Buffer.from(Array.from({ length: int(600) }, () => int(256)));
  }
}

/** Runs `cases` fuzz cases against a fresh handler lab. Throws on the first property violation. */
export async function fuzzRequestPath(cases: number, seed = 1): Promise<FuzzStats> {
  const rnd = prng(seed);
  const lab = handlerLab({ upstreams: 2, zone: { maxRecordsPerName: FUZZ_RECORD_CAP, allowAnyAddr: true } });
  const authorities = [labAuthority(lab.zone)];
  const owner = makeClient('owner', LAB_ZONE);
  const ed = makeClient('ed', LAB_ZONE, Algorithm.ED25519);
  const now = lab.now;
  // The owner's claim is real, so mutations also exercise the "known name" path.
  assert.equal((await lab.send(signedUpdate(owner, [a(owner.name, '192.0.2.1')], { now }))).rcode, Rcode.NOERROR);
  const seeds = [
    signedUpdate(owner, [a(owner.name, '192.0.2.2'), aaaa(owner.name, '2001:db8::2')], { now }),
    signedUpdate(owner, [a(owner.name, '192.0.2.2', 0, RRClass.NONE), deleteRRset(owner.name, 'AAAA')], { now }),
    signedUpdate(owner, [deleteName(owner.name)], { now }),
    signedUpdate(ed, [a(ed.name, '192.0.2.3')], { now }),
    signedUpdate(makeClient('new', LAB_ZONE), [aaaa(`new.${LAB_ZONE}`, '2001:db8::9', 60)], { now }),
  ];
  // Large updates, name-compressed to fit a TCP frame: sent as they are
  // (accepted, echoed in full; over the cap, refused) as well as mutated.
  const big = makeClient('big', LAB_ZONE);
  const large = [
    signedUpdate(big, manyA(big.name, 3899, 1000), { now, compress: true }),
    signedUpdate(big, [deleteRRset(big.name, 'A'), ...manyA(big.name, 2400, 2400)], { now, compress: true }),
    signedUpdate(big, manyA(big.name, 3000, 3000), { now, compress: true }),
    signedUpdate(owner, [...manyA(owner.name, 600, 600), aaaa(owner.name, '2001:db8::2')], { now, compress: true }),
  ];
  const names = [owner.name, big.name, `nobody.${LAB_ZONE}`, LAB_ZONE];
  const queries = (id: number): Buffer => {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    return zoneQuery(id, pick(names), pick([RRType.A, RRType.AAAA, RRType.ANY, RRType.SOA]), pick([undefined, 512, 1232, 4096, 65535]));
  };
  const stats: FuzzStats = { cases: 0, replies: 0, closed: 0, byRcode: new Map(), largeEchoes: 0, zoneQueries: 0, largeZoneAnswers: 0 };
  for (let i = 0; i < cases; i++) {
    const kind = rnd();
    if (kind < 0.1) {
      fuzzZoneQuery(i, rnd() < 0.5 ? queries(i & 0xffff) : mutate(queries(i & 0xffff), rnd), authorities, rnd() < 0.5 ? 'udp' : 'tcp', stats);
      stats.cases++;
      continue;
    }
    // The TCP layer delivers at most a frame's worth; a duplicated slice of a large seed can be longer.
    const input =
      kind < 0.105
        ? large[Math.floor(rnd() * large.length)]
        : mutate(kind < 0.12 ? large[Math.floor(rnd() * large.length)] : seeds[Math.floor(rnd() * seeds.length)], rnd).subarray(0, MAX_TCP_MESSAGE);
    const remote = rnd() < 0.8 ? '192.0.2.7' : '198.51.100.1';
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      handleMessage(input, remote, lab.ctx),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`case ${i} hung: ${input.toString('hex')}`)), 5000);
      }),
    ]).finally(() => clearTimeout(timer));
    stats.cases++;
    if (outcome.reply === null) {
      stats.closed++;
      assert.ok(input.length < 12 || outcome.rcode === Rcode.FORMERR, `case ${i}: closed without reason`);
      continue;
    }
    stats.replies++;
    assert.ok(outcome.reply.length <= MAX_TCP_MESSAGE, `case ${i}: reply of ${outcome.reply.length} octets does not fit a TCP frame`);
    const reply = decodeMessage(outcome.reply);
    assert.ok(reply.qr, `case ${i}: reply without QR`);
    assert.equal(reply.id, input.readUInt16BE(0), `case ${i}: reply ID`);
    const txts = reply.additionals.filter((rr) => rr.type === 'TXT');
    assert.ok(txts.length <= 1, `case ${i}: ${txts.length} TXT reasons`);
    if (reply.rcode === Rcode.NOERROR) assert.equal(txts.length, 0, `case ${i}: TXT reason on success`);
    if (reply.rcode === Rcode.NOERROR && reply.answers.length > 500) stats.largeEchoes++;
    stats.byRcode.set(reply.rcode, (stats.byRcode.get(reply.rcode) ?? 0) + 1);
  }
  await lab.zone.shutdown();
  return stats;
}

/**
 * One query through the zone server's answer path, as its listeners send
 * it: UDP within the client's buffer (else truncated), TCP within a frame
 * (else the truncated reply the TCP layer sends instead).
 */
function fuzzZoneQuery(i: number, input: Buffer, authorities: Authority[], transport: 'udp' | 'tcp', stats: FuzzStats): void {
  let reply = respond(input, authorities, transport);
  stats.zoneQueries++;
  if (reply === null) return;
  if (transport === 'tcp' && reply.length > MAX_TCP_MESSAGE) {
    stats.largeZoneAnswers++;
    reply = truncatedReply(reply);
    assert.ok(reply !== null && reply.length <= MAX_TCP_MESSAGE, `zone case ${i}: no truncated reply for an oversized answer`);
  }
  if (transport === 'udp') assert.ok(reply.length <= 4096, `zone case ${i}: UDP reply of ${reply.length} octets`);
  const m = decodeMessage(reply);
  assert.ok(m.qr, `zone case ${i}: reply without QR`);
  assert.equal(m.id, input.readUInt16BE(0), `zone case ${i}: reply ID`);
  if (m.answers.length > 500) stats.largeZoneAnswers++;
  stats.byRcode.set(m.rcode, (stats.byRcode.get(m.rcode) ?? 0) + 1);
}
