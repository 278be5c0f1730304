/**
 * The consumer side every AddressSource shares (see the contract in
 * source.ts): one subscriber; events heard before it subscribes are held
 * and replayed then; what the consumer knows — the last listing plus every
 * event since — is tracked, so a re-read can report just the difference;
 * a failure is reported once, after the source has closed. It also keeps
 * the default-route listeners (AddressSource.onDefaultRouteChange), which
 * are told nothing once the source has closed.
 */
import { errorMessage } from '../../errors.js';
import { diffSnapshots, instanceKey, snapshotOf, type AddressEvent, type LocalAddress } from './source.js';

export class EventRelay {
  readonly #closeSource: () => Promise<void>;
  #known = new Map<string, LocalAddress>();
  /** Events held until subscribe(). */
  #pending: AddressEvent[] = [];
  #onEvent: ((e: AddressEvent) => void) | null = null;
  #onFailure: ((err: Error) => void) | null = null;
  #failure: Error | null = null;
  #closed = false;
  #routeListeners: Array<() => void> = [];

  /** `closeSource` closes the source this relay serves; a failure is reported once it has. */
  constructor(closeSource: () => Promise<void>) {
    this.#closeSource = closeSource;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The failure that ended the source, if one did. */
  get failure(): Error | null {
    return this.#failure;
  }

  get subscribed(): boolean {
    return this.#onEvent !== null;
  }

  /** A full listing is about to be read: before subscribe(), whatever was heard so far is reflected in it. */
  listing(): void {
    if (!this.subscribed) this.#pending = [];
  }

  /** A full listing was read: before subscribe(), it is the baseline changes are measured from. */
  listed(list: readonly LocalAddress[]): void {
    if (!this.subscribed) this.#known = snapshotOf(list);
  }

  /** `attached` runs once the subscriber is in place, before held events are replayed (e.g. to ref a socket). */
  subscribe(onEvent: (e: AddressEvent) => void, onFailure: (err: Error) => void, attached?: () => void): void {
    if (this.#closed) throw new Error('address source is closed');
    if (this.subscribed) throw new Error('already subscribed');
    this.#onEvent = onEvent;
    this.#onFailure = onFailure;
    attached?.();
    const held = this.#pending;
    this.#pending = [];
    for (const e of held) onEvent(e);
    if (this.#failure !== null) this.#reportFailure(this.#failure);
  }

  /** The events that turn what the consumer knows into `fresh` (removals first). */
  difference(fresh: ReadonlyMap<string, LocalAddress>): AddressEvent[] {
    return diffSnapshots(this.#known, fresh);
  }

  /** Passes `e` on (or holds it until subscribe()), and remembers it. */
  deliver(e: AddressEvent): void {
    const key = instanceKey(e.address);
    if (e.kind === 'added') this.#known.set(key, e.address);
    else this.#known.delete(key);
    if (this.#onEvent !== null) this.#onEvent(e);
    else this.#pending.push(e);
  }

  /** Adds a listener for default-route changes (AddressSource.onDefaultRouteChange). */
  onRouteChange(listener: () => void): void {
    if (!this.#closed) this.#routeListeners.push(listener);
  }

  /** A default route appeared, went away or changed: tells every route listener. */
  routeChanged(): void {
    for (const listener of this.#routeListeners) listener();
  }

  /** The source can no longer report changes: closes it and tells the subscriber (now, or when it subscribes). */
  fail(err: unknown): void {
    if (this.#closed || this.#failure !== null) return;
    const failure = err instanceof Error ? err : new Error(errorMessage(err));
    this.#failure = failure;
    if (this.#onFailure !== null) this.#reportFailure(failure);
  }

  /** Drops the subscriber; false when it was closed already. */
  close(): boolean {
    if (this.#closed) return false;
    this.#closed = true;
    this.#onEvent = null;
    this.#onFailure = null;
    this.#routeListeners = [];
    return true;
  }

  #reportFailure(err: Error): void {
    const report = this.#onFailure;
    void this.#closeSource().then(() => report?.(err));
  }
}
