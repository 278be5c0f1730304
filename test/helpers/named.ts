/**
 * A real BIND `named` on loopback for integration tests: generated config in
 * a temporary directory, an ephemeral port, readiness checked by querying
 * it, and a stop() that leaves neither a process nor files behind.
 */

import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';

import { freePort } from './ports.js';
import { awaitServing, spawnLabServer, startLab, stopOnce, type LaunchResult } from './lab-server.js';
import { requireTool, run, type RunResult } from './tools.js';

export interface TsigKeySpec {
  /** Key name as nsupdate/dig name it, e.g. "nsregd-key." (trailing dot optional). */
  name: string;
  /** BIND algorithm name, e.g. "hmac-sha256". */
  algorithm: string;
  /** Base64 secret. */
  secret: string;
}

export interface ZoneSpec {
  /** Zone apex, e.g. "example.test." (trailing dot optional). */
  name: string;
  /** Extra master-file lines appended after SOA/NS/ns A, relative names allowed. */
  records?: string[];
  /** Name of a TSIG key allowed to update anything in the zone (allow-update). */
  allowUpdateKey?: string;
  /** update-policy rules, e.g. ['grant key. zonesub ANY;']; excludes allowUpdateKey. */
  updatePolicy?: string[];
  /** Raw statements added inside the zone block. */
  extra?: string;
}

export interface NamedOptions {
  zones: ZoneSpec[];
  tsigKeys?: TsigKeySpec[];
  /** Act as a recursive resolver (for forward zones in extraConfig). Default false. */
  recursion?: boolean;
  /** Raw statements added inside `options { }`. */
  extraOptions?: string;
  /** Raw top-level statements appended to named.conf. */
  extraConfig?: string;
  /** How long to wait for named to answer. Default 10 s. */
  startTimeoutMs?: number;
}

export interface DigOptions {
  tcp?: boolean;
}

