/**
 * DNS message codec (RFC 1035 §4.1): header, questions and resource records
 * around the per-type rdata codecs of ./rdata.ts. It covers what RFC
 * 2136/2931/8945 work needs: class NONE/ANY that round-trip, KEY/SIG/TSIG,
 * empty rdata (the RFC 2136 delete forms), any opcode, extended rcodes,
 * strict bounds checks, and — for signature checks over the bytes received —
 * the raw message plus every RR's offsets. Lengths are computed without
 * encoding (encodingLength, recordLength) and a message is written into one
 * buffer. Messages are name-compressed (RFC 1035 §4.1.4: owner
 * names, and names in the rdata of the types RFC 3597 §4 allows) by default
 * for responses.
 */
import { RRType, Rcode } from './constants.js';
import { MalformedMessageError } from './errors.js';
import { decodeName, nameLength, NameCompressor, writeName } from './names.js';
import { RDATA, opaqueRData, type RDataCodec, type RDataType, type RDataTypes } from './rdata.js';

export interface Question {
  name: string;
  type: number;
  class: number;
}

interface RRBase {
  name: string;
  /** For OPT this is the UDP payload size (RFC 6891 §6.1.2). */
  class: number;
  /** For OPT this packs extended rcode, version and flags (RFC 6891 §6.1.3). */
  ttl: number;
}

/** A record of a type with an rdata codec; `data: null` is an empty rdata, as in the RFC 2136 delete forms. */
type TypedRecord = { [K in RDataType]: RRBase & { type: K; data: RDataTypes[K] | null } }[RDataType];

export type ResourceRecord =
  | TypedRecord
  | (RRBase & { type: 'ANY'; data: null })
  | (RRBase & { type: 'OPT'; data: Buffer })
  | (RRBase & { type: 'UNKNOWN'; code: number; data: Buffer });

export interface Message {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  ad: boolean;
  cd: boolean;
  /** Full rcode: header bits plus the OPT extended bits when an OPT RR is present. */
  rcode: number;
  /** For UPDATE (RFC 2136 §2): the zone section. */
  questions: Question[];
  /** For UPDATE: the prerequisite section. */
  answers: ResourceRecord[];
  /** For UPDATE: the update section. */
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
}

/** Where an RR sits in the raw message: [start, end), rdata begins at rdataStart. */
export interface RRSpan {
  start: number;
  rdataStart: number;
  end: number;
}

export interface DecodedMessage extends Message {
  /** The exact bytes decoded. Signatures are verified over these, never a re-encoding. */
  raw: Buffer;
  spans: {
    questions: RRSpan[];
    answers: RRSpan[];
    authorities: RRSpan[];
    additionals: RRSpan[];
  };
}

const HEADER = 12;
/** Type, class, TTL and RDLENGTH after the owner name. */
const RR_FIXED = 10;
const MIN_QUESTION = 5; // root name + type + class
const MIN_RR = 11; // root name + type + class + ttl + rdlength

/** RFC 1035 §4.1.1 header flags (the QR bit and opcode aside). */
const FLAGS = { aa: 0x0400, tc: 0x0200, rd: 0x0100, ra: 0x0080, ad: 0x0020, cd: 0x0010 } as const;
const QR = 0x8000;

/** Type code of a record. */
export function typeCode(rr: ResourceRecord): number {
  return rr.type === 'UNKNOWN' ? rr.code : RRType[rr.type];
}

const typeNames = new Map<number, RDataType | 'ANY' | 'OPT'>(
  ([...Object.keys(RDATA), 'ANY', 'OPT'] as Array<RDataType | 'ANY' | 'OPT'>).map((t) => [RRType[t], t]),
);

// ---------------------------------------------------------------- encoding

type RData = NonNullable<ResourceRecord['data']>;

/**
 * A record's non-empty rdata with its codec; undefined for empty rdata
 * (type ANY never has any, RFC 2136 §2.5.3). The codec comes from the
 * record's own type, so it fits the data.
 */
