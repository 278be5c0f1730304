/**
 * Rdata codecs, one per record type, in one table. Each has the shape
 * dns-packet's codecs have — encodingLength, encode into a buffer at an
 * offset, decode from the message — so a message's length is known without
 * encoding it, and a whole message is written into one buffer.
 *
 * Everything is written here rather than on top of dns-packet: its name
 * codec ignores escapes (`\.`, `\DDD`), writes a label over 63 octets with a
 * corrupt length octet and decodes labels as UTF-8, which would make names
 * in rdata lossy; its TXT encoder wraps strings over 255 octets and replaces
 * the caller's strings with Buffers. Names go through ./names.ts, which
 * keeps case and bytes exactly (signatures are checked over what arrived).
 */
import { MalformedMessageError } from './errors.js';
import { decodeName, nameLength, writeName, type NameCompressor } from './names.js';
import type { KeyRData } from './types.js';

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

/** The SIG fields RFC 2931 §3.1 signs: the rdata without the signature. */
export type SigFields = Omit<SigRData, 'signature'>;

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

/** The decoded value of each type with a codec of its own. */
export interface RDataTypes {
  A: string;
  AAAA: string;
  NS: string;
  CNAME: string;
  PTR: string;
  TXT: string[];
  SOA: SoaData;
  SRV: SrvData;
  KEY: KeyRData;
  SIG: SigRData;
  TSIG: TsigRData;
}

export type RDataType = keyof RDataTypes;

/**
 * One rdata codec. Lengths exclude the RDLENGTH field. encode throws
 * (RangeError, InvalidNameError) for a value that cannot be put on the wire;
 * encodingLength checks only the names it has to measure.
 */
export interface RDataCodec<T> {
  /** Octets `data` takes on the wire. */
  encodingLength(data: T): number;
  /**
   * Writes `data` at `offset` and returns the octets written: encodingLength(data),
   * or fewer when `names` is given and the type's names may be compressed
   * (NS, CNAME, PTR, SOA: the RFC 1035 types RFC 3597 §4 allows; never
   * SRV (RFC 2782), KEY/SIG (RFC 2931 §3), TSIG (RFC 8945 §4.2) or opaque rdata).
   */
  encode(data: T, buf: Buffer, offset: number, names?: NameCompressor): number;
  /**
   * Decodes the `length` octets at `offset` of the message `buf`; names may
   * point back into the message (RFC 1035 §4.1.4). Throws
   * MalformedMessageError carrying `id`.
   */
  decode(buf: Buffer, offset: number, length: number, id?: number): T;
}

function badRData(message: string, id: number | undefined): never {
  throw new MalformedMessageError('bad-rdata', message, id);
}

/** The rdata is a name and nothing else; the name ends exactly at the end of the rdata. */
function nameAt(buf: Buffer, offset: number, end: number, what: string, id: number | undefined): string {
  const n = decodeName(buf, offset, id);
  if (n.end !== end) badRData(`${what} rdata at offset ${offset} has the wrong length`, id);
  return n.name;
}

// ---------------------------------------------------------------- addresses

const IPV4_PART = /^\d{1,3}$/;

/** Dotted quad → 4 octets, or undefined when `text` is not one. */
function parseIPv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => IPV4_PART.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Colon-separated hex groups; the last may be a dotted quad (RFC 4291 §2.2, form 3). */
function ipv6Groups(text: string, lastMayBeIPv4: boolean): number[] | undefined {
  if (text === '') return [];
  const groups: number[] = [];
  const parts = text.split(':');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (IPV6_GROUP.test(p)) {
      groups.push(parseInt(p, 16));
      continue;
    }
    const v4 = lastMayBeIPv4 && i === parts.length - 1 ? parseIPv4(p) : undefined;
    if (v4 === undefined) return undefined;
    groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
  }
  return groups;
}

/** RFC 4291 §2.2 text → eight 16-bit groups, or undefined when `text` is not an IPv6 address. */
function parseIPv6(text: string): number[] | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  if (halves.length === 1) {
    const all = ipv6Groups(text, true);
    return all?.length === 8 ? all : undefined;
  }
  const head = ipv6Groups(halves[0], false);
  const tail = ipv6Groups(halves[1], true);
  if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** RFC 1035 §3.4.1. Decodes to the dotted quad. */
