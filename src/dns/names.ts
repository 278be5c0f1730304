/**
 * Domain names: wire form (RFC 1035 §3.1, §4.1.4 compression) ⇄ presentation
 * form (FQDN with trailing dot, RFC 4343 escapes).
 *
 * Decoding is byte-exact: a label is never read as UTF-8 and a dot inside
 * a label is escaped, so two different wire names never map to one string.
 * Owner names carry policy (who may update what). Lengths can be had
 * without encoding (nameLength), and names are written in place, in full
 * (writeName) or compressed against the names before them (NameCompressor).
 */
import { InvalidNameError, MalformedMessageError } from './errors.js';

const MAX_LABEL = 63;
const MAX_NAME_WIRE = 255;

export interface DecodedName {
  name: string;
  /** Offset just past the name where it was found (not where a pointer led). */
  end: number;
}

function needsEscape(b: number): boolean {
  return b < 0x21 || b > 0x7e || b === 0x2e || b === 0x5c || b === 0x22 || b === 0x3b || b === 0x28 || b === 0x29 || b === 0x40 || b === 0x24;
}

function escapeLabel(buf: Buffer, start: number, end: number): string {
  // Most labels need no escape: one slice instead of a string built per byte.
  let plain = true;
  for (let i = start; i < end && plain; i++) plain = !needsEscape(buf[i]);
  if (plain) return buf.toString('latin1', start, end);
  let out = '';
  for (let i = start; i < end; i++) {
    const b = buf[i];
    if (b === 0x2e || b === 0x5c || b === 0x22 || b === 0x3b || b === 0x28 || b === 0x29 || b === 0x40 || b === 0x24) {
      out += '\\' + String.fromCharCode(b);
    } else if (b < 0x21 || b > 0x7e) {
      out += '\\' + b.toString().padStart(3, '0');
    } else {
      out += String.fromCharCode(b);
    }
  }
  return out;
}

/**
 * Decodes the name at `offset`. Compression pointers must point strictly
 * backwards, each jump before the previous one, which makes loops impossible
 * and bounds the work by the message size.
 */
export function decodeName(buf: Buffer, offset: number, id?: number): DecodedName {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  let wireLength = 1;
  let lowestJump = offset;
  for (;;) {
    if (pos >= buf.length) {
      throw new MalformedMessageError('truncated-rr', `name at offset ${offset} runs past the end of the message`, id);
    }
    const len = buf[pos];
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) {
        throw new MalformedMessageError('truncated-rr', `compression pointer at offset ${pos} is cut off`, id);
      }
      const target = buf.readUInt16BE(pos) & 0x3fff;
      if (end < 0) end = pos + 2;
      // A pointer to itself is a one-step loop, reported as such; beyond it, forward.
      if (target > pos) {
        throw new MalformedMessageError('forward-pointer', `compression pointer at offset ${pos} points forward to ${target}`, id);
      }
      if (target >= lowestJump) {
        throw new MalformedMessageError('pointer-loop', `compression pointer at offset ${pos} loops back to ${target}`, id);
      }
      lowestJump = target;
      pos = target;
      continue;
    }
    if (kind !== 0) {
      // 0x40 and 0x80 prefixes: a length byte of 64..191, i.e. a label over 63 octets (RFC 6891 §5 retired extended labels).
      throw new MalformedMessageError('label-too-long', `label length byte 0x${len.toString(16)} at offset ${pos}`, id);
    }
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    if (pos + 1 + len > buf.length) {
      throw new MalformedMessageError('truncated-rr', `label at offset ${pos} runs past the end of the message`, id);
    }
    wireLength += len + 1;
    if (wireLength > MAX_NAME_WIRE) {
      throw new MalformedMessageError('name-too-long', `name at offset ${offset} is longer than 255 octets`, id);
    }
    labels.push(escapeLabel(buf, pos + 1, pos + 1 + len));
    pos += len + 1;
  }
  return { name: labels.length === 0 ? '.' : labels.join('.') + '.', end };
}

