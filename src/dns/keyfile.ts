/**
 * BIND key files (the pair `dnssec-keygen` writes): `K<name>+<alg>+<tag>.key`
 * holds one KEY/DNSKEY RR in presentation format (RFC 1035 §5.1), and
 * `.private` holds BIND's "Private-key-format: v1.x" field list.
 * Text in, text out: reading and writing the files is src/keyfile-io.ts.
 */
import * as crypto from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { Algorithm, RRClass, algorithmName } from './constants.js';
import { InvalidKeyError, KeyFileError } from './errors.js';
import { publicKeyFromRData, publicKeyToRData } from './keys.js';
import type { KeyRData } from './types.js';
import { errorMessage } from '../errors.js';

export interface PublicKeyFile {
  /** Owner name, FQDN with trailing dot. */
  name: string;
  ttl?: number;
  class: number;
  /** The type written in the file; the rdata is the same for both (RFC 4034 §2 reuses KEY's layout). */
  type: 'KEY' | 'DNSKEY';
  rdata: KeyRData;
}

interface Token {
  text: string;
  line: number;
}

/**
 * Splits presentation-format text into RRs: `;` starts a comment and
 * parentheses join lines (RFC 1035 §5.1). Key files contain no quoted strings.
 */
function tokenizeRecords(text: string, file: string): Token[][] {
  const records: Token[][] = [];
  let current: Token[] = [];
  let depth = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i];
    const body = raw.split(';', 1)[0];
    if (depth === 0 && current.length === 0 && body.trim() !== '') {
      // §5.1: a line starting with blanks reuses the previous owner, which a one-RR file does not have.
      if (/^\s/.test(body)) throw new KeyFileError(file, 'record has no owner name', lineNo);
      if (body.startsWith('$')) throw new KeyFileError(file, `directive ${body.trim().split(/\s+/)[0]} not supported`, lineNo);
    }
    for (const m of body.matchAll(/[()]|[^\s()]+/g)) {
      if (m[0] === '(') {
        depth++;
      } else if (m[0] === ')') {
        if (depth === 0) throw new KeyFileError(file, 'unbalanced ")"', lineNo);
        depth--;
      } else {
        current.push({ text: m[0], line: lineNo });
      }
    }
    if (depth === 0 && current.length > 0) {
      records.push(current);
      current = [];
    }
  }
  if (depth !== 0) throw new KeyFileError(file, 'unbalanced "(" at end of file', lines.length);
  return records;
}

const TTL_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** RFC 2181 §8: a TTL is an unsigned 31-bit number. */
const MAX_TTL = 0x7fffffff;

/**
 * A TTL as BIND reads it: plain seconds or units such as `1h30m`.
 * undefined if the token is not a TTL at all; throws if it is one but too large.
 */
function parseTtl(tok: Token, file: string): number | undefined {
  const text = tok.text;
  let total: number;
  if (/^\d+$/.test(text)) {
    total = Number(text);
  } else if (/^(\d+[smhdw])+$/i.test(text)) {
    total = 0;
    for (const m of text.toLowerCase().matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * TTL_UNITS[m[2]];
  } else {
    return undefined;
  }
  if (total > MAX_TTL) throw new KeyFileError(file, `TTL ${text} is larger than ${MAX_TTL}`, tok.line);
  return total;
}

function parseClass(text: string): number | undefined {
  const upper = text.toUpperCase();
  if (upper === 'IN' || upper === 'CH' || upper === 'HS') return RRClass[upper];
  const generic = /^CLASS(\d+)$/.exec(upper); // RFC 3597 §5
  return generic ? Number(generic[1]) : undefined;
}

function parseUint(tok: Token | undefined, max: number, what: string, file: string, line: number): number {
  if (tok === undefined) throw new KeyFileError(file, `missing ${what}`, line);
  if (!/^\d+$/.test(tok.text) || Number(tok.text) > max) {
    throw new KeyFileError(file, `bad ${what} "${tok.text}"`, tok.line);
  }
  return Number(tok.text);
}

function parseAlgorithmField(tok: Token | undefined, file: string, line: number): number {
  // BIND also prints algorithm mnemonics in presentation format (RFC 4034 §2.2).
  const upper = tok?.text.toUpperCase();
  if (upper !== undefined && Object.hasOwn(Algorithm, upper)) return (Algorithm as Record<string, number>)[upper];
  return parseUint(tok, 255, 'algorithm', file, line);
}

function decodeBase64(text: string, file: string, line: number, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new KeyFileError(file, `${what} is not valid base64`, line);
  }
  return Buffer.from(text, 'base64');
}

