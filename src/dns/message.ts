/**
 * DNS message codec (RFC 1035 §4.1) on top of dns-packet.
 *
 * dns-packet supplies the rdata codecs of the ordinary types; this module
 * adds what it lacks for RFC 2136/2931/8945 work: class NONE/ANY that
 * round-trip, KEY/SIG/TSIG rdata, empty rdata (the RFC 2136 delete forms),
 * any opcode, extended rcodes, strict bounds checks, and — for signature
 * checks over the bytes received — the raw message plus every RR's offsets.
 * This is the only module that imports dns-packet.
 */
import packet from 'dns-packet';
import { RRType, Rcode } from './constants.js';
import { MalformedMessageError } from './errors.js';
import { decodeName, encodeName } from './names.js';
import type { KeyRData } from './types.js';
import { errorMessage } from '../errors.js';

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** SIG rdata, RFC 2535 §4.1 / RFC 2931 §3. Times are Unix seconds. */
export interface SigRData {
  typeCovered: number;
  algorithm: number;
  labels: number;
  originalTtl: number;
  expiration: number;
  inception: number;
  keyTag: number;
  signerName: string;
  signature: Buffer;
}

/** TSIG rdata, RFC 8945 §4.2. `timeSigned` is Unix seconds (48-bit on the wire). */
export interface TsigRData {
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  otherData: Buffer;
}

interface RRBase {
  name: string;
  /** For OPT this is the UDP payload size (RFC 6891 §6.1.2). */
  class: number;
  /** For OPT this packs extended rcode, version and flags (RFC 6891 §6.1.3). */
  ttl: number;
}

/** `data: null` is an empty rdata, as in the RFC 2136 delete forms. */
export type ResourceRecord = RRBase &
  (
    | { type: 'A'; data: string | null }
    | { type: 'AAAA'; data: string | null }
    | { type: 'NS'; data: string | null }
    | { type: 'CNAME'; data: string | null }
    | { type: 'PTR'; data: string | null }
    | { type: 'TXT'; data: string[] | null }
    | { type: 'SOA'; data: SoaData | null }
    | { type: 'SRV'; data: SrvData | null }
    | { type: 'KEY'; data: KeyRData | null }
    | { type: 'SIG'; data: SigRData | null }
    | { type: 'TSIG'; data: TsigRData | null }
    | { type: 'ANY'; data: null }
    | { type: 'OPT'; data: Buffer }
    | { type: 'UNKNOWN'; code: number; data: Buffer }
  );

export type RecordTypeName = ResourceRecord['type'];

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
const MIN_QUESTION = 5; // root name + type + class
const MIN_RR = 11; // root name + type + class + ttl + rdlength

/** Type code of a record. */
export function typeCode(rr: ResourceRecord): number {
  return rr.type === 'UNKNOWN' ? rr.code : RRType[rr.type];
}

const knownTypeNames = new Map<number, Exclude<RecordTypeName, 'UNKNOWN'>>([
  [RRType.A, 'A'],
  [RRType.AAAA, 'AAAA'],
  [RRType.NS, 'NS'],
  [RRType.CNAME, 'CNAME'],
  [RRType.PTR, 'PTR'],
  [RRType.TXT, 'TXT'],
  [RRType.SOA, 'SOA'],
  [RRType.SRV, 'SRV'],
  [RRType.KEY, 'KEY'],
  [RRType.SIG, 'SIG'],
  [RRType.TSIG, 'TSIG'],
  [RRType.ANY, 'ANY'],
  [RRType.OPT, 'OPT'],
]);

// ---------------------------------------------------------------- rdata

interface RawPacketCodec<T> {
  encode(data: T): Buffer;
  decode: ((buf: Buffer, offset: number) => T) & { bytes: number };
}

interface PacketCodec<T> {
  encode(data: T): Buffer;
  decode(buf: Buffer, offset: number): T;
  decodeBytes(): number;
}

