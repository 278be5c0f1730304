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

export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** Unix seconds of a clock, for DNS signature windows. */
export function unixSeconds(clock: Clock): number {
  return Math.floor(clock.now() / 1000);
}