const aCodec: RDataCodec<string> = {
  encodingLength: () => 4,
  encode(data, buf, offset) {
    const octets = parseIPv4(data);
    if (octets === undefined) throw new RangeError(`${JSON.stringify(data)} is not an IPv4 address`);
    octets.forEach((o, i) => (buf[offset + i] = o));
    return 4;
  },
  decode(buf, offset, length, id) {
    if (length !== 4) badRData(`A rdata of ${length} octets at offset ${offset}`, id);
    return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
  },
};

/**
 * RFC 3596 §2.2. Decodes to lower-case hex groups with the leftmost run of
 * two or more zero groups written `::` — the text dns-packet produced, which
 * addresses are compared and stored in. (RFC 5952 §4.2.3 would shorten the
 * longest run instead; the two differ only when a later run is longer.)
 */
const aaaaCodec: RDataCodec<string> = {
  encodingLength: () => 16,
  encode(data, buf, offset) {
    const groups = parseIPv6(data);
    if (groups === undefined) throw new RangeError(`${JSON.stringify(data)} is not an IPv6 address`);
    groups.forEach((g, i) => buf.writeUInt16BE(g, offset + 2 * i));
    return 16;
  },
  decode(buf, offset, length, id) {
    if (length !== 16) badRData(`AAAA rdata of ${length} octets at offset ${offset}`, id);
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(buf.readUInt16BE(offset + i).toString(16));
    return groups.join(':').replace(/(^|:)0(:0)*:0(:|$)/, '$1::$3').replace(/:{3,4}/, '::');
  },
};

// ---------------------------------------------------------------- names and text

/** A name in rdata of a type that allows compression (RFC 3597 §4): compressed when `names` is given. */
function writeCompressible(name: string, buf: Buffer, offset: number, names: NameCompressor | undefined): number {
  return names === undefined ? writeName(name, buf, offset) : names.write(name, buf, offset);
}

/** NS, CNAME, PTR (RFC 1035 §3.3): one name, compressible. */
function nameCodec(type: string): RDataCodec<string> {
  return {
    encodingLength: (data) => nameLength(data),
    encode: (data, buf, offset, names) => writeCompressible(data, buf, offset, names),
    decode: (buf, offset, length, id) => nameAt(buf, offset, offset + length, type, id),
  };
}

/** RFC 1035 §3.3.14: character-strings of at most 255 octets each. */
const txtCodec: RDataCodec<string[]> = {
  encodingLength(data) {
    let size = 0;
    for (const s of data) size += 1 + Buffer.byteLength(s, 'utf8');
    return size;
  },
  encode(data, buf, offset) {
    let pos = offset;
    for (const s of data) {
      const len = Buffer.byteLength(s, 'utf8');
      if (len > 255) throw new RangeError(`TXT string of ${len} octets is longer than 255`);
      buf[pos] = len;
      pos += 1 + buf.write(s, pos + 1, 'utf8');
    }
    return pos - offset;
  },
  decode(buf, offset, length, id) {
    // The inner lengths are checked against the rdata, not trusted.
    const end = offset + length;
    const strings: string[] = [];
    let p = offset;
    while (p < end) {
      const len = buf[p];
      if (p + 1 + len > end) badRData(`TXT string at offset ${p} overruns its rdata`, id);
      strings.push(buf.toString('utf8', p + 1, p + 1 + len));
      p += 1 + len;
    }
    return strings;
  },
};

/** RFC 1035 §3.3.13: two names (compressible), then five 32-bit numbers. */
const soaCodec: RDataCodec<SoaData> = {
  encodingLength: (d) => nameLength(d.mname) + nameLength(d.rname) + 20,
  encode(d, buf, offset, names) {
    let p = offset + writeCompressible(d.mname, buf, offset, names);
    p += writeCompressible(d.rname, buf, p, names);
    for (const v of [d.serial, d.refresh, d.retry, d.expire, d.minimum]) p = buf.writeUInt32BE(v >>> 0, p);
    return p - offset;
  },
  decode(buf, offset, length, id) {
    const mname = decodeName(buf, offset, id);
    const rname = decodeName(buf, mname.end, id);
    const p = rname.end;
    if (p + 20 !== offset + length) badRData(`SOA rdata at offset ${offset} has the wrong length`, id);
    return {
      mname: mname.name,
      rname: rname.name,
      serial: buf.readUInt32BE(p),
      refresh: buf.readUInt32BE(p + 4),
      retry: buf.readUInt32BE(p + 8),
      expire: buf.readUInt32BE(p + 12),
      minimum: buf.readUInt32BE(p + 16),
    };
  },
};