/**
 * True when the last character is a label separator, not an escaped dot:
 * `a\\.` (label `a\`) ends in one, `a\.` (label `a.`) does not.
 */
function endsWithSeparator(name: string): boolean {
  if (!name.endsWith('.')) return false;
  let backslashes = 0;
  for (let i = name.length - 2; i >= 0 && name.charCodeAt(i) === 0x5c; i--) backslashes++;
  return backslashes % 2 === 0;
}

/** Splits a presentation name into raw label bytes, honouring `\.` and `\DDD` escapes. */
export function nameToLabels(name: string): Buffer[] {
  if (name === '.' || name === '') return [];
  const labels: Buffer[] = [];
  let current: number[] = [];
  let i = 0;
  const text = endsWithSeparator(name) ? name : name + '.';
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5c) {
      const next = text.slice(i + 1, i + 4);
      if (/^[0-9]{3}$/.test(next)) {
        const value = Number(next);
        if (value > 255) throw new InvalidNameError(name, `escape \\${next} is not a byte`);
        current.push(value);
        i += 4;
      } else if (i + 1 < text.length) {
        current.push(text.charCodeAt(i + 1));
        i += 2;
      } else {
        throw new InvalidNameError(name, 'dangling backslash');
      }
      continue;
    }
    if (ch === 0x2e) {
      if (current.length === 0) throw new InvalidNameError(name, 'empty label');
      if (current.length > MAX_LABEL) throw new InvalidNameError(name, 'label longer than 63 octets');
      labels.push(Buffer.from(current));
      current = [];
      i += 1;
      continue;
    }
    if (ch > 0x7f) {
      // Whole code point, so a character outside the BMP is not split into lone surrogates.
      const char = String.fromCodePoint(text.codePointAt(i) as number);
      for (const b of Buffer.from(char, 'utf8')) current.push(b);
      i += char.length;
      continue;
    }
    current.push(ch);
    i += 1;
  }
  // Only a trailing lone backslash can leave bytes here: it escaped the dot added above.
  if (current.length > 0) throw new InvalidNameError(name, 'dangling backslash');
  return labels;
}

/** Labels of 1–63 hostname-ish characters, trailing dot optional; lower-casing these needs no escaping. */
const PLAIN_NAME = /^(?:[A-Za-z0-9_*-]{1,63}\.)*[A-Za-z0-9_*-]{1,63}\.?$/;

/** Wire octets of a name made of `labels`; InvalidNameError beyond 255 (RFC 1035 §3.1). */
function wireSize(name: string, labels: readonly Buffer[]): number {
  let size = 1;
  for (const l of labels) size += l.length + 1;
  if (size > MAX_NAME_WIRE) throw new InvalidNameError(name, 'longer than 255 octets');
  return size;
}

/**
 * Octets of the uncompressed wire form of `name`, without encoding it.
 * Throws InvalidNameError where encodeName would.
 */
export function nameLength(name: string): number {
  if (!PLAIN_NAME.test(name)) return wireSize(name, nameToLabels(name));
  // No escapes and ASCII only: one octet per character, plus the first
  // label's length octet and the root label.
  const size = name.endsWith('.') ? name.length + 1 : name.length + 2;
  if (size > MAX_NAME_WIRE) throw new InvalidNameError(name, 'longer than 255 octets');
  return size;
}

/** Writes the wire form of `name` (never compressed) at `offset`; returns the octets written. */
export function writeName(name: string, buf: Buffer, offset: number): number {
  const labels = nameToLabels(name);
  const size = wireSize(name, labels);
  let pos = offset;
  for (const l of labels) {
    buf[pos++] = l.length;
    l.copy(buf, pos);
    pos += l.length;
  }
  buf[pos] = 0;
  return size;
}

/**
 * Name compression for one message being written (RFC 1035 §4.1.4): every
 * suffix of a name written in full is remembered with its offset, and a
 * later name ending in a remembered suffix is written as its leading labels
 * plus a pointer to it. Suffixes match byte for byte, so the case of every
 * name is kept (decoding stays byte-exact); a pointer only ever leads back
 * to labels written in full, and only offsets a pointer can hold (below
 * 0x4000) are remembered. Offsets are from the start of the message, which
 * must start at offset 0 of the buffer written to.
 */