export interface NamedLab {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The temporary directory holding named.conf, zone files and journals. */
  readonly dir: string;
  readonly confPath: string;
  readonly pid: number;
  /** Everything named wrote to stderr (it runs with -g) so far. */
  log(): string;
  /** Runs dig against this server with the given extra arguments; rejects on a non-zero exit. */
  dig(args: string[]): Promise<string>;
  /** `dig +short name type`: the answer lines. */
  query(name: string, type: string, opts?: DigOptions): Promise<string[]>;
  /** Runs nsupdate with `server` prepended and `send` appended to `lines`, signed with `key` if given. */
  nsupdate(lines: string[], opts?: { key?: TsigKeySpec; tcp?: boolean }): Promise<RunResult>;
  /** Runs rndc against this server's private control channel. */
  rndc(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

function quoted(value: string): string {
  if (/["\\\n]/.test(value)) throw new Error(`value not allowed in named.conf: ${JSON.stringify(value)}`);
  return `"${value}"`;
}

function zoneFile(zone: ZoneSpec): string {
  const apex = fqdn(zone.name);
  return [
    '$TTL 300',
    `@ IN SOA ns.${apex} hostmaster.${apex} 1 3600 600 86400 300`,
    `@ IN NS ns.${apex}`,
    'ns IN A 127.0.0.1',
    ...(zone.records ?? []),
    '',
  ].join('\n');
}

function zoneFileName(zone: ZoneSpec): string {
  const apex = fqdn(zone.name);
  return `${apex === '.' ? 'root' : apex.slice(0, -1)}.zone`;
}

function namedConf(dir: string, port: number, controlPort: number, opts: NamedOptions): string {
  const lines: string[] = [
    'options {',
    `  directory ${quoted(dir)};`,
    `  listen-on port ${port} { 127.0.0.1; };`,
    '  listen-on-v6 { none; };',
    `  pid-file ${quoted(path.join(dir, 'named.pid'))};`,
    `  session-keyfile ${quoted(path.join(dir, 'session.key'))};`,
    `  managed-keys-directory ${quoted(dir)};`,
    // A resolver lab (recursion: true) forwards; by default named is authoritative only.
    opts.recursion ? '  recursion yes; allow-recursion { any; };' : '  recursion no;',
    '  dnssec-validation no;',
    '  allow-query { any; };',
    '  notify no;',
    ...(opts.extraOptions === undefined ? [] : [opts.extraOptions]),
    '};',
    // A private rndc channel: the system's /etc/bind/rndc.key and port 953
    // would collide between labs.
    'key "lab-rndc" { algorithm hmac-sha256; secret "RNDC_SECRET"; };',
    `controls { inet 127.0.0.1 port ${controlPort} allow { 127.0.0.1; } keys { "lab-rndc"; }; };`,
  ];
  for (const key of opts.tsigKeys ?? []) {
    lines.push(`key ${quoted(fqdn(key.name))} { algorithm ${key.algorithm}; secret ${quoted(key.secret)}; };`);
  }
  for (const zone of opts.zones) {
    const body: string[] = ['  type primary;', `  file ${quoted(path.join(dir, zoneFileName(zone)))};`];
    if (zone.updatePolicy !== undefined) {
      body.push(`  update-policy { ${zone.updatePolicy.join(' ')} };`);
    } else if (zone.allowUpdateKey !== undefined) {
      body.push(`  allow-update { key ${quoted(fqdn(zone.allowUpdateKey))}; };`);
    }
    if (zone.extra !== undefined) body.push(zone.extra);
    lines.push(`zone ${quoted(fqdn(zone.name))} {`, ...body, '};');
  }
  if (opts.extraConfig !== undefined) lines.push(opts.extraConfig);
  return `${lines.join('\n')}\n`;
}

/** Starts named; rejects with its log if it does not serve every zone in time. */
export async function startNamed(opts: NamedOptions): Promise<NamedLab> {
  const named = requireTool('named');
  const dig = requireTool('dig');
  const nsupdate = requireTool('nsupdate');
  const rndc = requireTool('rndc');
  const rndcSecret = randomBytes(32).toString('base64');
  return startLab(
    'named',
    async (dir) => {
      for (const zone of opts.zones) await writeFile(path.join(dir, zoneFileName(zone)), zoneFile(zone));
    },
    async (dir) => {
      const port = await freePort();
      const controlPort = await freePort();
      const confPath = path.join(dir, 'named.conf');
      await writeFile(confPath, namedConf(dir, port, controlPort, opts).replace('RNDC_SECRET', rndcSecret));
      const rndcConf = path.join(dir, 'rndc.conf');
      await writeFile(
        rndcConf,
        `key "lab-rndc" { algorithm hmac-sha256; secret "${rndcSecret}"; };\n` +
          `options { default-key "lab-rndc"; default-server 127.0.0.1; default-port ${controlPort}; };\n`,
      );
      return launch({ named, dig, nsupdate, rndc, dir, confPath, rndcConf, port, opts });
    },
  );
}

interface LaunchArgs {
  named: string;
  dig: string;
  nsupdate: string;
  rndc: string;
  dir: string;
  confPath: string;
  rndcConf: string;
  port: number;
  opts: NamedOptions;
}

async function launch(a: LaunchArgs): Promise<LaunchResult<NamedLab>> {
  // -g: foreground, log to stderr; -4: the lab is IPv4 loopback only.
  // Running as root, so no -u: named keeps the rights to write journals in dir.
  const proc = spawnLabServer(a.named, ['-g', '-4', '-c', a.confPath], a.dir, ['ignore', 'ignore', 'pipe']);

  const digArgs = (args: string[]): string[] => ['@127.0.0.1', '-p', String(a.port), '+time=2', '+tries=1', ...args];
  const zones = a.opts.zones.map((z) => fqdn(z.name));

  const ready = async (): Promise<boolean> => {
    if (zones.length === 0) {
      const r = await run(a.dig, digArgs(['+tcp', '+noall', '+comments', '.', 'SOA']), { timeoutMs: 5000 });
      return r.code === 0 && r.stdout.includes('status:');
    }
    for (const zone of zones) {
      const r = await run(a.dig, digArgs(['+tcp', '+short', zone, 'SOA']), { timeoutMs: 5000 });
      if (r.code !== 0 || r.stdout.trim() === '') return false;
    }
    return true;
  };

  const failed = await awaitServing(proc, 'named', {
    timeoutMs: a.opts.startTimeoutMs ?? 10_000,
    inUse: /address in use/i,
    ready,
    // A zone that fails to load leaves named running but never serving it.
    check: (log) => (/not loaded due to errors/.test(log) ? 'a zone could not be loaded' : undefined),
  });
  if (failed !== undefined) return failed;

  const lab: NamedLab = {
    host: '127.0.0.1',
    port: a.port,
    dir: a.dir,
    confPath: a.confPath,
    pid: proc.pid ?? 0,
    log: () => proc.log(),
    async dig(args: string[]): Promise<string> {
      const r = await run(a.dig, digArgs(args));
      if (r.code !== 0) throw new Error(`dig ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    async query(name: string, type: string, q: DigOptions = {}): Promise<string[]> {
      const out = await lab.dig([q.tcp ? '+tcp' : '+notcp', '+short', name, type]);
      return out
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '');
    },
    nsupdate(lines: string[], u: { key?: TsigKeySpec; tcp?: boolean } = {}): Promise<RunResult> {
      const args: string[] = [];
      if (u.tcp) args.push('-v');
      if (u.key) args.push('-y', `${u.key.algorithm}:${fqdn(u.key.name)}:${u.key.secret}`);
      const script = [`server 127.0.0.1 ${a.port}`, ...lines, 'send', ''].join('\n');
      return run(a.nsupdate, args, { input: script });
    },
    async rndc(args: string[]): Promise<string> {
      const r = await run(a.rndc, ['-c', a.rndcConf, ...args]);
      if (r.code !== 0) throw new Error(`rndc ${args.join(' ')} exited ${String(r.code)}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    stop: stopOnce(proc, a.dir),
  };
  return { lab };
}
