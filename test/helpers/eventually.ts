/**
 * Waiting on a condition instead of sleeping a fixed time: `fn` is polled
 * until `ok` accepts its value or `timeoutMs` runs out (then the error names
 * `what` and the last value seen). Bounded in time, so a test that waits for
 * something that never happens fails instead of hanging.
 */

const POLL_MS = 50;

export async function eventually<T>(
  what: string,
  fn: () => T | Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
    last = await fn();
  }
  return last;
}

/**
 * Lets `ms` of wall-clock time pass on purpose, for the tests whose point is
 * that nothing happens meanwhile (or that a fixed real-time interval elapses
 * before the next step). Never use it to wait for something: use `eventually`.
 */
export function letTimePass(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
