/**
 * A real Knot DNS (`knotd`) on loopback as a secondary for integration
 * tests: a generated configuration in a temporary directory, an ephemeral
 * port, readiness checked by querying it, and a stop() that leaves neither
 * a process nor files behind.
 */
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { awaitServing, spawnLabServer, startLab, stopOnce, type LaunchResult } from './lab-server.js';
import type { TsigKeySpec } from './named.js';
import { freePort } from './ports.js';
import { requireTool, run } from './tools.js';

export interface KnotSecondaryOptions {
  /** Zones (FQDN) to hold as a secondary. */
  zones: string[];
  /** The primary's address and port. */
  primary: { address: string; port: number };
  /** TSIG key for transfers and NOTIFY. */
  key: TsigKeySpec;
}

export interface KnotLab {
  readonly port: number;
  readonly dir: string;
  /** Everything knotd wrote so far. */
  log(): string;
  /** `dig +short name type` against this server. */
  query(name: string, type: string): Promise<string[]>;
  stop(): Promise<void>;
}

function knotConf(dir: string, port: number, opts: KnotSecondaryOptions): string {
  const key = opts.key.name.endsWith('.') ? opts.key.name : `${opts.key.name}.`;
  return [
    'server:',
    `  listen: 127.0.0.1@${port}`,
    `  rundir: "${dir}"`,
    'log:',
    '  - target: stderr',
    '    any: info',
    'database:',
    `  storage: "${dir}"`,
    'control:',
    `  listen: "${path.join(dir, 'knot.sock')}"`,
    'key:',
    `  - id: ${key}`,
    `    algorithm: ${opts.key.algorithm}`,
    `    secret: ${opts.key.secret}`,
    'remote:',
    '  - id: primary',
    `    address: ${opts.primary.address}@${opts.primary.port}`,
    `    key: ${key}`,
    'acl:',
    '  - id: notify-from-primary',
    `    address: ${opts.primary.address}`,
    `    key: ${key}`,
    '    action: notify',
    '  - id: transfer-out',
    `    key: ${key}`,
    '    action: transfer',
    'zone:',
    ...opts.zones.flatMap((z) => [
      `  - domain: ${z}`,
      '    master: primary',
      '    acl: [notify-from-primary, transfer-out]',
      `    storage: "${dir}"`,
      '    zonefile-sync: -1',
      '    journal-content: changes',
    ]),
    '',
  ].join('\n');
}

/** Starts knotd; rejects with its log if it does not answer in time (it need not hold the zones yet). */
export async function startKnotSecondary(opts: KnotSecondaryOptions): Promise<KnotLab> {
  const knotd = requireTool('knotd');
  const dig = requireTool('dig');
  return startLab(
    'knot',
    () => Promise.resolve(),
    async (dir): Promise<LaunchResult<KnotLab>> => {
      const port = await freePort();
      const conf = path.join(dir, 'knot.conf');
      await writeFile(conf, knotConf(dir, port, opts));
      const proc = spawnLabServer(knotd, ['-c', conf], dir, ['ignore', 'pipe', 'pipe']);
      const digArgs = (args: string[]): string[] => ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args];
      const failed = await awaitServing(proc, 'knotd', {
        timeoutMs: 10_000,
        inUse: /address already in use|failed to bind/i,
        ready: async () => {
          const r = await run(dig, digArgs(['+tcp', '+noall', '+comments', '.', 'SOA']), { timeoutMs: 5000 });
          return r.code === 0 && r.stdout.includes('status:');
        },
      });
      if (failed !== undefined) return failed;
      const lab: KnotLab = {
        port,
        dir,
        log: () => proc.log(),
        async query(name: string, type: string): Promise<string[]> {
          const r = await run(dig, digArgs(['+short', name, type]));
          if (r.code !== 0) throw new Error(`dig ${name} ${type} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
          return r.stdout
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l !== '');
        },
        stop: stopOnce(proc, dir),
      };
      return { lab };
    },
  );
}
