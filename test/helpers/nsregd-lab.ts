/**
 * Our nsregd as a real child process (bin/nsregd) with a generated YAML
 * config in a temp dir and a free port: for integration tests that need
 * signals, reloads and the real socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodeMessage, type DecodedMessage } from '../../src/dns/message.js';
import { tcpExchange } from '../../src/net/transport.js';
import { freePort } from './ports.js';
import { onJsonLines } from './json-lines.js';

export interface NsregdLab {
  readonly port: number;
  readonly dir: string;
  readonly configPath: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs(): Array<Record<string, unknown>>;
  /** Resolves when a log line with this msg (substring) appears. */
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves when `count` log lines with this msg (substring) have appeared. */
  waitForLogCount(msg: string, count: number, timeoutMs?: number): Promise<void>;
  send(message: Buffer, timeoutMs?: number): Promise<DecodedMessage>;
  writeConfig(yaml: string): Promise<void>;
  signal(sig: NodeJS.Signals): void;
  /** Resolves with the exit code once the process ends. */
  exited(): Promise<number | null>;
  stop(): Promise<void>;
}

const BIN = path.resolve('bin/nsregd');

export interface NsregdOptions {
  /** YAML for `zones:` (indented 2 spaces) — everything under `zones:`. */
  zonesYaml: string;
  port?: number;
  dir?: string;
  extraArgs?: string[];
  listenAddr?: string;
  /** More top-level YAML (e.g. a `limits:` section), written before `zones:`. */
  extraYaml?: string;
}

export function daemonYaml(port: number, dataDir: string, zonesYaml: string, listenAddr = '127.0.0.1', extraYaml = ''): string {
  return `listen-addr: ${listenAddr}\nlisten-port: ${port}\ndata-dir: ${dataDir}\n${extraYaml}zones:\n${zonesYaml}\n`;
}

export async function startNsregd(opts: NsregdOptions): Promise<NsregdLab> {
  const dir = opts.dir ?? (await mkdtemp(path.join(tmpdir(), 'nsregd-lab-')));
  const port = opts.port ?? (await freePort());
  const dataDir = path.join(dir, 'data');
  const configPath = path.join(dir, 'nsregd.yaml');
  const listenAddr = opts.listenAddr ?? '127.0.0.1';
  await writeFile(configPath, daemonYaml(port, dataDir, opts.zonesYaml, listenAddr, opts.extraYaml));
  const child = spawn(process.execPath, [BIN, '-c', configPath, '--debug', ...(opts.extraArgs ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ msg: string; resolve: (l: Record<string, unknown>) => void }> = [];
  let stderr = '';
  onJsonLines(child.stdout, (parsed) => {
    lines.push(parsed);
    for (const w of [...waiters]) {
      if ((typeof parsed.msg === 'string' ? parsed.msg : '').includes(w.msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(parsed);
      }
    }
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => (stderr += c));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const matching = (msg: string): Array<Record<string, unknown>> => lines.filter((l) => (typeof l.msg === 'string' ? l.msg : '').includes(msg));
  const waitForLog = (msg: string, timeoutMs = 10_000): Promise<Record<string, unknown>> => {
    const found = matching(msg)[0];
    if (found) return Promise.resolve(found);
    return nextLog(msg, timeoutMs);
  };
  const waitForLogCount = async (msg: string, count: number, timeoutMs = 10_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (matching(msg).length < count) await nextLog(msg, Math.max(1, deadline - Date.now()));
  };
  /** The next line with this msg that arrives from now on. */
  const nextLog = (msg: string, timeoutMs: number): Promise<Record<string, unknown>> => {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`nsregd did not log "${msg}" within ${timeoutMs} ms\nstderr: ${stderr}\nlog: ${lines.map((l) => JSON.stringify(l)).join('\n')}`));
      }, timeoutMs);
      waiters.push({
        msg,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exit.then((code) => {
        clearTimeout(timer);
        reject(new Error(`nsregd exited (${code}) before logging "${msg}"\nstderr: ${stderr}\nlog: ${lines.map((l) => JSON.stringify(l)).join('\n')}`));
      });
    });
  };

  const lab: NsregdLab = {
    port,
    dir,
    configPath,
    dataDir,
    child,
    logs: () => lines,
    waitForLog,
    waitForLogCount,
    async send(message, timeoutMs = 10_000) {
      return decodeMessage(await tcpExchange({ host: '127.0.0.1', port, message, timeoutMs }));
    },
    async writeConfig(yaml) {
      await writeFile(configPath, yaml);
    },
    signal(sig) {
      child.kill(sig);
    },
    exited: () => exit,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exit;
        clearTimeout(timer);
      }
      if (opts.dir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
  await waitForLog('listening for registrations');
  return lab;
}
