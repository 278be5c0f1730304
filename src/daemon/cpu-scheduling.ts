/**
 * The daemon's CPU scheduling policy (README, "CPU scheduling").
 *
 * Every signature check runs on libuv's thread pool, and every hand-off
 * wakes a pool thread. Under SCHED_OTHER a woken thread preempts the one
 * running on its core, most often the event loop that just handed it the
 * work, so on a machine with few cores each request costs several context
 * switches. SCHED_BATCH (sched(7)) marks the daemon's threads as
 * throughput work: a woken thread of the daemon waits for the running one
 * to block or to use up its slice instead of preempting it. Nothing else
 * changes: the nice value, and so the daemon's share of the CPU against
 * other processes, stays the same.
 *
 * Node has no binding for sched_setscheduler(2), so the policy is set with
 * util-linux's chrt(1) on every thread of this process (`--all-tasks`),
 * synchronously: the event loop does not run meanwhile, so no thread it
 * would start escapes, and threads started later (libuv's pool grows on
 * first use) inherit the policy of the thread that starts them. An
 * unprivileged process may move its own threads between SCHED_OTHER and
 * SCHED_BATCH.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { CpuScheduling } from '../config/daemon.js';
import { errorMessage } from '../errors.js';

/** Policy numbers as the kernel reports them (sched(7), /proc/<pid>/stat field 41). */
export const SCHED_OTHER = 0;
export const SCHED_BATCH = 3;

/** chrt's option for each setting. */
const CHRT_POLICY: Readonly<Record<CpuScheduling, string>> = { batch: '--batch', normal: '--other' };

/** chrt runs for a few milliseconds; this bounds a hung one. */
const CHRT_TIMEOUT_MS = 5_000;

/**
 * Sets `policy` (priority 0) on every thread of process `pid`. Throws an
 * Error saying why when chrt is missing, fails or is refused.
 */
export function setCpuScheduling(policy: CpuScheduling, pid: number = process.pid): void {
  try {
    execFileSync('chrt', ['--all-tasks', CHRT_POLICY[policy], '--pid', '0', String(pid)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: CHRT_TIMEOUT_MS,
    });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString('utf8').trim();
    throw new Error(`chrt: ${stderr !== undefined && stderr !== '' ? stderr.split('\n')[0] : errorMessage(err)}`, { cause: err });
  }
}

/**
 * The scheduling policy of every thread of process `pid`, by thread id
 * (threads that end while they are read are left out).
 */
export function threadPolicies(pid: number = process.pid): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Field 2, the command name in parentheses, may hold spaces: count from the last ')', which ends it (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    out.set(Number(tid), Number(fields[41 - 3]));
  }
  return out;
}
