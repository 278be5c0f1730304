/**
 * Exponential back-off: the delay before retry number n (0 = the first) is
 * `initialMs · factor^n`, at most `capMs`, optionally spread by a random
 * ±`jitter` fraction so that many clients failing together do not retry in
 * step. Pure and clock-free: it only computes delays; whoever retries
 * schedules them on its own clock. Used by the daemon's upstream outbox,
 * the client's registrar (updates and liveness probes) and the netlink
 * watcher's restarts.
 */

export interface BackoffOptions {
  /** The first delay, ms (≥ 0). */
  readonly initialMs: number;
  /** The longest delay before jitter, ms (≥ initialMs). */
  readonly capMs: number;
  /** Growth per attempt (≥ 1); default 2. */
  readonly factor?: number;
  /** Random spread of each delay as a fraction, 0 to 1 (0.2 = ±20 %); default 0, none. */
  readonly jitter?: number;
  /** Uniform random numbers in [0, 1) for the jitter; default Math.random. */
  readonly random?: () => number;
}

export class Backoff {
  readonly initialMs: number;
  readonly capMs: number;
  readonly factor: number;
  readonly jitter: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(opts: BackoffOptions) {
    const { initialMs, capMs, factor = 2, jitter = 0 } = opts;
    if (!Number.isFinite(initialMs) || initialMs < 0) throw new RangeError(`initialMs must be a finite number ≥ 0, got ${initialMs}`);
    if (!(capMs >= initialMs)) throw new RangeError(`capMs must be ≥ initialMs (${initialMs}), got ${capMs}`);
    if (!Number.isFinite(factor) || factor < 1) throw new RangeError(`factor must be a finite number ≥ 1, got ${factor}`);
    if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`jitter must be between 0 and 1, got ${jitter}`);
    this.initialMs = initialMs;
    this.capMs = capMs;
    this.factor = factor;
    this.jitter = jitter;
    this.#random = opts.random ?? Math.random;
  }

  /** The delay before retry number `attempt` (0 = the first), without jitter. */
  baseDelay(attempt: number): number {
    if (this.initialMs === 0) return 0;
    // factor^attempt may overflow to Infinity; the cap bounds it.
    return Math.min(this.capMs, this.initialMs * this.factor ** Math.max(0, attempt));
  }

  /** The delay before retry number `attempt`, with jitter (then rounded to whole ms). */
  delayFor(attempt: number): number {
    const base = this.baseDelay(attempt);
    if (this.jitter === 0) return base;
    return Math.round(base * (1 + this.jitter * (2 * this.#random() - 1)));
  }

  /** Retries handed out since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay (without jitter) the next call of next() is based on. */
  peek(): number {
    return this.baseDelay(this.#attempt);
  }

  /** The delay before the next retry; each call moves one step further. */
  next(): number {
    return this.delayFor(this.#attempt++);
  }

  /** Back to the first delay (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}
