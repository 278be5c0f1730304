/**
 * Time as the daemon sees it. Everything that expires (records, keys,
 * signature windows) reads this clock, so tests drive it with a fake one.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds. */
  schedule(ms: number, fn: () => void): TimerHandle;
}

/** setTimeout's limit: a longer delay is replaced by 1 ms (with a TimeoutOverflowWarning). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(ms: number, fn: () => void): TimerHandle {
    // Delays beyond ~24.8 days (a 720h key expiry) are reached in steps.
    const due = Date.now() + Math.max(0, ms);
    let t: NodeJS.Timeout;
    const arm = (left: number): void => {
      t = setTimeout(() => {
        const rest = due - Date.now();
        if (rest > 0 && left > MAX_TIMEOUT_MS) arm(rest);
        else fn();
      }, Math.min(left, MAX_TIMEOUT_MS));
      t.unref();
    };
    arm(Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  },
};

/** Unix seconds of a clock, for DNS signature windows. */
export function unixSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}
