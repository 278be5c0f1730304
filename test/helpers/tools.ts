/**
 * Finding and running the external programs integration tests drive
 * (named, dig, nsupdate, …). A missing program is an error, never a skip:
 * a test run that silently leaves out its real-server tests proves nothing.
 */

import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';

/** Daemons and admin tools live in sbin, which a non-root PATH often lacks. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Absolute path of an executable `name`, searched on PATH then in the sbin directories. */
export function requireTool(name: string): string {
  if (name.includes('/')) {
    if (isExecutable(name)) return path.resolve(name);
    throw new Error(`required tool ${name} is missing or not executable`);
  }
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== ''), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = path.resolve(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  throw new Error(
    `required tool "${name}" was not found on PATH or in ${EXTRA_DIRS.join(', ')}; ` +
      'install it (Debian: apt-get install bind9 bind9-utils bind9-dnsutils unbound knot iproute2 systemd groff-base man-db prometheus, or run `make deps` as root)',
  );
}

function isExecutable(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export interface RunResult {
  /** Exit code, or null when the process was ended by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the program's stdin, which is then closed. */
  input?: string | Buffer;
  /** The program is killed (SIGKILL) and the promise rejects after this long. Default 30 s. */
  timeoutMs?: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs a program to completion and collects its output. Resolves whatever
 * the exit code (callers assert on it); rejects only when the program
 * cannot be started or overruns its timeout.
 */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      ...(opts.env === undefined ? {} : { env: opts.env }),
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result: RunResult = {
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      };
      if (timedOut) {
        reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${result.stderr}`));
      } else {
        resolve(result);
      }
    });
    // A program that exits without reading stdin would make the write fail with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** A long-running child process a lab helper supervises: bounded log, exit state, graceful kill. */
export interface Supervised {
  /** The process id (undefined if it could not be spawned). */
  readonly pid: number | undefined;
  /** The last 200 kB the process wrote (stderr, and stdout when piped). */
  log(): string;
  /** Exit status once it has exited. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Resolves when the process has exited. */
  readonly exit: Promise<void>;
  /** The error from spawning it, if it could not start. */
  spawnError(): Error | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  kill(graceMs?: number): Promise<void>;
}

/**
 * The last `bound` characters (at least) of what a process wrote. Each piece
 * is kept as it came and joined only when read: appending to one string and
 * cutting it to the bound copied the whole tail for every piece, which under
 * load (named logs each update) cost more CPU than the process being
 * measured spent on some requests.
 */
export class LogTail {
  readonly #pieces: string[] = [];
  #length = 0;

  constructor(private readonly bound: number) {}

  push(piece: string): void {
    this.#pieces.push(piece);
    this.#length += piece.length;
    // Whole pieces are dropped from the front while the rest still covers the bound.
    while (this.#pieces.length > 1 && this.#length - this.#pieces[0].length >= this.bound) this.#length -= (this.#pieces.shift() ?? '').length;
  }

  /** The last `bound` characters. */
  text(): string {
    const all = this.#pieces.length === 1 ? this.#pieces[0] : this.#pieces.join('');
    this.#pieces.length = 0;
    this.#pieces.push(all);
    return all.slice(-this.bound);
  }
}

export function supervise(child: import('node:child_process').ChildProcess, onExit?: () => void): Supervised {
  // Bounded: a runaway log must not eat the test's memory.
  const log = new LogTail(200_000);
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (s: string) => log.push(s));
  }
  let status: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      status = { code, signal };
      onExit?.();
      resolve();
    });
  });
  let spawnError: Error | undefined;
  child.on('error', (e) => {
    spawnError = e;
  });
  return {
    pid: child.pid,
    log: () => log.text(),
    exited: () => status,
    exit,
    spawnError: () => spawnError,
    async kill(graceMs = 5000): Promise<void> {
      if (status) return;
      child.kill('SIGTERM');
      // The escalation timer must not outlive the exit.
      const escalate = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(escalate);
    },
  };
}