/** dns-packet's rdata codecs include the 2-byte rdlength; these wrappers expose that convention once. */
function viaPacket<T>(typeName: string): PacketCodec<T> {
  // @types/dns-packet does not declare the per-type codecs that dns-packet exports as `record(type)`.
  const codec = (packet as unknown as { record(type: string): RawPacketCodec<T> }).record(typeName);
  return {
    encode: (data: T): Buffer => codec.encode(data).subarray(2),
    decode: (buf: Buffer, offset: number): T => codec.decode(buf, offset),
    decodeBytes: (): number => codec.decode.bytes,
  };
}

const aCodec = viaPacket<string>('A');
const aaaaCodec = viaPacket<string>('AAAA');

/**
 * RFC 1035 §3.3.14: character-strings of at most 255 octets. Written here
 * rather than through dns-packet, whose TXT encoder replaces the caller's
 * strings with Buffers in place.
 */
function encodeTxtData(strings: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of strings) {
    const b = Buffer.from(s, 'utf8');
    if (b.length > 255) throw new RangeError(`TXT string of ${b.length} octets is longer than 255`);
    parts.push(Buffer.from([b.length]), b);
  }
  return Buffer.concat(parts);
}

/** RFC 1035 §3.3.13. Names through our encoder: dns-packet's ignores escapes such as `\.` and `\032`. */
function encodeSoaData(d: SoaData): Buffer {
  const nums = Buffer.allocUnsafe(20);
  [d.serial, d.refresh, d.retry, d.expire, d.minimum].forEach((v, i) => nums.writeUInt32BE(v >>> 0, 4 * i));
  return Buffer.concat([encodeName(d.mname), encodeName(d.rname), nums]);
}

/** RFC 2782; target uncompressed, as that RFC requires. */
function encodeSrvData(d: SrvData): Buffer {
  const head = Buffer.allocUnsafe(6);
  head.writeUInt16BE(d.priority, 0);
  head.writeUInt16BE(d.weight, 2);
  head.writeUInt16BE(d.port, 4);
  return Buffer.concat([head, encodeName(d.target)]);
}

function encodeKeyData(k: KeyRData): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt16BE(k.flags, 0);
  head[2] = k.protocol;
  head[3] = k.algorithm;
  return Buffer.concat([head, k.publicKey]);
}

/** SIG rdata without the signature: exactly the prefix RFC 2931 §3.1 signs. Signer name never compressed. */
export function encodeSigRDataForSigning(s: Omit<SigRData, 'signature'>): Buffer {
  const fixed = Buffer.allocUnsafe(18);
  fixed.writeUInt16BE(s.typeCovered, 0);
  fixed[2] = s.algorithm;
  fixed[3] = s.labels;
  fixed.writeUInt32BE(s.originalTtl >>> 0, 4);
  fixed.writeUInt32BE(s.expiration >>> 0, 8);
  fixed.writeUInt32BE(s.inception >>> 0, 12);
  fixed.writeUInt16BE(s.keyTag, 16);
  return Buffer.concat([fixed, encodeName(s.signerName)]);
}

function writeU48(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt16BE(Math.floor(value / 0x100000000) & 0xffff, offset);
  buf.writeUInt32BE(value >>> 0, offset + 2);
}

function encodeTsigData(t: TsigRData): Buffer {
  const time = Buffer.allocUnsafe(10);
  writeU48(time, t.timeSigned, 0);
  time.writeUInt16BE(t.fudge, 6);
  time.writeUInt16BE(t.mac.length, 8);
  const tail = Buffer.allocUnsafe(6);
  tail.writeUInt16BE(t.originalId, 0);
  tail.writeUInt16BE(t.error, 2);
  tail.writeUInt16BE(t.otherData.length, 4);
  return Buffer.concat([encodeName(t.algorithm), time, t.mac, tail, t.otherData]);
}

