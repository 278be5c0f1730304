/**
 * One request at a time per name: a request waits for the one before it,
 * so two claims of one new name cannot both pass the "no key yet" check.
 * Used by both kinds of zone (files and shared store).
 */
export class NameLocks {
  private readonly locks = new Map<string, Promise<unknown>>();

  /** Runs `fn` once every earlier call for `name` has settled. */
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(name) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(name, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(name) === settled) this.locks.delete(name);
    }
  }
}
