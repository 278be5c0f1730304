/**
 * What the named and unbound labs share: spawning a supervised server that
 * is killed (and its directory removed) if the test process exits without
 * stop(), retrying start-up on a fresh port, and waiting until it serves.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { eventually } from './eventually.js';
import { supervise, type Supervised } from './tools.js';

/** How one start-up attempt ended. */
export type LaunchResult<L> = { lab: L } | { error: Error; retry: boolean };

/** Children still running, killed if the test process exits without stop(). */
const live = new Map<ChildProcess, string>();
let exitHookInstalled = false;

/** Spawns a lab server whose files live in `dir`, supervised. */
export function spawnLabServer(cmd: string, args: readonly string[], dir: string, stdio: StdioOptions): Supervised {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const [child, d] of live) {
        child.kill('SIGKILL');
        rmSync(d, { recursive: true, force: true });
      }
    });
  }
  const child = spawn(cmd, args, { stdio });
  live.set(child, dir);
  return supervise(child, () => live.delete(child));
}

/**
 * Makes a temp directory, lets `prepare` fill it, then runs `launch` until
 * a server starts — up to three times, since a port can be taken between
 * freePort() and the server's bind. The directory is removed if none does.
 */
export async function startLab<L>(
  what: string,
  prepare: (dir: string) => Promise<void>,
  launch: (dir: string) => Promise<LaunchResult<L>>,
): Promise<L> {
  const dir = await mkdtemp(path.join(tmpdir(), `nsregd-${what}-`));
  try {
    await prepare(dir);
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const started = await launch(dir);
      if ('lab' in started) return started.lab;
      lastError = started.error;
      if (!started.retry) break;
    }
    throw lastError ?? new Error(`${what} did not start`);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Polls `ready` until it says the server serves. Fails (and kills the
 * process) when it could not spawn, exited, reports `inUse` (then the caller
 * may retry on another port), when `check` finds a fatal line in its log,
 * or at the deadline.
 */
export async function awaitServing(
  proc: Supervised,
  what: string,
  opts: {
    timeoutMs: number;
    inUse: RegExp;
    ready: () => Promise<boolean>;
    check?: (log: string) => string | undefined;
    /** Extra words for the time-out message. */
    lastOutput?: () => string;
  },
): Promise<{ error: Error; retry: boolean } | undefined> {
  type Outcome = 'serving' | 'waiting' | { error: Error; retry: boolean; kill: boolean };
  const state = async (): Promise<Outcome> => {
    const log = proc.log();
    const spawnError = proc.spawnError();
    const exited = proc.exited();
    if (spawnError) return { error: new Error(`cannot start ${what}: ${spawnError.message}`), retry: false, kill: false };
    if (exited) {
      return {
        error: new Error(`${what} exited during startup (code ${String(exited.code)}, signal ${String(exited.signal)}):\n${log}`),
        retry: opts.inUse.test(log),
        kill: false,
      };
    }
    if (opts.inUse.test(log)) return { error: new Error(`${what} could not bind its port:\n${log}`), retry: true, kill: true };
    const fatal = opts.check?.(log);
    if (fatal !== undefined) return { error: new Error(`${what}: ${fatal}:\n${log}`), retry: false, kill: true };
    return (await opts.ready()) ? 'serving' : 'waiting';
  };
  const outcome = await eventually(`${what} to serve`, state, (v) => v !== 'waiting', opts.timeoutMs).catch(
    (): Outcome => ({
      error: new Error(`${what} did not answer within the start timeout:\n${opts.lastOutput?.() ?? ''}${proc.log()}`),
      retry: false,
      kill: true,
    }),
  );
  if (outcome === 'serving' || outcome === 'waiting') return undefined;
  if (outcome.kill) await proc.kill();
  return { error: outcome.error, retry: outcome.retry };
}

/** stop() for a lab: kills the server and removes its directory, once however often it is called. */
export function stopOnce(proc: Supervised, dir: string): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () =>
    (stopped ??= (async (): Promise<void> => {
      await proc.kill();
      await rm(dir, { recursive: true, force: true });
    })());
}
