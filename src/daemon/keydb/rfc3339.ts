/**
 * RFC 3339 times as Go's encoding/json writes a time.Time (RFC3339Nano):
 * the original daemon's key database stores expiries this way.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Milliseconds since the epoch (fraction truncated to ms), or undefined if `s` is not RFC 3339. */
export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339.exec(s);
  if (m === null) return undefined;
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return undefined;
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  // Date.UTC maps years 0-99 to 19xx; setUTCFullYear does not (Go's zero time is year 1).
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, sec, ms);
  if (date.getUTCDate() !== d) return undefined; // e.g. February 30th
  let offset = 0;
  if (m[8] === undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offset = (m[9] === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  return date.getTime() - offset;
}

const MIN_TIME = -62135596800000; // 0001-01-01T00:00:00Z, Go's zero time
const MAX_TIME = 253402300799999; // 9999-12-31T23:59:59.999Z, the last time RFC 3339 can write

/** RFC 3339 in UTC with millisecond precision, which Go's time.Time unmarshals. */
export function formatRfc3339(ms: number): string {
  const clamped = Math.min(Math.max(ms, MIN_TIME), MAX_TIME);
  return new Date(clamped).toISOString();
}
