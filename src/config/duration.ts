/**
 * Durations written the way Go's `time.ParseDuration` reads them, because
 * the original's configuration files are full of them (`4320h`, `90s`,
 * `1h30m`). Values are returned in milliseconds (fractional below 1 ms).
 *
 * YAML note: with the original (viper + mapstructure, weakly typed), a bare
 * integer such as `timeout: 10` silently became 10 *nanoseconds*, which is
 * never what an operator meant and which the original then treated as
 * "unset" or as zero seconds. We refuse bare numbers with a message asking
 * for a unit; see `parseDurationValue`.
 */
import { DurationError } from './errors.js';

const NS_PER_MS = 1_000_000n;
const MAX_NS = (1n << 63n) - 1n; // Go's time.Duration is an int64 of nanoseconds

/** Nanoseconds per unit, with both micro signs Go accepts. */
const UNIT_NS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n], // MICRO SIGN
  ['\u03bcs', 1_000n], // GREEK SMALL LETTER MU
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** Parse to an exact count of nanoseconds (fractions of a nanosecond are truncated, as Go does). */
export function parseDurationNs(s: string): bigint {
  const bad = (reason: 'syntax' | 'unit' | 'overflow', why: string): DurationError =>
    new DurationError(reason, s, `invalid duration ${JSON.stringify(s)}: ${why}`);
  let i = 0;
  let negative = false;
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-';
    i = 1;
  }
  if (s.slice(i) === '0') return 0n;
  if (i === s.length) throw bad('syntax', 'empty');
  let total = 0n;
  while (i < s.length) {
    const c = s[i];
    if (!isDigit(c) && c !== '.') throw bad('syntax', `expected a number at offset ${i}`);
    const intStart = i;
    while (isDigit(s[i])) i++;
    const intPart = s.slice(intStart, i);
    let fracPart = '';
    if (s[i] === '.') {
      i++;
      const fracStart = i;
      while (isDigit(s[i])) i++;
      fracPart = s.slice(fracStart, i);
    }
    if (intPart === '' && fracPart === '') throw bad('syntax', 'a number needs at least one digit');
    const unitStart = i;
    while (i < s.length && s[i] !== '.' && !isDigit(s[i])) i++;
    const unit = s.slice(unitStart, i);
    if (unit === '') throw bad('unit', `missing unit after ${intPart}${fracPart === '' ? '' : '.' + fracPart}`);
    const scale = UNIT_NS.get(unit);
    if (scale === undefined) {
      throw bad('unit', `unknown unit ${JSON.stringify(unit)} (use ns, us, ms, s, m or h)`);
    }
    let value = BigInt(intPart === '' ? '0' : intPart) * scale;
    if (fracPart !== '') {
      const denom = 10n ** BigInt(fracPart.length);
      value += (BigInt(fracPart) * scale) / denom;
    }
    total += value;
    if (total > MAX_NS + (negative ? 1n : 0n)) throw bad('overflow', 'out of range');
  }
  return negative ? -total : total;
}

/** Go `time.ParseDuration` syntax → milliseconds. Throws DurationError. */
export function parseDuration(s: string): number {
  const ns = parseDurationNs(s);
  const sign = ns < 0n ? -1 : 1;
  const abs = ns < 0n ? -ns : ns;
  const ms = Number(abs / NS_PER_MS) + Number(abs % NS_PER_MS) / 1e6;
  return ms === 0 ? 0 : sign * ms;
}

/**
 * A duration as it arrives from YAML. Strings are parsed; a bare number is
 * refused (Go would read it as nanoseconds, see the module comment).
 */
export function parseDurationValue(v: string | number): number {
  if (typeof v === 'number') {
    throw new DurationError(
      'bare-number',
      String(v),
      `a bare number is not a duration; write a unit, e.g. "${v}s" or "${v}h"`,
    );
  }
  return parseDuration(v);
}

function fraction(n: bigint, digits: number): string {
  // Digits after the point, trailing zeros removed (Go's fmtFrac).
  const s = n.toString().padStart(digits, '0').replace(/0+$/, '');
  return s === '' ? '' : `.${s}`;
}

/** Milliseconds → Go's `Duration.String()` form: `1h30m0s`, `1.5s`, `300ms`, `0s`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`not a finite duration: ${ms}`);
  let ns = BigInt(Math.round(ms * 1e6));
  if (ns === 0n) return '0s';
  const sign = ns < 0n ? '-' : '';
  if (ns < 0n) ns = -ns;
  if (ns < 1_000n) return `${sign}${ns}ns`;
  if (ns < 1_000_000n) return `${sign}${ns / 1_000n}${fraction(ns % 1_000n, 3)}µs`;
  if (ns < 1_000_000_000n) return `${sign}${ns / 1_000_000n}${fraction(ns % 1_000_000n, 6)}ms`;
  const secs = ns / 1_000_000_000n;
  const secStr = `${secs % 60n}${fraction(ns % 1_000_000_000n, 9)}s`;
  const mins = secs / 60n;
  if (mins === 0n) return `${sign}${secStr}`;
  const hours = mins / 60n;
  if (hours === 0n) return `${sign}${mins}m${secStr}`;
  return `${sign}${hours}h${mins % 60n}m${secStr}`;
}