/** Presentation names are absolute here: a name without a trailing dot is taken relative to the root. */
function absoluteName(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/** Reads the one KEY (or DNSKEY) record of a BIND `.key` file. */
export function parsePublicKeyFile(text: string, file: string): PublicKeyFile {
  const records = tokenizeRecords(text, file);
  if (records.length === 0) throw new KeyFileError(file, 'no KEY record in file');
  if (records.length > 1) throw new KeyFileError(file, 'more than one record in file', records[1][0].line);
  const tokens = records[0];
  const line = tokens[0].line;
  const name = absoluteName(tokens[0].text);
  let i = 1;
  let ttl: number | undefined;
  let cls: number | undefined;
  // §5.1: TTL and class are both optional and may come in either order.
  for (let n = 0; n < 2 && i < tokens.length; n++) {
    const tok = tokens[i];
    const asTtl = ttl === undefined ? parseTtl(tok, file) : undefined;
    const asClass = cls === undefined ? parseClass(tok.text) : undefined;
    if (asTtl !== undefined) ttl = asTtl;
    else if (asClass !== undefined) cls = asClass;
    else break;
    i++;
  }
  const typeTok = tokens[i++];
  const type = typeTok?.text.toUpperCase();
  if (type !== 'KEY' && type !== 'DNSKEY') {
    throw new KeyFileError(file, `expected KEY or DNSKEY, got "${typeTok?.text ?? 'end of record'}"`, typeTok?.line ?? line);
  }
  const flags = parseUint(tokens[i++], 0xffff, 'flags', file, line);
  const protocol = parseUint(tokens[i++], 255, 'protocol', file, line);
  const algorithm = parseAlgorithmField(tokens[i++], file, line);
  const rest = tokens.slice(i);
  if (rest.length === 0) throw new KeyFileError(file, 'missing public key', line);
  const publicKey = decodeBase64(rest.map((t) => t.text).join(''), file, rest[0].line, 'public key');
  const result: PublicKeyFile = {
    name,
    class: cls ?? RRClass.IN,
    type,
    rdata: { flags, protocol, algorithm, publicKey },
  };
  if (ttl !== undefined) result.ttl = ttl;
  return result;
}

export interface PrivateKeyFile {
  algorithm: number;
  privateKey: KeyObject;
}

const RSA_FIELDS = [
  ['Modulus', 'n'],
  ['PublicExponent', 'e'],
  ['PrivateExponent', 'd'],
  ['Prime1', 'p'],
  ['Prime2', 'q'],
  ['Exponent1', 'dp'],
  ['Exponent2', 'dq'],
  ['Coefficient', 'qi'],
] as const;

/**
 * RFC 8410 §7 PKCS#8 prefixes for a bare EdDSA private key: node has no
 * raw import, and JWK would need the public half, which we do not have yet.
 */
const EDDSA_PKCS8_PREFIX: Readonly<Record<number, Buffer>> = {
  [Algorithm.ED25519]: Buffer.from('302e020100300506032b657004220420', 'hex'),
  [Algorithm.ED448]: Buffer.from('3047020100300506032b6571043b0439', 'hex'),
};

const EC_SIZES: Readonly<Record<number, { curve: string; crv: string; size: number }>> = {
  [Algorithm.ECDSAP256SHA256]: { curve: 'prime256v1', crv: 'P-256', size: 32 },
  [Algorithm.ECDSAP384SHA384]: { curve: 'secp384r1', crv: 'P-384', size: 48 },
};

const EDDSA_SIZES: Readonly<Record<number, number>> = { [Algorithm.ED25519]: 32, [Algorithm.ED448]: 57 };

/** Reads a BIND `.private` file (formats v1.2 and v1.3). */
export function parsePrivateKeyFile(text: string, file: string): PrivateKeyFile {
  const fields = new Map<string, { value: string; line: number }>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '' || raw.startsWith(';')) continue;
    const colon = raw.indexOf(':');
    if (colon <= 0) throw new KeyFileError(file, 'expected "Field: value"', i + 1);
    const key = raw.slice(0, colon);
    if (fields.has(key)) throw new KeyFileError(file, `duplicate field ${key}`, i + 1);
    fields.set(key, { value: raw.slice(colon + 1).trim(), line: i + 1 });
  }
  const need = (key: string): { value: string; line: number } => {
    const f = fields.get(key);
    if (f === undefined) throw new KeyFileError(file, `missing field ${key}`);
    return f;
  };
  const format = need('Private-key-format');
  if (!/^v1\.[23]$/.test(format.value)) {
    throw new KeyFileError(file, `unsupported Private-key-format ${format.value}`, format.line);
  }
  const algField = need('Algorithm');
  const algMatch = /^(\d+)(\s+\(.*\))?$/.exec(algField.value);
  if (!algMatch) throw new KeyFileError(file, `bad Algorithm "${algField.value}"`, algField.line);
  const algorithm = Number(algMatch[1]);
  const bytes = (key: string): { buf: Buffer; line: number } => {
    const f = need(key);
    return { buf: decodeBase64(f.value, file, f.line, key), line: f.line };
  };

  const load = (line: number, make: () => KeyObject): PrivateKeyFile => {
    try {
      return { algorithm, privateKey: make() };
    } catch (err) {
      throw new KeyFileError(file, `private key rejected: ${errorMessage(err)}`, line);
    }
  };

  const ec = EC_SIZES[algorithm];
  if (ec !== undefined) {
    const raw = bytes('PrivateKey');
    // BIND writes the scalar as a big-endian number without leading zero bytes (one key in 256 is shorter).
    if (raw.buf.length === 0 || raw.buf.length > ec.size) {
      throw new KeyFileError(file, `${ec.crv} private key must be 1 to ${ec.size} bytes, got ${raw.buf.length}`, raw.line);
    }
    const d = { line: raw.line, buf: Buffer.concat([Buffer.alloc(ec.size - raw.buf.length), raw.buf]) };
    return load(d.line, () => {
      // The file holds only the scalar d; JWK import needs the public point too.
      const ecdh = crypto.createECDH(ec.curve);
      ecdh.setPrivateKey(d.buf);
      const point = ecdh.getPublicKey(); // 0x04 || x || y (SEC 1 §2.3.3)
      return crypto.createPrivateKey({
        format: 'jwk',
        key: {
          kty: 'EC',
          crv: ec.crv,
          d: d.buf.toString('base64url'),
          x: point.subarray(1, 1 + ec.size).toString('base64url'),
          y: point.subarray(1 + ec.size).toString('base64url'),
        },
      });
    });
  }
  const edSize = EDDSA_SIZES[algorithm];
  if (edSize !== undefined) {
    const seed = bytes('PrivateKey');
    if (seed.buf.length !== edSize) {
      throw new KeyFileError(file, `private key must be ${edSize} bytes, got ${seed.buf.length}`, seed.line);
    }
    return load(seed.line, () =>
      crypto.createPrivateKey({
        format: 'der',
        type: 'pkcs8',
        key: Buffer.concat([EDDSA_PKCS8_PREFIX[algorithm], seed.buf]),
      }),
    );
  }
  if (algorithm === Algorithm.RSASHA256 || algorithm === Algorithm.RSASHA512) {
    const jwk: crypto.JsonWebKey = { kty: 'RSA' };
    for (const [field, member] of RSA_FIELDS) jwk[member] = bytes(field).buf.toString('base64url');
    return load(need('Modulus').line, () => crypto.createPrivateKey({ format: 'jwk', key: jwk }));
  }
  throw new KeyFileError(file, `unsupported algorithm ${algorithm}`, algField.line);
}

