/**
 * A throw-away network namespace for end-to-end tests, and programs run
 * inside it (`ip netns exec`): BIND named, and our own binaries with their
 * JSON log lines read back. Everything inside talks to the namespace's own
 * loopback, so nothing reaches the host's network.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TsigKeySpec, ZoneSpec } from './named.js';
import { LogTail, requireTool, run, type RunResult } from './tools.js';
import { errorMessage } from '../../src/errors.js';
import { eventually } from './eventually.js';
import { onJsonLines } from './json-lines.js';

/** dist/test/helpers → repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Netns {
  readonly name: string;
  /** The command line that runs `cmd args` inside the namespace (`ip netns exec NS cmd args`). */
  command(cmd: string, args: readonly string[]): [string, string[]];
  /** `ip -n NS …`; rejects on a non-zero exit. */
  ip(...args: string[]): Promise<string>;
  /** Runs a program inside the namespace to completion. */
  exec(cmd: string, args: readonly string[], opts?: { env?: NodeJS.ProcessEnv }): Promise<RunResult>;
  /** Starts a long-running program inside the namespace. */
  spawn(cmd: string, args: readonly string[], opts?: { env?: NodeJS.ProcessEnv }): ChildProcess;
  /** Deletes the namespace (idempotent). */
  destroy(): Promise<void>;
}