function encodeRData(rr: ResourceRecord): Buffer {
  switch (rr.type) {
    case 'A':
      return rr.data === null ? Buffer.alloc(0) : aCodec.encode(rr.data);
    case 'AAAA':
      return rr.data === null ? Buffer.alloc(0) : aaaaCodec.encode(rr.data);
    case 'NS':
    case 'CNAME':
    case 'PTR':
      return rr.data === null ? Buffer.alloc(0) : encodeName(rr.data);
    case 'TXT':
      return rr.data === null ? Buffer.alloc(0) : encodeTxtData(rr.data);
    case 'SOA':
      return rr.data === null ? Buffer.alloc(0) : encodeSoaData(rr.data);
    case 'SRV':
      return rr.data === null ? Buffer.alloc(0) : encodeSrvData(rr.data);
    case 'KEY':
      return rr.data === null ? Buffer.alloc(0) : encodeKeyData(rr.data);
    case 'SIG':
      return rr.data === null
        ? Buffer.alloc(0)
        : Buffer.concat([encodeSigRDataForSigning(rr.data), rr.data.signature]);
    case 'TSIG':
      return rr.data === null ? Buffer.alloc(0) : encodeTsigData(rr.data);
    case 'ANY':
      return Buffer.alloc(0);
    case 'OPT':
    case 'UNKNOWN':
      return rr.data;
  }
}