/** Throws InvalidKeyError unless `privateKey` is the private half of `rdata`. */
export function checkKeyPair(rdata: KeyRData, privateKey: KeyObject): void {
  const derived = publicKeyToRData(privateKey, rdata.algorithm, rdata.flags, rdata.protocol);
  if (!derived.publicKey.equals(rdata.publicKey)) {
    throw new InvalidKeyError('private key does not match the public key');
  }
}

export interface KeyPairFiles {
  publicFile: PublicKeyFile;
  algorithm: number;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/**
 * Parses and cross-checks the texts of a `.key`/`.private` pair; `publicFile`
 * and `privateFile` name them in errors.
 */
export function parseKeyPair(publicText: string, publicFile: string, privateText: string, privateFile: string): KeyPairFiles {
  const pub = parsePublicKeyFile(publicText, publicFile);
  const priv = parsePrivateKeyFile(privateText, privateFile);
  if (priv.algorithm !== pub.rdata.algorithm) {
    throw new InvalidKeyError(
      `${privateFile} is algorithm ${priv.algorithm} but ${publicFile} is algorithm ${pub.rdata.algorithm}`,
    );
  }
  const publicKey = publicKeyFromRData(pub.rdata);
  checkKeyPair(pub.rdata, priv.privateKey);
  return { publicFile: pub, algorithm: priv.algorithm, privateKey: priv.privateKey, publicKey };
}

/** BIND's file base name: `K<name>+<alg, 3 digits>+<tag, 5 digits>`. */
export function bindKeyBaseName(name: string, algorithm: number, tag: number): string {
  return `K${absoluteName(name)}+${String(algorithm).padStart(3, '0')}+${String(tag).padStart(5, '0')}`;
}

/** dnssec-keygen splits base64 into 56-character words on one line. */
function base64Words(b: Buffer): string {
  return (b.toString('base64').match(/.{1,56}/g) ?? []).join(' ');
}

export interface PublicKeyFileOptions {
  ttl?: number;
  type?: 'KEY' | 'DNSKEY';
}

/** One RR, laid out as `dnssec-keygen -T KEY` writes it. */
export function formatPublicKeyFile(name: string, rdata: KeyRData, options: PublicKeyFileOptions = {}): string {
  const ttl = options.ttl === undefined ? '' : `${options.ttl} `;
  const { flags, protocol, algorithm, publicKey } = rdata;
  return `${absoluteName(name)} ${ttl}IN ${options.type ?? 'KEY'} ${flags} ${protocol} ${algorithm} ${base64Words(publicKey)}\n`;
}

/** YYYYMMDDHHMMSS in UTC, BIND's timestamp field format. */
function bindTimestamp(now: Date): string {
  return now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** JWK members are base64url; BIND fields are standard base64, EC scalars at full width. */
/** A JWK field in base64; a number as BIND writes it: big-endian, without leading zero bytes (at least one byte). */
function jwkField(value: string | undefined, isNumber = true): string {
  if (value === undefined) throw new InvalidKeyError('private key export lacks a field');
  const b = Buffer.from(value, 'base64url');
  let start = 0;
  while (isNumber && start < b.length - 1 && b[start] === 0) start++;
  return b.subarray(start).toString('base64');
}

/** A `.private` file in BIND 9.18's v1.3 layout. */
export function formatPrivateKeyFile(algorithm: number, privateKey: KeyObject, now: Date): string {
  // Validates the key kind against the algorithm (throws otherwise).
  publicKeyToRData(privateKey, algorithm);
  if (privateKey.type !== 'private') throw new InvalidKeyError('formatPrivateKeyFile needs a private key');
  const jwk = privateKey.export({ format: 'jwk' });
  const lines = ['Private-key-format: v1.3', `Algorithm: ${algorithm} (${algorithmName(algorithm)})`];
  if (algorithm === Algorithm.RSASHA256 || algorithm === Algorithm.RSASHA512) {
    for (const [field, member] of RSA_FIELDS) lines.push(`${field}: ${jwkField(jwk[member])}`);
  } else {
    // An EdDSA key is its fixed-length seed, written as it is (RFC 8080 section 3); an ECDSA scalar is a number.
    lines.push(`PrivateKey: ${jwkField(jwk.d, EDDSA_SIZES[algorithm] === undefined)}`);
  }
  const stamp = bindTimestamp(now);
  lines.push(`Created: ${stamp}`, `Publish: ${stamp}`, `Activate: ${stamp}`);
  return `${lines.join('\n')}\n`;
}

export interface KeyPairOptions extends PublicKeyFileOptions {
  /** Written as Created/Publish/Activate. */
  now: Date;
}

/** The two texts of a key pair, after checking that `privateKey` is the private half of `rdata`. */
export function formatKeyPair(
  name: string,
  rdata: KeyRData,
  privateKey: KeyObject,
  options: KeyPairOptions,
): { publicText: string; privateText: string } {
  checkKeyPair(rdata, privateKey);
  return {
    publicText: formatPublicKeyFile(name, rdata, options),
    privateText: formatPrivateKeyFile(rdata.algorithm, privateKey, options.now),
  };
}
