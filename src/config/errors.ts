/**
 * Errors of the configuration layer. Tests assert `code` and `reason`; the
 * message is for humans and has the one-line form
 * `<file>: <keyPath>: <problem> (got <value>)`.
 */
import { NsregError } from '../errors.js';

export type ConfigErrorReason =
  | 'read' // the file could not be read
  | 'syntax' // not YAML/JSON, or more than one document
  | 'type' // wrong kind of value (list where a string belongs, …)
  | 'missing' // a required key is absent or null
  | 'range' // a number outside its range (port 0, negative duration, …)
  | 'duration' // not a Go duration
  | 'cidr' // not an address/prefix
  | 'address' // not an IP address
  | 'name' // not a valid DNS name or label
  | 'base64' // a secret that is not base64
  | 'duplicate' // the same key twice (after case folding / FQDN normalising)
  | 'unknown-type' // an upstream `type` nobody registered
  | 'invalid'; // any other value the schema refuses

/** Where a value came from when it was not a file (command-line flags). */
export const COMMAND_LINE = '<command line>';

/** Render a value for the `(got …)` part, short and on one line. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let s: string;
  if (typeof value === 'string') s = JSON.stringify(value);
  else if (typeof value === 'bigint') s = `${value}`;
  else {
    try {
      s = JSON.stringify(value) ?? Object.prototype.toString.call(value);
    } catch {
      s = Object.prototype.toString.call(value);
    }
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** One bad configuration value. */
export class ConfigError extends NsregError {
  readonly code = 'ERR_CONFIG';
  constructor(
    readonly reason: ConfigErrorReason,
    readonly file: string,
    readonly keyPath: string,
    readonly problem: string,
    readonly value?: unknown,
    options?: { cause?: unknown },
  ) {
    const where = keyPath === '' ? file : `${file}: ${keyPath}`;
    const got = value === undefined ? '' : ` (got ${describeValue(value)})`;
    super(`${where}: ${problem}${got}`, options);
  }
}

export type DurationErrorReason = 'syntax' | 'unit' | 'overflow' | 'bare-number';

/** A string that is not a Go `time.ParseDuration` duration. */
export class DurationError extends NsregError {
  readonly code = 'ERR_DURATION';
  constructor(
    readonly reason: DurationErrorReason,
    readonly input: string,
    message: string,
  ) {
    super(message);
  }
}
