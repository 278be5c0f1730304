/**
 * The root logger both programs make: JSON lines by default (for journald
 * and log shippers), human-readable when standard output is a terminal.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export interface LoggerOptions {
  name: string;
  debug: boolean;
  /** Force the readable format (default: when stdout is a TTY). */
  pretty?: boolean;
  /** Where lines go (default: stdout); tests pass a sink. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.debug ? 'debug' : 'info';
  // "program", not pino's usual "name": log lines carry DNS names under "name".
  const base = { program: opts.name };
  const destination = opts.destination ?? process.stdout;
  const readable = opts.pretty ?? (destination === process.stdout && process.stdout.isTTY === true);
  if (readable) {
    return pino({ level, base }, pretty({ colorize: true, sync: true, ignore: 'pid,hostname,program', destination: 1 }));
  }
  return pino({ level, base }, destination);
}