/** RFC 2782: priority, weight, port, then the target, uncompressed as that RFC requires. */
const srvCodec: RDataCodec<SrvData> = {
  encodingLength: (d) => 6 + nameLength(d.target),
  encode(d, buf, offset) {
    buf.writeUInt16BE(d.priority, offset);
    buf.writeUInt16BE(d.weight, offset + 2);
    buf.writeUInt16BE(d.port, offset + 4);
    return 6 + writeName(d.target, buf, offset + 6);
  },
  decode(buf, offset, length, id) {
    if (length < 7) badRData(`SRV rdata at offset ${offset} is too short`, id);
    return {
      priority: buf.readUInt16BE(offset),
      weight: buf.readUInt16BE(offset + 2),
      port: buf.readUInt16BE(offset + 4),
      target: nameAt(buf, offset + 6, offset + length, 'SRV', id),
    };
  },
};

// ---------------------------------------------------------------- KEY, SIG, TSIG

/** KEY (RFC 2535 §3.1) and DNSKEY (RFC 4034 §2.1): flags u16, protocol u8, algorithm u8, public key. */
const keyCodec: RDataCodec<KeyRData> = {
  encodingLength: (k) => 4 + k.publicKey.length,
  encode(k, buf, offset) {
    buf.writeUInt16BE(k.flags, offset);
    buf[offset + 2] = k.protocol;
    buf[offset + 3] = k.algorithm;
    return 4 + k.publicKey.copy(buf, offset + 4);
  },
  decode(buf, offset, length, id) {
    if (length < 4) badRData(`KEY rdata of ${length} octets at offset ${offset} is shorter than 4`, id);
    return {
      flags: buf.readUInt16BE(offset),
      protocol: buf[offset + 2],
      algorithm: buf[offset + 3],
      publicKey: Buffer.from(buf.subarray(offset + 4, offset + length)),
    };
  },
};

const SIG_FIXED = 18;

/** The SIG rdata up to the signer name (RFC 2535 §4.1), signer name uncompressed (RFC 2931 §3). */
function writeSigFields(s: SigFields, buf: Buffer, offset: number): number {
  buf.writeUInt16BE(s.typeCovered, offset);
  buf[offset + 2] = s.algorithm;
  buf[offset + 3] = s.labels;
  buf.writeUInt32BE(s.originalTtl >>> 0, offset + 4);
  buf.writeUInt32BE(s.expiration >>> 0, offset + 8);
  buf.writeUInt32BE(s.inception >>> 0, offset + 12);
  buf.writeUInt16BE(s.keyTag, offset + 16);
  return SIG_FIXED + writeName(s.signerName, buf, offset + SIG_FIXED);
}

/** SIG rdata without the signature: exactly the prefix RFC 2931 §3.1 signs. */
export function encodeSigRDataForSigning(s: SigFields): Buffer {
  const out = Buffer.alloc(SIG_FIXED + nameLength(s.signerName));
  writeSigFields(s, out, 0);
  return out;
}

const sigCodec: RDataCodec<SigRData> = {
  encodingLength: (s) => SIG_FIXED + nameLength(s.signerName) + s.signature.length,
  encode(s, buf, offset) {
    const fields = writeSigFields(s, buf, offset);
    return fields + s.signature.copy(buf, offset + fields);
  },
  decode(buf, offset, length, id) {
    const end = offset + length;
    if (length < SIG_FIXED + 1) badRData(`SIG rdata at offset ${offset} is too short`, id);
    const signer = decodeName(buf, offset + SIG_FIXED, id);
    if (signer.end > end) badRData(`SIG signer name at offset ${offset + SIG_FIXED} overruns its rdata`, id);
    return {
      typeCovered: buf.readUInt16BE(offset),
      algorithm: buf[offset + 2],
      labels: buf[offset + 3],
      originalTtl: buf.readUInt32BE(offset + 4),
      expiration: buf.readUInt32BE(offset + 8),
      inception: buf.readUInt32BE(offset + 12),
      keyTag: buf.readUInt16BE(offset + 16),
      signerName: signer.name,
      signature: Buffer.from(buf.subarray(signer.end, end)),
    };
  },
};