function rdataOf(rr: ResourceRecord): { codec: RDataCodec<RData>; data: RData } | undefined {
  if (rr.data === null) return undefined;
  return { codec: rr.type === 'OPT' || rr.type === 'UNKNOWN' ? opaqueRData : RDATA[rr.type], data: rr.data };
}

/** Octets of one RR on the wire uncompressed (an upper bound for it compressed), computed without encoding it. */
export function recordLength(rr: ResourceRecord): number {
  const rdata = rdataOf(rr);
  return nameLength(rr.name) + RR_FIXED + (rdata === undefined ? 0 : rdata.codec.encodingLength(rdata.data));
}

/**
 * Writes one RR at `offset`; returns the octets written. Uncompressed
 * unless `names` (the message's compression table) is given.
 */
export function writeRecord(rr: ResourceRecord, buf: Buffer, offset: number, names?: NameCompressor): number {
  let p = offset + (names === undefined ? writeName(rr.name, buf, offset) : names.write(rr.name, buf, offset));
  p = buf.writeUInt16BE(typeCode(rr), p);
  p = buf.writeUInt16BE(rr.class, p);
  p = buf.writeUInt32BE(rr.ttl >>> 0, p);
  const rdata = rdataOf(rr);
  const rdlength = rdata === undefined ? 0 : rdata.codec.encode(rdata.data, buf, p + 2, names);
  if (rdlength > 0xffff) throw new RangeError(`rdata of ${rr.name} is longer than 65535 octets`);
  p = buf.writeUInt16BE(rdlength, p);
  return p + rdlength - offset;
}

/** Wire form of one RR on its own (so nothing to compress against). */
export function encodeRecord(rr: ResourceRecord): Buffer {
  const out = Buffer.alloc(recordLength(rr));
  writeRecord(rr, out, 0);
  return out;
}

function questionLength(q: Question): number {
  return nameLength(q.name) + 4;
}

function writeQuestion(q: Question, buf: Buffer, offset: number, names: NameCompressor | undefined): number {
  let p = offset + (names === undefined ? writeName(q.name, buf, offset) : names.write(q.name, buf, offset));
  p = buf.writeUInt16BE(q.type, p);
  return buf.writeUInt16BE(q.class, p) - offset;
}

/**
 * Octets of the message encoded without compression, computed without
 * encoding it: exactly what `encodeMessage(m, { compress: false })` writes,
 * and an upper bound on the compressed encoding (compression only ever
 * replaces labels by a shorter pointer). Whoever sizes messages against a
 * limit (update splitting) can rely on that bound.
 */
export function encodingLength(m: Message): number {
  let size = HEADER;
  for (const q of m.questions) size += questionLength(q);
  for (const section of [m.answers, m.authorities, m.additionals]) {
    for (const rr of section) size += recordLength(rr);
  }
  return size;
}

export interface EncodeOptions {
  /**
   * Name compression (RFC 1035 §4.1.4) of owner names and of the names in
   * NS, CNAME, PTR and SOA rdata. Default: on for responses (QR set), off
   * for requests — a request's bytes stay those of the original client
   * (and of BIND's fixtures), and update splitting sizes requests exactly.
   * Off, the output is exactly encodingLength(m) octets.
   */
  compress?: boolean;
}

/**
 * Encodes a message. An rcode above 15 needs an OPT RR to carry its upper
 * bits (RFC 6891 §6.1.3); those bits are written into the OPT's TTL field.
 */