/** `ip netns add <prefix>-<random>` with loopback up. */
export async function createNetns(prefix: string): Promise<Netns> {
  const ipBin = requireTool('ip');
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  const r = await run(ipBin, ['netns', 'add', name]);
  if (r.code !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
  let destroyed = false;
  const ns: Netns = {
    name,
    command: (cmd, args) => [ipBin, ['netns', 'exec', name, cmd, ...args]],
    async ip(...args) {
      const res = await run(ipBin, ['-n', name, ...args]);
      if (res.code !== 0) throw new Error(`ip -n ${name} ${args.join(' ')}: exit ${String(res.code)}: ${res.stderr}`);
      return res.stdout;
    },
    exec(cmd, args, opts = {}) {
      return run(...ns.command(cmd, args), opts.env === undefined ? {} : { env: opts.env });
    },
    spawn(cmd, args, opts = {}) {
      // `ip netns exec` execs the program, so signals sent to this child reach it directly.
      return spawn(...ns.command(cmd, args), {
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(opts.env === undefined ? {} : { env: opts.env }),
      });
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await run(ipBin, ['netns', 'del', name]);
    },
  };
  try {
    await ns.ip('link', 'set', 'lo', 'up');
  } catch (err) {
    await ns.destroy();
    throw err;
  }
  return ns;
}

/** A veth pair `name`/`peer` inside `ns`, both ends up unless `up` is false (then no address at all, not even link-local). */
export async function addVeth(ns: Netns, name: string, peer: string, opts: { up?: boolean } = {}): Promise<void> {
  await ns.ip('link', 'add', name, 'type', 'veth', 'peer', 'name', peer);
  if (opts.up === false) return;
  await ns.ip('link', 'set', name, 'up');
  await ns.ip('link', 'set', peer, 'up');
}

export type LogLine = Record<string, unknown>;

/** A program whose stdout is pino JSON lines (nsregd, nsregc). */
export class LoggedProcess {
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exit: Promise<number | null>;
  #waiters: Array<() => void> = [];
  #exited = false;

  constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    onJsonLines(child.stdout, (line) => {
      this.lines.push(line);
      this.#wake();
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (c: string) => {
      this.stderr += c;
    });
    this.exit = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exited = true;
        this.#wake();
        resolve(code ?? (signal === null ? null : -1));
      });
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Everything so far, for assertion messages. */
  dump(): string {
    return `${this.label} stderr: ${this.stderr}\n${this.label} log:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`;
  }

  /** The first log line (from the start) matching `pred`, waiting for it. */
  async waitFor(what: string, pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find(pred);
      if (found !== undefined) return found;
      if (this.#exited) throw new Error(`${this.label} exited before logging ${what}\n${this.dump()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label} did not log ${what} within ${timeoutMs} ms\n${this.dump()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** waitFor a line whose msg contains `msg` and whose fields equal `fields`. */
  waitForMsg(msg: string, fields: LogLine = {}, timeoutMs?: number): Promise<LogLine> {
    return this.waitFor(
      `"${msg}" ${JSON.stringify(fields)}`,
      (l) => (typeof l['msg'] === 'string' ? l['msg'] : '').includes(msg) && Object.entries(fields).every(([k, v]) => l[k] === v),
      timeoutMs,
    );
  }

  /** Resolves with the exit code; rejects if the process is still running after `timeoutMs`. */
  async exited(timeoutMs = 15_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.label} did not exit within ${timeoutMs} ms\n${this.dump()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exit, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, then SIGKILL after 5 s; resolves once it is gone. */
  async kill(): Promise<void> {
    if (this.#exited) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exit;
    clearTimeout(t);
  }
}

export interface NetnsNamed {
  readonly port: number;
  readonly dir: string;
  /** `dig +short name type` over TCP, inside the namespace. */
  query(name: string, type: string): Promise<string[]>;
  log(): string;
  stop(): Promise<void>;
}

/**
 * `dig +short name type` inside `ns` against 127.0.0.1@`port` (one try, 2 s),
 * answer lines trimmed; rejects when dig gets no answer (exit code not 0).
 */
export async function digInNetns(ns: Netns, port: number, name: string, type: string, opts: { tcp?: boolean } = {}): Promise<string[]> {
  const args = ['@127.0.0.1', '-p', String(port), ...(opts.tcp === true ? ['+tcp'] : []), '+time=2', '+tries=1', '+norecurse', '+short', name, type];
  const r = await ns.exec(requireTool('dig'), args);
  if (r.code !== 0) throw new Error(`dig ${name} ${type}: exit ${String(r.code)}: ${r.stderr}${r.stdout}`);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

/**
 * BIND named inside `ns` on 127.0.0.1, authoritative only, with the given
 * zones (SOA/NS/ns A written first, then `records`) and TSIG keys.
 */
export async function startNamedInNetns(ns: Netns, zones: readonly ZoneSpec[], keys: readonly TsigKeySpec[]): Promise<NetnsNamed> {
  const named = requireTool('named');
  const dig = requireTool('dig');
  const dir = await mkdtemp(path.join(tmpdir(), 'nsregc-e2e-named-'));
  // The namespace is ours alone: any port is free in it.
  const port = randomInt(20_000, 60_000);
  const conf: string[] = [
    'options {',
    `  directory "${dir}";`,
    `  listen-on port ${port} { 127.0.0.1; };`,
    '  listen-on-v6 { none; };',
    `  pid-file "${path.join(dir, 'named.pid')}";`,
    `  session-keyfile "${path.join(dir, 'session.key')}";`,
    `  managed-keys-directory "${dir}";`,
    '  recursion no;',
    '  dnssec-validation no;',
    '  allow-query { any; };',
    '  notify no;',
    '};',
    'controls { };',
  ];
  for (const k of keys) conf.push(`key "${fqdn(k.name)}" { algorithm ${k.algorithm}; secret "${k.secret}"; };`);
  for (const z of zones) {
    const apex = fqdn(z.name);
    const file = path.join(dir, `${apex}zone`);
    await writeFile(
      file,
      [
        '$TTL 300',
        `@ IN SOA ns.${apex} hostmaster.${apex} 1 3600 600 86400 300`,
        `@ IN NS ns.${apex}`,
        'ns IN A 127.0.0.1',
        ...(z.records ?? []),
        '',
      ].join('\n'),
    );
    const update = z.allowUpdateKey === undefined ? '' : ` allow-update { key "${fqdn(z.allowUpdateKey)}"; };`;
    conf.push(`zone "${apex}" { type primary; file "${file}";${update} };`);
  }
  const confPath = path.join(dir, 'named.conf');
  await writeFile(confPath, `${conf.join('\n')}\n`);
  const child = ns.spawn(named, ['-g', '-4', '-c', confPath]);
  const log = new LogTail(200_000);
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => log.push(s));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const query = (name: string, type: string): Promise<string[]> => digInNetns(ns, port, name, type, { tcp: true });
  try {
    // Polled until named answers SOA for every zone, or its log shows it will not.
    const state = async (): Promise<'ready' | 'waiting' | 'exited' | 'zone not loaded'> => {
      if (exited) return 'exited';
      if (/not loaded due to errors/.test(log.text())) return 'zone not loaded';
      for (const z of zones) {
        const r = await ns.exec(dig, ['@127.0.0.1', '-p', String(port), '+tcp', '+time=1', '+tries=1', '+short', fqdn(z.name), 'SOA']);
        if (r.code !== 0 || r.stdout.trim() === '') return 'waiting';
      }
      return 'ready';
    };
    const outcome = await eventually('named to answer SOA for every zone', state, (v) => v !== 'waiting', 10_000).catch((err: unknown) => {
      throw new Error(`${errorMessage(err)}:\n${log.text()}`);
    });
    if (outcome === 'exited') throw new Error(`named exited during start-up:\n${log.text()}`);
    if (outcome === 'zone not loaded') throw new Error(`named could not load a zone:\n${log.text()}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, dir, query, log: () => log.text(), stop };
}
