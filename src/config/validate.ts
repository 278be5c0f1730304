/**
 * Reading an untyped YAML tree into typed values, with every failure naming
 * the file, the key path and the bad value. The schemas (daemon.ts,
 * client.ts, upstreams/*.ts) are built from these helpers only.
 *
 * Compatibility with the original (viper + mapstructure, weakly typed,
 * YAML 1.1): keys are matched case-insensitively; booleans may also be
 * written yes/no/on/off/true/false as strings; ports may be numeric
 * strings; a list may be written as one whitespace-separated string.
 */
import { loadAll } from 'js-yaml';
import * as path from 'node:path';
import { Cidr, normalizeIp } from '../net/address.js';
import { DurationError, ConfigError, type ConfigErrorReason } from './errors.js';
import { formatDuration, parseDurationValue } from './duration.js';
import { errorMessage } from '../errors.js';

export { Cidr } from '../net/address.js';

export type PathSegment = string | number;
export type KeyPath = readonly PathSegment[];

/** `zones."dynamic.example.org".upstreams[0].tsig-secret` */
export function formatKeyPath(p: KeyPath): string {
  let out = '';
  for (const seg of p) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += out === '' ? JSON.stringify(seg) : `.${JSON.stringify(seg)}`;
  }
  return out;
}

/** Shared state of one parse: which file, where relative paths start, the warnings so far. */
export interface ParseContext {
  readonly file: string;
  /** Directory that relative paths in the file are resolved against. */
  readonly baseDir: string;
  readonly warnings: string[];
}

export function newContext(file: string, baseDir?: string): ParseContext {
  return { file, baseDir: baseDir ?? path.dirname(path.resolve(file)), warnings: [] };
}

export function fail(
  ctx: ParseContext,
  p: KeyPath,
  reason: ConfigErrorReason,
  problem: string,
  value?: unknown,
  cause?: unknown,
): never {
  throw new ConfigError(reason, ctx.file, formatKeyPath(p), problem, value, cause === undefined ? undefined : { cause });
}

export function warn(ctx: ParseContext, p: KeyPath, problem: string): void {
  const where = p.length === 0 ? ctx.file : `${ctx.file}: ${formatKeyPath(p)}`;
  ctx.warnings.push(`${where}: ${problem}`);
}

/**
 * Parse YAML (JSON is YAML) with the safe core schema. An empty file or one
 * holding only comments is an empty mapping: the original's example client
 * configuration is exactly that.
 */
export function parseYamlDocument(ctx: ParseContext, text: string): unknown {
  let docs: unknown[];
  try {
    docs = loadAll(text, { filename: ctx.file });
  } catch (err) {
    const msg = errorMessage(err).split('\n')[0] ?? '';
    fail(ctx, [], 'syntax', `not valid YAML: ${msg}`, undefined, err);
  }
  if (docs.length > 1) fail(ctx, [], 'syntax', `expected one YAML document, found ${docs.length}`);
  return docs.length === 0 ? null : docs[0];
}

function isPlainMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Date) return 'a timestamp';
  if (typeof v === 'object') return 'a mapping';
  return `a ${typeof v}`;
}

