/**
 * What the built-in zone server knows about one zone it is authoritative
 * for, and the pure function that answers a query from it (RFC 1034 §4.3.2,
 * RFC 2308 negative answers, RFC 8482 minimal ANY, RFC 6891 EDNS).
 */
import { Opcode, RRClass, RRType, Rcode } from '../../dns/constants.js';
import { emptyMessage, optRecord, typeCode, type DecodedMessage, type Message, type ResourceRecord } from '../../dns/message.js';
import { canonicalName, isSubdomain, nameToLabels } from '../../dns/names.js';
import type { TsigKey } from '../../dns/tsig.js';
import type { Cidr } from '../../net/address.js';
import type { Difference } from './history.js';

/**
 * Who may transfer a zone (AXFR/IXFR): requests signed with one of `keys`,
 * or unsigned ones from an address in `nets`. Both empty: nobody. The keys
 * are also the ones a signed query of the zone is checked against.
 */
export interface TransferPolicy {
  readonly keys: readonly TsigKey[];
  readonly nets: readonly Cidr[];
}

export interface NameData {
  /** Every RR at the name (any type). */
  records: ResourceRecord[];
  /** The name exists: it has records or names below it (an empty non-terminal). */
  exists: boolean;
}

export interface Authority {
  /** Canonical apex. */
  readonly apex: string;
  /** The apex SOA RR, with the current serial. */
  soa(): ResourceRecord;
  /** RRs at a canonical name inside the zone. */
  lookup(name: string): NameData;
  /** A/AAAA for in-zone name server names (glue in NS answers). */
  glue(name: string): ResourceRecord[];
  /**
   * Every RR of the zone but the apex SOA, for transfers; absent: the zone
   * is never transferred. Call soa() after it: taking the records may
   * move the serial on (./history.ts).
   */
  records?(): ResourceRecord[];
  /**
   * IXFR (RFC 1995): the differences from `serial` to the current serial
   * (call soa() after it), or undefined when they are not known (then the
   * whole zone is sent). Absent: never known.
   */
  changesSince?(serial: number): Difference[] | undefined;
  /** Who may transfer the zone; absent: nobody. */
  readonly transfer?: TransferPolicy;
}

/** The authority whose apex is the longest suffix of `name`. */
export function findAuthority(authorities: Iterable<Authority>, name: string): Authority | undefined {
  let best: Authority | undefined;
  let bestLen = -1;
  for (const a of authorities) {
    if (!isSubdomain(name, a.apex)) continue;
    const len = nameToLabels(a.apex).length;
    if (len > bestLen) {
      best = a;
      bestLen = len;
    }
  }
  return best;
}

/** EDNS buffer bounds: never below the RFC 1035 512, never above what survives without fragmentation trouble on most paths. */
export const MIN_UDP_PAYLOAD = 512;
export const MAX_UDP_PAYLOAD = 4096;
/** What we advertise (the DNS flag day 2020 value). */
export const OUR_UDP_PAYLOAD = 1232;

export interface AnswerResult {
  message: Message;
  /** Largest UDP reply the client can take. */
  udpLimit: number;
}

/** RFC 8482 §4.2: for ANY, one RRset stands for the rest; these types are tried in order. */
const ANY_ORDER = [RRType.SOA, RRType.A, RRType.AAAA, RRType.PTR, RRType.SRV, RRType.NS];

function negativeSoa(a: Authority): ResourceRecord {
  const soa = a.soa();
  // RFC 2308 §3: the negative TTL is min(SOA TTL, SOA MINIMUM).
  const minimum = soa.type === 'SOA' && soa.data ? soa.data.minimum : soa.ttl;
  return { ...soa, ttl: Math.min(soa.ttl, minimum) };
}

/** Answers one query. `authorities` are the zones served on the socket it arrived on. */
export function answerQuery(req: DecodedMessage, authorities: Iterable<Authority>): AnswerResult {
  const reply = emptyMessage(req.id, req.opcode);
  reply.qr = true;
  reply.rd = req.rd;
  reply.cd = req.cd;
  reply.questions = req.questions.map((q) => ({ ...q }));
  const opt = req.additionals.find((rr) => rr.type === 'OPT');
  let udpLimit = MIN_UDP_PAYLOAD;
  if (opt) {
    udpLimit = Math.min(Math.max(opt.class, MIN_UDP_PAYLOAD), MAX_UDP_PAYLOAD);
    reply.additionals.push(optRecord(OUR_UDP_PAYLOAD));
    // RFC 6891 §6.1.3: only version 0 exists.
    if (((opt.ttl >>> 16) & 0xff) !== 0) {
      reply.rcode = 16; // BADVERS
      return { message: reply, udpLimit };
    }
  }
  const finish = (rcode: number): AnswerResult => {
    reply.rcode = rcode;
    return { message: reply, udpLimit };
  };
  if (req.opcode !== Opcode.QUERY) return finish(Rcode.NOTIMP);
  const q = req.questions[0];
  if (q === undefined || req.questions.length !== 1) return finish(Rcode.FORMERR);
  if (q.class !== RRClass.IN && q.class !== RRClass.ANY) return finish(Rcode.REFUSED);
  const name = canonicalName(q.name);
  const authority = findAuthority(authorities, name);
  if (authority === undefined) return finish(Rcode.REFUSED);
  // Zone transfers are answered by ./transfer.ts before a query gets here.
  if (q.type === RRType.AXFR || q.type === RRType.IXFR) return finish(Rcode.REFUSED);
  reply.aa = true;
  const data = authority.lookup(name);
  if (!data.exists) {
    reply.authorities.push(negativeSoa(authority));
    return finish(Rcode.NXDOMAIN);
  }
  let matching: ResourceRecord[];
  if (q.type === RRType.ANY) {
    const firstType = ANY_ORDER.find((t) => data.records.some((rr) => typeCode(rr) === t));
    matching = firstType === undefined ? [] : data.records.filter((rr) => typeCode(rr) === firstType);
  } else {
    matching = data.records.filter((rr) => typeCode(rr) === q.type);
  }
  if (matching.length === 0) {
    reply.authorities.push(negativeSoa(authority));
    return finish(Rcode.NOERROR);
  }
  // Owner names as asked (case preserved, RFC 4343 §4).
  reply.answers = matching.map((rr) => ({ ...rr, name: q.name.endsWith('.') ? q.name : q.name + '.' }));
  if (q.type === RRType.NS) {
    for (const rr of matching) {
      if (rr.type === 'NS' && rr.data) reply.additionals.unshift(...authority.glue(canonicalName(rr.data)));
    }
  }
  return finish(Rcode.NOERROR);
}

/**
 * RFC 1035 §4.2.1 / RFC 2181 §9: a UDP reply that does not fit is sent with
 * TC set and no records, so the client asks again over TCP.
 */
export function truncateForUdp(reply: Message): Message {
  return {
    ...reply,
    tc: true,
    answers: [],
    authorities: [],
    additionals: reply.additionals.filter((rr) => rr.type === 'OPT'),
  };
}