export function encodeMessage(m: Message, options: EncodeOptions = {}): Buffer {
  const additionals = m.additionals.map((rr) => {
    if (rr.type !== 'OPT') return rr;
    const ttl = (((m.rcode >> 4) & 0xff) << 24) | (rr.ttl & 0x00ffffff);
    return { ...rr, ttl: ttl >>> 0 };
  });
  if (m.rcode > 15 && !additionals.some((rr) => rr.type === 'OPT')) {
    throw new RangeError(`rcode ${m.rcode} needs an OPT record`);
  }
  const sections = [m.answers, m.authorities, additionals];
  for (const section of [m.questions, ...sections]) {
    if (section.length > 0xffff) throw new RangeError('too many records in one section');
  }
  const out = Buffer.alloc(encodingLength(m));
  out.writeUInt16BE(m.id, 0);
  let flags = (m.qr ? QR : 0) | ((m.opcode & 0xf) << 11) | (m.rcode & 0xf);
  for (const f of Object.keys(FLAGS) as Array<keyof typeof FLAGS>) if (m[f]) flags |= FLAGS[f];
  out.writeUInt16BE(flags, 2);
  [m.questions, ...sections].forEach((section, i) => out.writeUInt16BE(section.length, 4 + 2 * i));
  const names = (options.compress ?? m.qr) ? new NameCompressor() : undefined;
  let p = HEADER;
  for (const q of m.questions) p += writeQuestion(q, out, p, names);
  for (const section of sections) {
    for (const rr of section) p += writeRecord(rr, out, p, names);
  }
  // Compressed: the buffer was sized for the uncompressed form; keep only what was written.
  return p === out.length ? out : Buffer.from(out.subarray(0, p));
}

/**
 * Appends one encoded RR to an encoded message as the last additional
 * record (ARCOUNT + 1): how SIG(0) (RFC 2931 §3) and TSIG (RFC 8945 §4.2)
 * are attached after signing.
 */
export function appendAdditional(message: Buffer, rr: ResourceRecord): Buffer {
  const out = Buffer.alloc(message.length + recordLength(rr));
  message.copy(out, 0);
  writeRecord(rr, out, message.length);
  out.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return out;
}

// ---------------------------------------------------------------- decoding

class Reader {
  constructor(
    readonly buf: Buffer,
    readonly id: number,
  ) {}

  fail(reason: ConstructorParameters<typeof MalformedMessageError>[0], message: string): never {
    throw new MalformedMessageError(reason, message, this.id);
  }
}

function decodeRecord(r: Reader, offset: number): { rr: ResourceRecord; span: RRSpan } {
  const { buf } = r;
  const owner = decodeName(buf, offset, r.id);
  const p = owner.end;
  if (p + RR_FIXED > buf.length) r.fail('truncated-rr', `record at offset ${offset} is cut off`);
  const type = buf.readUInt16BE(p);
  const cls = buf.readUInt16BE(p + 2);
  const ttl = buf.readUInt32BE(p + 4);
  const rdlength = buf.readUInt16BE(p + 8);
  const rdataStart = p + RR_FIXED;
  const end = rdataStart + rdlength;
  if (end > buf.length) r.fail('rdata-overrun', `rdata of record at offset ${offset} runs past the end of the message`);
  const span = { start: offset, rdataStart, end };
  const name = typeNames.get(type);
  // Object literals of one shape rather than spreads: this runs for every RR received.
  if (name === undefined) {
    return { rr: { name: owner.name, type: 'UNKNOWN', code: type, class: cls, ttl, data: opaqueRData.decode(buf, rdataStart, rdlength) }, span };
  }
  let data: ResourceRecord['data'];
  if (name === 'OPT') {
    data = opaqueRData.decode(buf, rdataStart, rdlength);
  } else if (rdlength === 0) {
    data = null;
  } else if (name === 'ANY') {
    return r.fail('bad-rdata', `type ANY with rdata at offset ${rdataStart}`);
  } else {
    data = RDATA[name].decode(buf, rdataStart, rdlength, r.id);
  }
  return { rr: { name: owner.name, type: name, class: cls, ttl, data } as ResourceRecord, span };
}

/** decodeName, with a name cut off by the end of the message reported as a truncated question. */
function decodeQuestionName(raw: Buffer, offset: number, id: number): ReturnType<typeof decodeName> {
  try {
    return decodeName(raw, offset, id);
  } catch (err) {
    if (err instanceof MalformedMessageError && err.reason === 'truncated-rr') {
      throw new MalformedMessageError('truncated-question', err.message, id);
    }
    throw err;
  }
}

