/**
 * A real etcd cluster on loopback for tests of the shared store: one or
 * three members (Debian's `etcd`), each on its own free client and peer
 * ports with its own data directory under one temporary directory, never
 * the default ports 2379/2380. Members log to files in that directory; a
 * member that does not come up fails the start with the tail of its log.
 * Members can be stopped, killed and started again with their data, to
 * test what the daemons do without a quorum. close() (for after()) kills
 * every member and removes the directory; members still running when the
 * test process exits are killed too.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as https from 'node:https';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

import { eventually } from './eventually.js';
import { spawnLabServer } from './lab-server.js';
import { freePort } from './ports.js';
import { requireTool, run, type RunResult, type Supervised } from './tools.js';

export interface EtcdClusterOptions {
  members: 1 | 3;
  /** How long a member may take to report healthy (ms; default 20 s). */
  startTimeoutMs?: number;
  /** Raft heartbeat (ms; etcd's default 100). */
  heartbeatMs?: number;
  /** Raft election timeout (ms; etcd's default 1000). */
  electionTimeoutMs?: number;
  /**
   * Serve clients over TLS with a throw-away CA (made with openssl), and
   * require a client certificate signed by it. Peers still talk plain HTTP.
   */
  tls?: boolean;
}

/** PEM texts of the throw-away CA and a client certificate it signed. */
export interface EtcdTestTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface EtcdCluster {
  /** The client URL of each member, e.g. `http://127.0.0.1:40123`. */
  readonly endpoints: readonly string[];
  /** The temporary directory holding every member's data dir and log. */
  readonly dir: string;
  /** With `tls`: what a client needs (the CA, a client certificate and its key). */
  readonly tls: EtcdTestTls | undefined;
  /** Whether member i is running. */
  running(i: number): boolean;
  /** The last `bytes` of member i's log. */
  logTail(i: number, bytes?: number): string;
  /** SIGTERM to member i; resolves once it has exited. */
  stop(i: number): Promise<void>;
  /** SIGKILL to member i; resolves once it has exited. */
  kill(i: number): Promise<void>;
  /**
   * Starts member i again with its data dir. Resolves once it reports
   * healthy, unless `waitHealthy` is false (a lone member of a three-member
   * cluster is never healthy: it has no quorum).
   */
  start(i: number, opts?: { waitHealthy?: boolean }): Promise<void>;
  /** Whether member i answers its health check (it is up and the cluster has a leader and quorum). */
  healthy(i: number): Promise<boolean>;
  /** Runs etcdctl (API v3) against member i (default: every running member). */
  etcdctl(args: readonly string[], member?: number): Promise<RunResult>;
  /** Kills every member and removes the directory; idempotent. */
  close(): Promise<void>;
}

const LOG_TAIL_BYTES = 4000;
const HEALTH_TIMEOUT_MS = 1000;

/** The etcd binary, or an error that says how to install it: a missing etcd fails, never skips. */
function etcdBinary(name: 'etcd' | 'etcdctl'): string {
  try {
    return requireTool(name);
  } catch (err) {
    throw new Error(`the shared-store tests need ${name} (Debian: apt-get install etcd-server etcd-client, or run \`make deps\` as root)`, { cause: err });
  }
}

interface Member {
  readonly name: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  proc: Supervised | undefined;
}

/** Whether the member at `clientUrl` reports healthy on /health (bounded; false on any failure). */
async function checkHealth(clientUrl: string, tls: EtcdTestTls | undefined): Promise<boolean> {
  try {
    if (tls === undefined) {
      const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS) });
      return res.ok && ((await res.json()) as { health?: unknown }).health === 'true';
    }
    const body = await new Promise<string>((resolve, reject) => {
      const req = https.get(`${clientUrl}/health`, { ca: tls.ca, cert: tls.cert, key: tls.key, timeout: HEALTH_TIMEOUT_MS }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`status ${res.statusCode}`))));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
    return (JSON.parse(body) as { health?: unknown }).health === 'true';
  } catch {
    return false;
  }
}

