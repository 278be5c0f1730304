/**
 * Which labels may be claimed: a claimed name is one label below its zone,
 * and that label becomes a host name in the zone, so by default it must be
 * a host name label (RFC 952 as relaxed by RFC 1123 §2.1): 1–63 letters,
 * digits and hyphens, not starting or ending with a hyphen. The zone option
 * `label-syntax: printable` relaxes this to visible ASCII (RFC 1035 §2.3.3
 * leaves label octets open; this keeps to 0x21–0x7e), still without a dot
 * inside the label and without any `*`: a `*` label is a wildcard (RFC 4592
 * §2.1.1) that would answer for every unclaimed name, and a label merely
 * containing one invites the same confusion in tools that match names.
 *
 * Labels are checked as their raw octets (the presentation form from
 * src/dns/names.ts escapes dots and non-printable bytes as `\.` and `\DDD`).
 */
import type { LabelSyntax } from '../config/daemon.js';
import { childLabel, nameToLabels } from '../dns/names.js';

const MAX_LABEL = 63;

function isLetterOrDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

/** Whether the raw label octets are acceptable under `syntax`. */
export function labelAllowed(label: Uint8Array, syntax: LabelSyntax): boolean {
  if (label.length === 0 || label.length > MAX_LABEL) return false;
  if (syntax === 'hostname') {
    for (const b of label) if (!isLetterOrDigit(b) && b !== 0x2d) return false;
    return label[0] !== 0x2d && label[label.length - 1] !== 0x2d;
  }
  for (const b of label) if (b < 0x21 || b > 0x7e || b === 0x2e || b === 0x2a) return false;
  return true;
}

/**
 * False when `name` is exactly one label below `zone` and that label is not
 * allowed under `syntax`. Names of any other shape are left to the caller's
 * other checks (they cannot be claimed anyway).
 */
export function claimableName(name: string, zone: string, syntax: LabelSyntax): boolean {
  const label = childLabel(name, zone);
  if (label === undefined) return true;
  const [raw] = nameToLabels(`${label}.`);
  return raw !== undefined && labelAllowed(raw, syntax);
}