/**
 * Decodes a whole message. Anything malformed — truncation, counts larger
 * than the data, bad names or pointers, rdata overruns, trailing bytes —
 * throws MalformedMessageError, with the ID when the header was readable.
 */
export function decodeMessage(raw: Buffer): DecodedMessage {
  if (raw.length < HEADER) {
    throw new MalformedMessageError(
      'truncated-header',
      `message of ${raw.length} octets is shorter than a header`,
      raw.length >= 2 ? raw.readUInt16BE(0) : undefined,
    );
  }
  const id = raw.readUInt16BE(0);
  const r = new Reader(raw, id);
  const flags = raw.readUInt16BE(2);
  const counts = [raw.readUInt16BE(4), raw.readUInt16BE(6), raw.readUInt16BE(8), raw.readUInt16BE(10)] as const;
  const [qd, an, ns, ar] = counts;
  // Refuse absurd counts before allocating anything for them.
  if (qd * MIN_QUESTION + (an + ns + ar) * MIN_RR > raw.length - HEADER) {
    r.fail('count-overrun', `header counts ${counts.join('/')} need more than ${raw.length - HEADER} octets`);
  }
  let offset = HEADER;
  const questions: Question[] = [];
  const qSpans: RRSpan[] = [];
  for (let i = 0; i < qd; i++) {
    const n = decodeQuestionName(raw, offset, id);
    if (n.end + 4 > raw.length) r.fail('truncated-question', `question at offset ${offset} is cut off`);
    questions.push({ name: n.name, type: raw.readUInt16BE(n.end), class: raw.readUInt16BE(n.end + 2) });
    qSpans.push({ start: offset, rdataStart: n.end + 4, end: n.end + 4 });
    offset = n.end + 4;
  }
  const sections: ResourceRecord[][] = [[], [], []];
  const spans: RRSpan[][] = [[], [], []];
  for (let s = 0; s < 3; s++) {
    const count = counts[s + 1];
    for (let i = 0; i < count; i++) {
      if (offset >= raw.length) r.fail('count-overrun', `header promises ${count} records in section ${s + 1}, found ${i}`);
      const { rr, span } = decodeRecord(r, offset);
      (sections[s]).push(rr);
      (spans[s]).push(span);
      offset = span.end;
    }
  }
  if (offset !== raw.length) r.fail('trailing-data', `${raw.length - offset} octets after the last record`);
  const [answers, authorities, additionals] = sections as [ResourceRecord[], ResourceRecord[], ResourceRecord[]];
  let rcode = flags & 0xf;
  const opt = additionals.find((rr) => rr.type === 'OPT');
  if (opt) rcode |= ((opt.ttl >>> 24) & 0xff) << 4;
  return {
    id,
    qr: (flags & QR) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & FLAGS.aa) !== 0,
    tc: (flags & FLAGS.tc) !== 0,
    rd: (flags & FLAGS.rd) !== 0,
    ra: (flags & FLAGS.ra) !== 0,
    ad: (flags & FLAGS.ad) !== 0,
    cd: (flags & FLAGS.cd) !== 0,
    rcode,
    questions,
    answers,
    authorities,
    additionals,
    raw,
    spans: {
      questions: qSpans,
      answers: spans[0],
      authorities: spans[1],
      additionals: spans[2],
    },
  };
}

/** A fresh message with every flag clear. */
export function emptyMessage(id: number, opcode: number): Message {
  return {
    id,
    qr: false,
    opcode,
    aa: false,
    tc: false,
    rd: false,
    ra: false,
    ad: false,
    cd: false,
    rcode: Rcode.NOERROR,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
  };
}

/** An OPT pseudo-RR advertising `udpPayloadSize` (RFC 6891 §6.1.2). */
export function optRecord(udpPayloadSize: number, options: Buffer = Buffer.alloc(0)): ResourceRecord {
  return { name: '.', type: 'OPT', class: udpPayloadSize, ttl: 0, data: options };
}