export class NameCompressor {
  private readonly seen = new Map<string, number>();

  /** Writes `name` at `offset`, compressed where an earlier name allows; returns the octets written. */
  write(name: string, buf: Buffer, offset: number): number {
    const labels = nameToLabels(name);
    wireSize(name, labels);
    // keys[i]: the wire form of labels i.. (length octets included), as a map key.
    const keys = new Array<string>(labels.length);
    let key = '';
    for (let i = labels.length - 1; i >= 0; i--) {
      key = String.fromCharCode(labels[i].length) + labels[i].toString('latin1') + key;
      keys[i] = key;
    }
    let pos = offset;
    for (let i = 0; i < labels.length; i++) {
      const earlier = this.seen.get(keys[i]);
      if (earlier !== undefined) {
        buf.writeUInt16BE(0xc000 | earlier, pos);
        return pos + 2 - offset;
      }
      if (pos < 0x4000) this.seen.set(keys[i], pos);
      const l = labels[i];
      buf[pos++] = l.length;
      pos += l.copy(buf, pos);
    }
    buf[pos] = 0;
    return pos + 1 - offset;
  }
}

/** Wire form of a name, never compressed. */
export function encodeName(name: string): Buffer {
  const out = Buffer.allocUnsafe(nameLength(name));
  writeName(name, out, 0);
  return out;
}

/** Adds the trailing dot if missing. */
export function fqdn(name: string): string {
  if (name === '' || name === '.') return '.';
  return endsWithSeparator(name) ? name : name + '.';
}

/**
 * The form names are compared and stored in: FQDN, ASCII letters lower-cased
 * (RFC 4343 §3), escapes normalised. Works on the label bytes, so `\065`
 * and `a` compare equal and `\.` stays an escaped dot. Throws
 * InvalidNameError for names that cannot be put on the wire.
 */
export function canonicalName(name: string): string {
  // Fast path for the common case (hostname characters, no escapes): checked
  // by the same rules as below, minus the byte work. SIG(0) verification
  // compares names per request, so this is on the hot path.
  if (PLAIN_NAME.test(name)) return (name.endsWith('.') ? name : name + '.').toLowerCase();
  const labels = nameToLabels(name);
  if (labels.length === 0) return '.';
  let out = '';
  for (const l of labels) {
    const lower = Buffer.from(l);
    for (let i = 0; i < lower.length; i++) {
      const b = lower[i];
      if (b >= 0x41 && b <= 0x5a) lower[i] = b + 0x20;
    }
    out += escapeLabel(lower, 0, lower.length) + '.';
  }
  return out;
}

export function namesEqual(a: string, b: string): boolean {
  return canonicalName(a) === canonicalName(b);
}

/** Number of labels (the root has 0). */
export function labelCount(name: string): number {
  return nameToLabels(name).length;
}

/** True when `name` equals `zone` or lies below it (compared label by label, so escaped dots cannot fool it). */
export function isSubdomain(name: string, zone: string): boolean {
  const n = nameToLabels(canonicalName(name));
  const z = nameToLabels(canonicalName(zone));
  if (n.length < z.length) return false;
  const skip = n.length - z.length;
  for (let i = 0; i < z.length; i++) {
    if (!(n[skip + i]).equals(z[i])) return false;
  }
  return true;
}

/**
 * The label of `name` directly below `zone`, or undefined when `name` is not
 * exactly one label below it. The label is returned in presentation form.
 */
export function childLabel(name: string, zone: string): string | undefined {
  const nLabels = nameToLabels(canonicalName(name));
  const zLabels = nameToLabels(canonicalName(zone));
  if (nLabels.length !== zLabels.length + 1) return undefined;
  for (let i = 0; i < zLabels.length; i++) {
    if (!(nLabels[i + 1]).equals(zLabels[i])) return undefined;
  }
  const first = nLabels[0];
  return escapeLabel(first, 0, first.length);
}
