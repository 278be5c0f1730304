/**
 * A fuzzer for the daemon's request path: mutations of valid signed
 * updates (bit flips, byte changes, truncation, splices, count edits,
 * duplication) and plain random bytes, each fed to the real handler. The
 * property: the handler never throws, never hangs, and every reply is a
 * well-formed response to the request (same ID, QR set, at most one TXT
 * reason). Shared by the bounded CI test and the longer bench run.
 */
import { strict as assert } from 'node:assert';
import { Algorithm, RRClass, Rcode } from '../../src/dns/constants.js';
import { decodeMessage } from '../../src/dns/message.js';
import { handleMessage } from '../../src/daemon/handler.js';
import { deleteName, deleteRRset } from '../../src/dns/update.js';
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
  const lab = handlerLab({ upstreams: 2 });
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
  const stats: FuzzStats = { cases: 0, replies: 0, closed: 0, byRcode: new Map() };
  for (let i = 0; i < cases; i++) {
    const input = mutate(seeds[Math.floor(rnd() * seeds.length)], rnd);
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
    const reply = decodeMessage(outcome.reply);
    assert.ok(reply.qr, `case ${i}: reply without QR`);
    assert.equal(reply.id, input.readUInt16BE(0), `case ${i}: reply ID`);
    const txts = reply.additionals.filter((rr) => rr.type === 'TXT');
    assert.ok(txts.length <= 1, `case ${i}: ${txts.length} TXT reasons`);
    if (reply.rcode === Rcode.NOERROR) assert.equal(txts.length, 0, `case ${i}: TXT reason on success`);
    stats.byRcode.set(reply.rcode, (stats.byRcode.get(reply.rcode) ?? 0) + 1);
  }
  await lab.zone.shutdown();
  return stats;
}
