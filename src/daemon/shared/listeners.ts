/**
 * A set of listeners for one kind of news (mirror events, leadership):
 * each is called in turn, and one that throws is logged without keeping
 * the news from the others or from the caller's own work.
 */
import type { Logger } from 'pino';

export class Listeners<T> {
  readonly #set = new Set<(value: T) => void>();

  constructor(
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  /** Adds `listener`; returns the function that removes it. */
  add(listener: (value: T) => void): () => void {
    this.#set.add(listener);
    return () => this.#set.delete(listener);
  }

  emit(value: T): void {
    for (const listener of [...this.#set]) {
      try {
        listener(value);
      } catch (err) {
        this.log.error({ err }, `${this.what} listener failed`);
      }
    }
  }
}