/** Wire form of one RR (owner never compressed). */
export function encodeRecord(rr: ResourceRecord): Buffer {
  const owner = encodeName(rr.name);
  const rdata = encodeRData(rr);
  if (rdata.length > 0xffff) throw new RangeError(`rdata of ${rr.name} is longer than 65535 octets`);
  const fixed = Buffer.allocUnsafe(10);
  fixed.writeUInt16BE(typeCode(rr), 0);
  fixed.writeUInt16BE(rr.class, 2);
  fixed.writeUInt32BE(rr.ttl >>> 0, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([owner, fixed, rdata]);
}

function encodeQuestion(q: Question): Buffer {
  const tail = Buffer.allocUnsafe(4);
  tail.writeUInt16BE(q.type, 0);
  tail.writeUInt16BE(q.class, 2);
  return Buffer.concat([encodeName(q.name), tail]);
}

/** The 12-byte header. */
export function encodeHeader(m: Message, counts: [number, number, number, number]): Buffer {
  const h = Buffer.allocUnsafe(HEADER);
  h.writeUInt16BE(m.id, 0);
  let flags = (m.opcode & 0xf) << 11;
  if (m.qr) flags |= 0x8000;
  if (m.aa) flags |= packet.AUTHORITATIVE_ANSWER;
  if (m.tc) flags |= packet.TRUNCATED_RESPONSE;
  if (m.rd) flags |= packet.RECURSION_DESIRED;
  if (m.ra) flags |= packet.RECURSION_AVAILABLE;
  if (m.ad) flags |= packet.AUTHENTIC_DATA;
  if (m.cd) flags |= packet.CHECKING_DISABLED;
  flags |= m.rcode & 0xf;
  h.writeUInt16BE(flags, 2);
  counts.forEach((c, i) => h.writeUInt16BE(c, 4 + 2 * i));
  return h;
}

/**
 * Encodes a message. An rcode above 15 needs an OPT RR to carry its upper
 * bits (RFC 6891 §6.1.3); those bits are written into the OPT's TTL field.
 */
export function encodeMessage(m: Message): Buffer {
  const additionals = m.additionals.map((rr) => {
    if (rr.type !== 'OPT') return rr;
    const ttl = (((m.rcode >> 4) & 0xff) << 24) | (rr.ttl & 0x00ffffff);
    return { ...rr, ttl: ttl >>> 0 };
  });
  if (m.rcode > 15 && !additionals.some((rr) => rr.type === 'OPT')) {
    throw new RangeError(`rcode ${m.rcode} needs an OPT record`);
  }
  for (const section of [m.questions, m.answers, m.authorities, additionals]) {
    if (section.length > 0xffff) throw new RangeError('too many records in one section');
  }
  const parts: Buffer[] = [
    encodeHeader(m, [m.questions.length, m.answers.length, m.authorities.length, additionals.length]),
  ];
  for (const q of m.questions) parts.push(encodeQuestion(q));
  for (const rr of m.answers) parts.push(encodeRecord(rr));
  for (const rr of m.authorities) parts.push(encodeRecord(rr));
  for (const rr of additionals) parts.push(encodeRecord(rr));
  return Buffer.concat(parts);
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

function decodeRData(r: Reader, type: number, rdataStart: number, rdlength: number): ResourceRecord['data'] {
  const { buf } = r;
  const end = rdataStart + rdlength;
  const name = knownTypeNames.get(type);
  if (rdlength === 0 && name !== 'OPT' && name !== undefined) return null;
  const viaPacketDecode = <T>(codec: PacketCodec<T>): T => {
    let value: T;
    try {
      value = codec.decode(buf, rdataStart - 2);
    } catch (err) {
      if (err instanceof MalformedMessageError) throw err;
      return r.fail('bad-rdata', `bad ${name ?? type} rdata at offset ${rdataStart}: ${errorMessage(err)}`);
    }
    if (codec.decodeBytes() !== rdlength + 2) r.fail('bad-rdata', `${name} rdata at offset ${rdataStart} has the wrong length`);
    return value;
  };
  const nameInRData = (): string => {
    const n = decodeName(buf, rdataStart, r.id);
    if (n.end !== end) r.fail('bad-rdata', `${name} rdata at offset ${rdataStart} has the wrong length`);
    return n.name;
  };
  switch (name) {
    case 'A':
      if (rdlength !== 4) r.fail('bad-rdata', `A rdata of ${rdlength} octets at offset ${rdataStart}`);
      return viaPacketDecode(aCodec);
    case 'AAAA':
      if (rdlength !== 16) r.fail('bad-rdata', `AAAA rdata of ${rdlength} octets at offset ${rdataStart}`);
      return viaPacketDecode(aaaaCodec);
    case 'NS':
    case 'CNAME':
    case 'PTR':
      return nameInRData();
    case 'TXT': {
      // Walk the character-strings ourselves: dns-packet trusts the inner lengths.
      const strings: string[] = [];
      let p = rdataStart;
      while (p < end) {
        const len = buf[p];
        if (p + 1 + len > end) r.fail('bad-rdata', `TXT string at offset ${p} overruns its rdata`);
        strings.push(buf.toString('utf8', p + 1, p + 1 + len));
        p += 1 + len;
      }
      return strings;
    }
    case 'SOA': {
      const mname = decodeName(buf, rdataStart, r.id);
      const rname = decodeName(buf, mname.end, r.id);
      if (rname.end + 20 !== end) r.fail('bad-rdata', `SOA rdata at offset ${rdataStart} has the wrong length`);
      const p = rname.end;
      return {
        mname: mname.name,
        rname: rname.name,
        serial: buf.readUInt32BE(p),
        refresh: buf.readUInt32BE(p + 4),
        retry: buf.readUInt32BE(p + 8),
        expire: buf.readUInt32BE(p + 12),
        minimum: buf.readUInt32BE(p + 16),
      };
    }
    case 'SRV': {
      if (rdlength < 7) r.fail('bad-rdata', `SRV rdata at offset ${rdataStart} is too short`);
      const target = decodeName(buf, rdataStart + 6, r.id);
      if (target.end !== end) r.fail('bad-rdata', `SRV rdata at offset ${rdataStart} has the wrong length`);
      return {
        priority: buf.readUInt16BE(rdataStart),
        weight: buf.readUInt16BE(rdataStart + 2),
        port: buf.readUInt16BE(rdataStart + 4),
        target: target.name,
      };
    }
    case 'KEY':
      if (rdlength < 4) r.fail('bad-rdata', `KEY rdata at offset ${rdataStart} is too short`);
      return {
        flags: buf.readUInt16BE(rdataStart),
        protocol: buf[rdataStart + 2],
        algorithm: buf[rdataStart + 3],
        publicKey: Buffer.from(buf.subarray(rdataStart + 4, end)),
      };
    case 'SIG': {
      if (rdlength < 19) r.fail('bad-rdata', `SIG rdata at offset ${rdataStart} is too short`);
      const signer = decodeName(buf, rdataStart + 18, r.id);
      if (signer.end > end) r.fail('bad-rdata', `SIG signer name at offset ${rdataStart + 18} overruns its rdata`);
      return {
        typeCovered: buf.readUInt16BE(rdataStart),
        algorithm: buf[rdataStart + 2],
        labels: buf[rdataStart + 3],
        originalTtl: buf.readUInt32BE(rdataStart + 4),
        expiration: buf.readUInt32BE(rdataStart + 8),
        inception: buf.readUInt32BE(rdataStart + 12),
        keyTag: buf.readUInt16BE(rdataStart + 16),
        signerName: signer.name,
        signature: Buffer.from(buf.subarray(signer.end, end)),
      };
    }
    case 'TSIG': {
      const alg = decodeName(buf, rdataStart, r.id);
      let p = alg.end;
      if (p + 10 > end) r.fail('bad-rdata', `TSIG rdata at offset ${rdataStart} is too short`);
      const timeSigned = buf.readUInt16BE(p) * 0x100000000 + buf.readUInt32BE(p + 2);
      const fudge = buf.readUInt16BE(p + 6);
      const macSize = buf.readUInt16BE(p + 8);
      p += 10;
      if (p + macSize + 6 > end) r.fail('bad-rdata', `TSIG MAC at offset ${p} overruns its rdata`);
      const mac = Buffer.from(buf.subarray(p, p + macSize));
      p += macSize;
      const originalId = buf.readUInt16BE(p);
      const error = buf.readUInt16BE(p + 2);
      const otherLen = buf.readUInt16BE(p + 4);
      p += 6;
      if (p + otherLen !== end) r.fail('bad-rdata', `TSIG rdata at offset ${rdataStart} has the wrong length`);
      return {
        algorithm: alg.name,
        timeSigned,
        fudge,
        mac,
        originalId,
        error,
        otherData: Buffer.from(buf.subarray(p, end)),
      };
    }
    case 'ANY':
      return r.fail('bad-rdata', `type ANY with rdata at offset ${rdataStart}`);
    case 'OPT':
    case undefined:
      return Buffer.from(buf.subarray(rdataStart, end));
  }
}

function decodeRecord(r: Reader, offset: number): { rr: ResourceRecord; span: RRSpan } {
  const { buf } = r;
  const owner = decodeName(buf, offset, r.id);
  const p = owner.end;
  if (p + 10 > buf.length) r.fail('truncated-rr', `record at offset ${offset} is cut off`);
  const type = buf.readUInt16BE(p);
  const cls = buf.readUInt16BE(p + 2);
  const ttl = buf.readUInt32BE(p + 4);
  const rdlength = buf.readUInt16BE(p + 8);
  const rdataStart = p + 10;
  const end = rdataStart + rdlength;
  if (end > buf.length) r.fail('rdata-overrun', `rdata of record at offset ${offset} runs past the end of the message`);
  const data = decodeRData(r, type, rdataStart, rdlength);
  const name = knownTypeNames.get(type);
  const rr = (
    name === undefined
      ? { name: owner.name, type: 'UNKNOWN', code: type, class: cls, ttl, data }
      : { name: owner.name, type: name, class: cls, ttl, data }
  ) as ResourceRecord;
  return { rr, span: { start: offset, rdataStart, end } };
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
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & packet.AUTHORITATIVE_ANSWER) !== 0,
    tc: (flags & packet.TRUNCATED_RESPONSE) !== 0,
    rd: (flags & packet.RECURSION_DESIRED) !== 0,
    ra: (flags & packet.RECURSION_AVAILABLE) !== 0,
    ad: (flags & packet.AUTHENTIC_DATA) !== 0,
    cd: (flags & packet.CHECKING_DISABLED) !== 0,
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