/** Writes a 48-bit unsigned integer (RFC 8945 §4.2 "Time Signed"). */
export function writeUInt48BE(value: number, buf: Buffer, offset: number): number {
  buf.writeUInt16BE(Math.floor(value / 0x100000000) & 0xffff, offset);
  return buf.writeUInt32BE(value >>> 0, offset + 2);
}

/** RFC 8945 §4.2: algorithm name, time signed (48 bits), fudge, MAC, original ID, error, other data. */
const tsigCodec: RDataCodec<TsigRData> = {
  encodingLength: (t) => nameLength(t.algorithm) + 16 + t.mac.length + t.otherData.length,
  encode(t, buf, offset) {
    let p = offset + writeName(t.algorithm, buf, offset);
    p = writeUInt48BE(t.timeSigned, buf, p);
    p = buf.writeUInt16BE(t.fudge, p);
    p = buf.writeUInt16BE(t.mac.length, p);
    p += t.mac.copy(buf, p);
    p = buf.writeUInt16BE(t.originalId, p);
    p = buf.writeUInt16BE(t.error, p);
    p = buf.writeUInt16BE(t.otherData.length, p);
    p += t.otherData.copy(buf, p);
    return p - offset;
  },
  decode(buf, offset, length, id) {
    const end = offset + length;
    const alg = decodeName(buf, offset, id);
    let p = alg.end;
    if (p + 10 > end) badRData(`TSIG rdata at offset ${offset} is too short`, id);
    const timeSigned = buf.readUInt16BE(p) * 0x100000000 + buf.readUInt32BE(p + 2);
    const fudge = buf.readUInt16BE(p + 6);
    const macSize = buf.readUInt16BE(p + 8);
    p += 10;
    if (p + macSize + 6 > end) badRData(`TSIG MAC at offset ${p} overruns its rdata`, id);
    const mac = Buffer.from(buf.subarray(p, p + macSize));
    p += macSize;
    const originalId = buf.readUInt16BE(p);
    const error = buf.readUInt16BE(p + 2);
    const otherLen = buf.readUInt16BE(p + 4);
    p += 6;
    if (p + otherLen !== end) badRData(`TSIG rdata at offset ${offset} has the wrong length`, id);
    return { algorithm: alg.name, timeSigned, fudge, mac, originalId, error, otherData: Buffer.from(buf.subarray(p, end)) };
  },
};

/** Rdata kept as its octets: OPT (RFC 6891 §6.1.2) and types without a codec (RFC 3597). */
export const opaqueRData: RDataCodec<Buffer> = {
  encodingLength: (data) => data.length,
  encode: (data, buf, offset) => data.copy(buf, offset),
  decode: (buf, offset, length) => Buffer.from(buf.subarray(offset, offset + length)),
};

/** The codec of every type that has one. */
export const RDATA: { readonly [K in RDataType]: RDataCodec<RDataTypes[K]> } = {
  A: aCodec,
  AAAA: aaaaCodec,
  NS: nameCodec('NS'),
  CNAME: nameCodec('CNAME'),
  PTR: nameCodec('PTR'),
  TXT: txtCodec,
  SOA: soaCodec,
  SRV: srvCodec,
  KEY: keyCodec,
  SIG: sigCodec,
  TSIG: tsigCodec,
};

/** The rdata of one type on its own, e.g. KEY rdata for a key tag (RFC 4034 appendix B). */
export function encodeRData<K extends RDataType>(type: K, data: RDataTypes[K]): Buffer {
  const codec: RDataCodec<RDataTypes[K]> = RDATA[type];
  const out = Buffer.alloc(codec.encodingLength(data));
  codec.encode(data, out, 0);
  return out;
}

/** Decodes `rdata` (all of it) as type `type`; names in it cannot be compressed. Throws MalformedMessageError. */
export function decodeRData<K extends RDataType>(type: K, rdata: Buffer): RDataTypes[K] {
  const codec: RDataCodec<RDataTypes[K]> = RDATA[type];
  return codec.decode(rdata, 0, rdata.length);
}