const TRUE_WORDS = new Set(['true', 'yes', 'on', 'y', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', 'n', '0']);

/** A DNS label as a host or zone label: 1–63 octets of letters, digits, '-' or '_'. */
const LABEL_RE = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Lower-case FQDN with one trailing dot; null if it is not a usable domain name. */
export function normalizeFqdn(name: string): string | null {
  let n = name.trim().toLowerCase();
  if (n === '.') return '.';
  if (n.endsWith('.')) n = n.slice(0, -1);
  if (n === '' || n.length > 253) return null;
  for (const label of n.split('.')) {
    if (!LABEL_RE.test(label)) return null;
  }
  return `${n}.`;
}

/**
 * One mapping of the tree. Keys are folded to lower case; each schema reads
 * the keys it knows, then `finish()` warns about the rest.
 */
export class MapReader {
  readonly #entries = new Map<string, { key: string; value: unknown }>();
  readonly #read = new Set<string>();

  /** A null/absent mapping (`zones:` with nothing under it) reads as empty. */
  constructor(
    readonly ctx: ParseContext,
    readonly path: KeyPath,
    raw: unknown,
  ) {
    if (raw === null || raw === undefined) return;
    if (!isPlainMapping(raw)) fail(ctx, path, 'type', `expected a mapping, found ${typeName(raw)}`, raw);
    for (const key of Object.keys(raw)) {
      const folded = key.toLowerCase();
      if (this.#entries.has(folded)) {
        fail(ctx, [...path, key], 'duplicate', 'key given twice (keys are case-insensitive)');
      }
      this.#entries.set(folded, { key, value: raw[key] });
    }
  }

  /** Keys as written in the file, in file order. */
  keys(): string[] {
    return [...this.#entries.values()].map((e) => e.key);
  }

  /** Path of a key, for messages. */
  at(key: string): KeyPath {
    return [...this.path, this.#entries.get(key)?.key ?? key];
  }

  /** The raw value; null counts as absent, as the original treated an empty value as unset. */
  raw(key: string): unknown {
    this.#read.add(key);
    const v = this.#entries.get(key)?.value;
    return v === null ? undefined : v;
  }

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  /** Throw "missing" unless a value was found. */
  require<T>(key: string, value: T | undefined): T {
    if (value === undefined) fail(this.ctx, this.at(key), 'missing', 'required key is missing');
    return value;
  }

  /** Warn about every key no schema function asked for. */
  finish(what = 'key'): void {
    for (const [folded, e] of this.#entries) {
      if (!this.#read.has(folded)) warn(this.ctx, [...this.path, e.key], `unknown ${what}, ignored`);
    }
  }

  string(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    // Weak typing, as mapstructure did: a number where a string belongs is its decimal text.
    if (typeof v === 'number' && Number.isFinite(v)) return String(v);
    if (typeof v !== 'string') fail(this.ctx, this.at(key), 'type', `expected a string, found ${typeName(v)}`, v);
    return v;
  }

  nonEmptyString(key: string): string | undefined {
    const v = this.string(key);
    if (v !== undefined && v.trim() === '') fail(this.ctx, this.at(key), 'invalid', 'must not be empty', v);
    return v?.trim();
  }

  bool(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return toBool(this.ctx, this.at(key), v);
  }

  /** A TCP/UDP port, 1–65535. */
  port(key: string): number | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return toPort(this.ctx, this.at(key), v);
  }

  /** A whole number within [min, max]. */
  integer(key: string, min: number, max: number): number | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    let n: number;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string' && /^\s*-?[0-9]+\s*$/.test(v)) n = Number(v);
    else return fail(this.ctx, this.at(key), 'type', 'expected a whole number', v);
    if (!Number.isInteger(n) || n < min || n > max) fail(this.ctx, this.at(key), 'range', `must be a whole number from ${min} to ${max}`, v);
    return n;
  }

  /**
   * A duration in ms, at most `limit` (what its use can hold); zero and
   * negative values are refused (the original treated zero as unset).
   */
  duration(key: string, limit: DurationLimit): number | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return toDuration(this.ctx, this.at(key), v, limit);
  }

  /** A file name, resolved against the config file's directory. */
  filePath(key: string): string | undefined {
    const v = this.nonEmptyString(key);
    return v === undefined ? undefined : path.resolve(this.ctx.baseDir, v);
  }

  /** A domain name, normalised to a lower-case FQDN. */
  fqdn(key: string): string | undefined {
    const v = this.nonEmptyString(key);
    if (v === undefined) return undefined;
    return toFqdn(this.ctx, this.at(key), v);
  }

  stringList(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return toStringList(this.ctx, this.at(key), v);
  }

  fqdnList(key: string): string[] | undefined {
    const list = this.stringList(key);
    return list?.map((s, i) => toFqdn(this.ctx, [...this.at(key), i], s));
  }

  /** Single DNS labels (no dots), lower-cased. */
  labelList(key: string): string[] | undefined {
    const list = this.stringList(key);
    return list?.map((s, i) => {
      const l = s.toLowerCase();
      if (!LABEL_RE.test(l)) fail(this.ctx, [...this.at(key), i], 'name', 'not a single DNS label', s);
      return l;
    });
  }

  cidrList(key: string): Cidr[] | undefined {
    const list = this.stringList(key);
    return list?.map((s, i) => toCidr(this.ctx, [...this.at(key), i], s));
  }

  /** IP address literals, normalised. */
  addressList(key: string): string[] | undefined {
    const list = this.stringList(key);
    return list?.map((s, i) => toAddress(this.ctx, [...this.at(key), i], s));
  }

  /** One of a fixed set of words (case-insensitive), returned lower-case. */
  oneOf<T extends string>(key: string, allowed: readonly T[]): T | undefined {
    const v = this.nonEmptyString(key);
    if (v === undefined) return undefined;
    const l = v.toLowerCase();
    const hit = allowed.find((a) => a === l);
    if (hit === undefined) fail(this.ctx, this.at(key), 'invalid', `must be one of ${allowed.join(', ')}`, v);
    return hit;
  }

  /** A list of mappings (e.g. upstreams); each element gets its own reader. */
  mappingList(key: string): MapReader[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) fail(this.ctx, this.at(key), 'type', `expected a list, found ${typeName(v)}`, v);
    return v.map((item: unknown, i) => {
      const p = [...this.at(key), i];
      if (!isPlainMapping(item)) fail(this.ctx, p, 'type', `expected a mapping, found ${typeName(item)}`, item);
      return new MapReader(this.ctx, p, item);
    });
  }

  /** A nested mapping. */
  mapping(key: string): MapReader | undefined {
    const v = this.raw(key);
    return v === undefined ? undefined : new MapReader(this.ctx, this.at(key), v);
  }
}

export function toBool(ctx: ParseContext, p: KeyPath, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const l = v.trim().toLowerCase();
    if (TRUE_WORDS.has(l)) return true;
    if (FALSE_WORDS.has(l)) return false;
  }
  if (v === 0 || v === 1) return v === 1;
  return fail(ctx, p, 'type', 'expected true or false', v);
}

