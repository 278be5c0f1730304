/**
 * A real Unbound on loopback for integration tests: remote control enabled
 * with certificates from unbound-control-setup, DNS and control on
 * ephemeral ports, everything in a temporary directory removed by stop().
 * With `netns`, Unbound and every command talking to it (unbound-control,
 * dig) run inside that network namespace, on its loopback.
 */

import { rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

import type { UnboundUpstreamConfig } from '../../src/config/upstreams/index.js';
import type { Netns } from './netns.js';
import { freePort } from './ports.js';
import { awaitServing, spawnLabServer, startLab, type LaunchResult } from './lab-server.js';
import { requireTool, run, type Supervised } from './tools.js';

export interface UnboundOptions {
  /** Raw lines added inside `server:` (indented for you). */
  serverLines?: string[];
  /** How long to wait for the control channel to answer. Default 15 s. */
  startTimeoutMs?: number;
  /** Run inside this network namespace (its loopback) instead of the host's. */
  netns?: Netns;
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
  /** Stops Unbound (SIGTERM) but keeps its directory and ports, for start(). */
  halt(): Promise<void>;
  /** Starts Unbound again on the same ports (after halt(); halts first if it runs), waiting until it serves. */
  start(): Promise<void>;
  /** Unbound's pid. */
  pid(): number | undefined;
  stop(): Promise<void>;
}

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

/**
 * An unbound upstream's configuration for this lab: local zone `static`,
 * record-ttl 600 s, no status polling unless `over` sets it.
 */
export function unboundUpstreamConfig(lab: UnboundLab, over: Partial<UnboundUpstreamConfig> = {}): UnboundUpstreamConfig {
  return {
    type: 'unbound',
    hostname: lab.host,
    port: lab.controlPort,
    clientCert: lab.clientCert,
    clientKey: lab.clientKey,
    serverCert: lab.serverCert,
    serverName: lab.serverName,
    zoneType: 'static',
    reverseZones: [],
    timeout: 5000,
    recordTtl: 600_000,
    keepRecords: false,
    excludeNets: [],
    statusInterval: 0,
    ...over,
  };
}

/** Starts Unbound; rejects with its log if the control channel does not answer in time. */
export async function startUnbound(opts: UnboundOptions = {}): Promise<UnboundLab> {
  const unbound = requireTool('unbound');
  const control = requireTool('unbound-control');
  const setup = requireTool('unbound-control-setup');
  const dig = requireTool('dig');
  return startLab(
    'unbound',
    async (dir) => {
      const made = await run(setup, ['-d', dir], { timeoutMs: 60_000 });
      if (made.code !== 0) throw new Error(`unbound-control-setup failed: ${made.stderr}${made.stdout}`);
    },
    async (dir) => {
      const port = await freePort();
      const controlPort = await freePort();
      const confPath = path.join(dir, 'unbound.conf');
      await writeFile(confPath, conf(dir, port, controlPort, opts));
      return launch({ unbound, control, dig, dir, confPath, port, controlPort, opts });
    },
  );
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

/** The command line running `cmd args` where the lab runs: here, or inside its namespace. */
function placed(a: LaunchArgs, cmd: string, args: readonly string[]): [string, string[]] {
  return a.opts.netns?.command(cmd, args) ?? [cmd, [...args]];
}

function normalise(out: string): string[] {
  return out
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter((l) => l !== '');
}

/** Spawns Unbound and waits until its control channel answers. */
async function spawnServing(a: LaunchArgs): Promise<{ proc: Supervised } | { error: Error; retry: boolean }> {
  // -d: stay in the foreground; logging goes to stderr (logfile "" and no syslog).
  const proc = spawnLabServer(...placed(a, a.unbound, ['-d', '-c', a.confPath]), a.dir, ['ignore', 'pipe', 'pipe']);
  let last = '';
  const failed = await awaitServing(proc, 'unbound', {
    timeoutMs: a.opts.startTimeoutMs ?? 15_000,
    inUse: /address (already )?in use/i,
    ready: async () => {
      const r = await controlRun(a, ['status']);
      last = `${r.stderr}${r.stdout}\n`;
      return r.code === 0 && /is running/.test(r.stdout);
    },
    lastOutput: () => last,
  });
  return failed ?? { proc };
}

function controlRun(a: LaunchArgs, args: string[]): ReturnType<typeof run> {
  return run(...placed(a, a.control, ['-c', a.confPath, ...args]), { timeoutMs: 10_000 });
}

async function launch(a: LaunchArgs): Promise<LaunchResult<UnboundLab>> {
  const first = await spawnServing(a);
  if ('error' in first) return first;
  let proc = first.proc;
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
      const r = await controlRun(a, args);
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
      const r = await run(...placed(a, a.dig, ['@127.0.0.1', '-p', String(a.port), '+time=2', '+tries=1', '+short', name, type]));
      if (r.code !== 0) throw new Error(`dig ${name} ${type} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
      return normalise(r.stdout);
    },
    async halt(): Promise<void> {
      await proc.kill();
    },
    async start(): Promise<void> {
      await proc.kill();
      const next = await spawnServing(a);
      if ('error' in next) throw next.error;
      proc = next.proc;
    },
    pid: () => proc.pid,
    stop: () =>
      (stopped ??= (async (): Promise<void> => {
        await proc.kill();
        await rm(a.dir, { recursive: true, force: true });
      })()),
  };
  return { lab };
}
