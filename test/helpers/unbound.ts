/**
 * A real Unbound on loopback for integration tests: remote control enabled
 * with certificates from unbound-control-setup, DNS and control on
 * ephemeral ports, everything in a temporary directory removed by stop().
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { freePort } from './ports.js';
import { requireTool, run, supervise } from './tools.js';

export interface UnboundOptions {
  /** Raw lines added inside `server:` (indented for you). */
  serverLines?: string[];
  /** How long to wait for the control channel to answer. Default 15 s. */
  startTimeoutMs?: number;
}

export interface UnboundLab {
  readonly host: '127.0.0.1';
  /** DNS port. */
  readonly port: number;
  readonly controlPort: number;
  readonly dir: string;
  readonly confPath: string;
  /** Certificates and keys made by unbound-control-setup. */
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** The CN unbound-control-setup puts in the server certificate. */
  readonly serverName: 'unbound';
  log(): string;
  /** Runs `unbound-control -c conf <args>`; rejects on a non-zero exit. */
  control(args: string[]): Promise<string>;
  /** `list_local_data` lines, whitespace-normalised ("name ttl IN type data"). */
  localData(): Promise<string[]>;
  /** `list_local_zones` lines ("zone type"). */
  localZones(): Promise<string[]>;
  /** `dig +short name type` against this server. */
  query(name: string, type: string): Promise<string[]>;
  stop(): Promise<void>;
}

const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [child, dir] of live) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function conf(dir: string, port: number, controlPort: number, opts: UnboundOptions): string {
  const q = (s: string): string => `"${s}"`;
  return [
    'server:',
    '  interface: 127.0.0.1',
    `  port: ${port}`,
    '  do-daemonize: no',
    '  chroot: ""',
    '  username: ""',
    `  directory: ${q(dir)}`,
    `  pidfile: ${q(path.join(dir, 'unbound.pid'))}`,
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    '  do-ip6: no',
    '  num-threads: 1',
    '  access-control: 127.0.0.0/8 allow',
    // No validation and no upstream recursion: the lab only serves local data.
    '  module-config: "iterator"',
    ...(opts.serverLines ?? []).map((l) => `  ${l}`),
    'remote-control:',
    '  control-enable: yes',
    '  control-interface: 127.0.0.1',
    `  control-port: ${controlPort}`,
    '  control-use-cert: yes',
    `  server-key-file: ${q(path.join(dir, 'unbound_server.key'))}`,
    `  server-cert-file: ${q(path.join(dir, 'unbound_server.pem'))}`,
    `  control-key-file: ${q(path.join(dir, 'unbound_control.key'))}`,
    `  control-cert-file: ${q(path.join(dir, 'unbound_control.pem'))}`,
    '',
  ].join('\n');
}

/** Starts Unbound; rejects with its log if the control channel does not answer in time. */
export async function startUnbound(opts: UnboundOptions = {}): Promise<UnboundLab> {
  const unbound = requireTool('unbound');
  const control = requireTool('unbound-control');
  const setup = requireTool('unbound-control-setup');
  const dig = requireTool('dig');
  installExitHook();

  const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-unbound-'));
  try {
    const made = await run(setup, ['-d', dir], { timeoutMs: 60_000 });
    if (made.code !== 0) throw new Error(`unbound-control-setup failed: ${made.stderr}${made.stdout}`);
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort();
      const controlPort = await freePort();
      const confPath = path.join(dir, 'unbound.conf');
      await writeFile(confPath, conf(dir, port, controlPort, opts));
      const started = await launch({ unbound, control, dig, dir, confPath, port, controlPort, opts });
      if ('lab' in started) return started.lab;
      lastError = started.error;
      if (!started.retry) break;
    }
    throw lastError ?? new Error('unbound did not start');
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

interface LaunchArgs {
  unbound: string;
  control: string;
  dig: string;
  dir: string;
  confPath: string;
  port: number;
  controlPort: number;
  opts: UnboundOptions;
}

function normalise(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter((l) => l !== '');
}

async function launch(a: LaunchArgs): Promise<{ lab: UnboundLab } | { error: Error; retry: boolean }> {
  // -d: stay in the foreground; logging goes to stderr (logfile "" and no syslog).
  const child = spawn(a.unbound, ['-d', '-c', a.confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.set(child, a.dir);
  const proc = supervise(child, () => live.delete(child));
  const kill = (): Promise<void> => proc.kill();
  const controlRun = (args: string[]): ReturnType<typeof run> => run(a.control, ['-c', a.confPath, ...args], { timeoutMs: 10_000 });

  const deadline = Date.now() + (a.opts.startTimeoutMs ?? 15_000);
  for (;;) {
    const log = proc.log();
    const spawnError = proc.spawnError();
    const exited = proc.exited();
    if (spawnError) return { error: new Error(`cannot start unbound: ${spawnError.message}`), retry: false };
    if (exited) {
      return {
        error: new Error(`unbound exited during startup (code ${String(exited.code)}, signal ${String(exited.signal)}):\n${log}`),
        retry: /address (already )?in use/i.test(log),
      };
    }
    const r = await controlRun(['status']);
    if (r.code === 0 && /is running/.test(r.stdout)) break;
    if (Date.now() > deadline) {
      await kill();
      return { error: new Error(`unbound control did not answer within the start timeout:\n${r.stderr}${r.stdout}\n${log}`), retry: false };
    }
    await delay(100);
  }

  let stopped: Promise<void> | undefined;
  const lab: UnboundLab = {
    host: '127.0.0.1',
    port: a.port,
    controlPort: a.controlPort,
    dir: a.dir,
    confPath: a.confPath,
    serverCert: path.join(a.dir, 'unbound_server.pem'),
    serverKey: path.join(a.dir, 'unbound_server.key'),
    clientCert: path.join(a.dir, 'unbound_control.pem'),
    clientKey: path.join(a.dir, 'unbound_control.key'),
    serverName: 'unbound',
    log: () => proc.log(),
    async control(args: string[]): Promise<string> {
      const r = await controlRun(args);
      if (r.code !== 0) throw new Error(`unbound-control ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    async localData(): Promise<string[]> {
      return normalise(await lab.control(['list_local_data']));
    },
    async localZones(): Promise<string[]> {
      return normalise(await lab.control(['list_local_zones']));
    },
    async query(name: string, type: string): Promise<string[]> {
      const r = await run(a.dig, ['@127.0.0.1', '-p', String(a.port), '+time=2', '+tries=1', '+short', name, type]);
      if (r.code !== 0) throw new Error(`dig ${name} ${type} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
      return normalise(r.stdout);
    },
    stop(): Promise<void> {
      stopped ??= (async (): Promise<void> => {
        await kill();
        await rm(a.dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  return { lab };
}