export function toPort(ctx: ParseContext, p: KeyPath, v: unknown): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\s*[0-9]+\s*$/.test(v)) n = Number(v);
  else return fail(ctx, p, 'type', 'expected a port number', v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(ctx, p, 'range', 'port must be an integer from 1 to 65535', v);
  return n;
}

/** The largest value a duration key may take, and why. */
export interface DurationLimit {
  readonly ms: number;
  readonly why: string;
}

/** A duration that becomes a Node.js timer: setTimeout fires a longer delay after 1 ms. */
export const TIMER_LIMIT: DurationLimit = Object.freeze({ ms: 2 ** 31 - 1, why: 'the longest timer Node.js can set' });

/** A duration that becomes a DNS TTL: RFC 2181 §8 caps TTLs at 2^31 − 1 seconds. */
export const TTL_LIMIT: DurationLimit = Object.freeze({ ms: (2 ** 31 - 1) * 1000, why: 'the largest DNS TTL, RFC 2181 section 8' });

export function toDuration(ctx: ParseContext, p: KeyPath, v: unknown, limit: DurationLimit): number {
  if (typeof v !== 'string' && typeof v !== 'number') {
    return fail(ctx, p, 'type', 'expected a duration such as "90s" or "1h30m"', v);
  }
  let ms: number;
  try {
    ms = parseDurationValue(typeof v === 'string' ? v.trim() : v);
  } catch (err) {
    if (err instanceof DurationError) {
      const problem =
        err.reason === 'bare-number'
          ? `a bare number is not a duration; add a unit, e.g. "${String(v)}s"`
          : 'not a duration; write it like "90s", "1h30m" or "4320h"';
      return fail(ctx, p, 'duration', problem, v, err);
    }
    throw err;
  }
  if (ms <= 0) fail(ctx, p, 'range', 'duration must be greater than zero', v);
  if (ms > limit.ms) fail(ctx, p, 'range', `duration must be at most ${formatDuration(limit.ms)} (${limit.why})`, v);
  return ms;
}

export function toStringList(ctx: ParseContext, p: KeyPath, v: unknown): string[] {
  // The original's viper turned a scalar into a list by splitting on whitespace.
  if (typeof v === 'string') return v.split(/\s+/).filter((s) => s !== '');
  if (!Array.isArray(v)) return fail(ctx, p, 'type', `expected a list, found ${typeName(v)}`, v);
  return v.map((item: unknown, i) => {
    if (typeof item === 'number' && Number.isFinite(item)) return String(item);
    if (typeof item !== 'string' || item.trim() === '') {
      return fail(ctx, [...p, i], 'type', 'expected a non-empty string', item);
    }
    return item.trim();
  });
}

export function toFqdn(ctx: ParseContext, p: KeyPath, s: string): string {
  const n = normalizeFqdn(s);
  if (n === null) fail(ctx, p, 'name', 'not a valid domain name', s);
  return n;
}

export function toCidr(ctx: ParseContext, p: KeyPath, s: string): Cidr {
  const c = Cidr.parse(s.trim());
  if (c === null) fail(ctx, p, 'cidr', 'not an address prefix such as 10.0.0.0/8 or fd00::/8', s);
  return c;
}

export function toAddress(ctx: ParseContext, p: KeyPath, s: string): string {
  const a = normalizeIp(s.trim());
  if (a === null) fail(ctx, p, 'address', 'not an IPv4 or IPv6 address', s);
  return a;
}

/** Strict base64 (RFC 4648 section 4, padding required), non-empty. */
export function isBase64(s: string): boolean {
  return s.length > 0 && s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s) && Buffer.from(s, 'base64').length > 0;
}

/** Freeze a configuration tree: plain objects, arrays and Cidr values. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object) as unknown[]) deepFreeze(v);
  }
  return value;
}

/** Remove duplicates, keeping first occurrences in order. */
export function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}