/** Certificates for 127.0.0.1 signed by a fresh CA, in `dir/tls`: file paths for etcd, PEM texts for clients. */
async function makeCertificates(dir: string): Promise<{ files: { ca: string; cert: string; key: string }; client: EtcdTestTls }> {
  const openssl = requireTool('openssl');
  const tlsDir = path.join(dir, 'tls');
  await mkdir(tlsDir, { mode: 0o700 });
  const at = (f: string): string => path.join(tlsDir, f);
  const step = async (args: string[]): Promise<void> => {
    const r = await run(openssl, args);
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await step(['req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '2', '-subj', '/CN=nsregd test CA']);
  for (const [name, usage] of [['server', 'serverAuth'], ['client', 'clientAuth']] as const) {
    await writeFile(at(`${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    await step(['req', ...ec, '-keyout', at(`${name}.key`), '-out', at(`${name}.csr`), '-subj', `/CN=${name === 'server' ? '127.0.0.1' : 'root'}`]);
    await step(['x509', '-req', '-in', at(`${name}.csr`), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-out', at(`${name}.crt`), '-days', '2', '-extfile', at(`${name}.ext`)]);
  }
  const pem = (f: string): Promise<string> => readFile(at(f), 'utf8');
  return {
    files: { ca: at('ca.crt'), cert: at('server.crt'), key: at('server.key') },
    client: { ca: await pem('ca.crt'), cert: await pem('client.crt'), key: await pem('client.key') },
  };
}

function tail(file: string, bytes: number): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.slice(-bytes);
  } catch {
    return '(no log)';
  }
}

/** Starts a cluster of `members` members and waits until every one reports healthy. */
export async function startEtcdCluster(opts: EtcdClusterOptions): Promise<EtcdCluster> {
  const etcd = etcdBinary('etcd');
  // A port can be taken between freePort() and etcd's bind: then the whole
  // cluster starts again on fresh ports (its peer list names every port).
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(path.join(tmpdir(), 'nsregd-etcd-'));
    const cluster = await launch(etcd, dir, opts).catch(async (err: unknown) => {
      await rm(dir, { recursive: true, force: true });
      throw err;
    });
    if (!('error' in cluster)) return cluster;
    lastError = cluster.error;
    if (!cluster.retry) break;
  }
  throw lastError ?? new Error('etcd did not start');
}

async function launch(etcd: string, dir: string, opts: EtcdClusterOptions): Promise<EtcdCluster | { error: Error; retry: boolean }> {
  const token = `nsregd-test-${randomBytes(6).toString('hex')}`;
  const certificates = opts.tls === true ? await makeCertificates(dir) : undefined;
  const scheme = certificates === undefined ? 'http' : 'https';
  const members: Member[] = [];
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    // freePort can offer the same port twice when nothing binds in between.
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  for (let i = 0; i < opts.members; i++) {
    const name = `m${i}`;
    const dataDir = path.join(dir, name);
    await mkdir(dataDir, { mode: 0o700 });
    members.push({
      name,
      dataDir,
      logFile: path.join(dir, `${name}.log`),
      clientUrl: `${scheme}://127.0.0.1:${await port()}`,
      peerUrl: `http://127.0.0.1:${await port()}`,
      proc: undefined,
    });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const argsOf = (m: Member): string[] => [
    '--name', m.name,
    '--data-dir', m.dataDir,
    '--listen-client-urls', m.clientUrl,
    '--advertise-client-urls', m.clientUrl,
    '--listen-peer-urls', m.peerUrl,
    '--initial-advertise-peer-urls', m.peerUrl,
    '--initial-cluster', initialCluster,
    '--initial-cluster-token', token,
    '--initial-cluster-state', 'new',
    '--heartbeat-interval', String(opts.heartbeatMs ?? 100),
    '--election-timeout', String(opts.electionTimeoutMs ?? 1000),
    '--logger', 'zap',
    '--log-outputs', 'stderr',
    ...(certificates === undefined
      ? []
      : ['--cert-file', certificates.files.cert, '--key-file', certificates.files.key, '--trusted-ca-file', certificates.files.ca, '--client-cert-auth']),
  ];
  const tls = certificates?.client;
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;

  const spawnMember = (i: number): void => {
    const m = members[i];
    const fd = openSync(m.logFile, 'a');
    try {
      m.proc = spawnLabServer(etcd, argsOf(m), dir, ['ignore', fd, fd]);
    } finally {
      closeSync(fd);
    }
  };

  const waitHealthy = async (i: number): Promise<void> => {
    const m = members[i];
    const state = async (): Promise<'up' | 'waiting' | 'exited' | 'spawn'> => {
      if (m.proc?.spawnError()) return 'spawn';
      if (m.proc?.exited()) return 'exited';
      return (await checkHealth(m.clientUrl, tls)) ? 'up' : 'waiting';
    };
    const outcome = await eventually(`etcd member ${m.name} to report healthy`, state, (s) => s !== 'waiting', startTimeoutMs).catch(
      () => 'timeout' as const,
    );
    if (outcome === 'up') return;
    const why =
      outcome === 'spawn'
        ? `could not be started: ${String(m.proc?.spawnError()?.message)}`
        : outcome === 'exited'
          ? `exited (${JSON.stringify(m.proc?.exited())})`
          : `did not report healthy within ${startTimeoutMs} ms`;
    throw new Error(`etcd member ${m.name} (${m.clientUrl}) ${why}; log tail:\n${tail(m.logFile, LOG_TAIL_BYTES)}`);
  };

  const killMember = async (i: number, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const proc = members[i].proc;
    if (proc === undefined || proc.exited() !== undefined) return;
    if (signal === 'SIGTERM') {
      await proc.kill();
    } else {
      if (proc.pid !== undefined) process.kill(proc.pid, 'SIGKILL');
      await proc.exit;
    }
  };

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async (): Promise<void> => {
      await Promise.all(members.map((_, i) => killMember(i, 'SIGKILL')));
      await rm(dir, { recursive: true, force: true });
    })());

  const check = (i: number): Member => {
    const m = members[i] as Member | undefined;
    if (m === undefined) throw new RangeError(`no etcd member ${i} (the cluster has ${members.length})`);
    return m;
  };

  try {
    for (let i = 0; i < members.length; i++) spawnMember(i);
    await Promise.all(members.map((_, i) => waitHealthy(i)));
  } catch (err) {
    const logs = members.map((m) => tail(m.logFile, LOG_TAIL_BYTES)).join('\n');
    await close();
    return { error: err instanceof Error ? err : new Error(String(err)), retry: /address already in use/.test(logs) };
  }

  const etcdctl = etcdBinary('etcdctl');
  return {
    endpoints: members.map((m) => m.clientUrl),
    dir,
    tls,
    running: (i) => {
      const proc = check(i).proc;
      return proc !== undefined && proc.exited() === undefined;
    },
    logTail: (i, bytes = LOG_TAIL_BYTES) => tail(check(i).logFile, bytes),
    stop: (i) => (check(i), killMember(i, 'SIGTERM')),
    kill: (i) => (check(i), killMember(i, 'SIGKILL')),
    async start(i, startOpts = {}): Promise<void> {
      const m = check(i);
      if (m.proc !== undefined && m.proc.exited() === undefined) throw new Error(`etcd member ${m.name} is already running`);
      spawnMember(i);
      if (startOpts.waitHealthy ?? true) await waitHealthy(i);
    },
    healthy: (i) => checkHealth(check(i).clientUrl, tls),
    etcdctl(args, member): Promise<RunResult> {
      const urls = member === undefined ? members.filter((m) => m.proc?.exited() === undefined).map((m) => m.clientUrl) : [check(member).clientUrl];
      const tlsArgs = certificates === undefined ? [] : ['--cacert', certificates.files.ca, '--cert', path.join(dir, 'tls', 'client.crt'), '--key', path.join(dir, 'tls', 'client.key')];
      return run(etcdctl, ['--endpoints', urls.join(','), '--dial-timeout', '2s', '--command-timeout', '5s', ...tlsArgs, ...args], {
        env: { ...process.env, ETCDCTL_API: '3' },
      });
    },
    close,
  };
}
