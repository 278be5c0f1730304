/**
 * For upstreams that publish every live record again when they may have
 * lost data (Unbound after a restart, nsupdate's periodic reconciliation):
 * a lane that runs the upstream's updates and its re-publishing one at a
 * time, and a note of removals the upstream already applied but the zone
 * still lists as live (the zone uninstalls a record only after every
 * upstream took its removal), so re-publishing never brings back a record
 * that was just removed.
 */
import { recordKey, type AddrRecord, type UpstreamChange } from '../records.js';

/** Notes kept before they are checked against the live records. */
const PRUNE_AT = 1024;

export class RepublishGuard {
  #lane: Promise<unknown> = Promise.resolve();
  readonly #removed = new Set<string>();
  readonly #removedNames = new Set<string>();
  #pruneAt = PRUNE_AT;

  constructor(private readonly allLive: () => readonly AddrRecord[]) {}

  /** Runs `job` after every job handed in before it has settled. */
  serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#lane.then(job, job);
    this.#lane = run.catch(() => undefined);
    return run;
  }

  /** Notes a change the upstream applied. */
  applied(change: UpstreamChange): void {
    for (const n of change.removeNames) this.#removedNames.add(n.name);
    for (const r of change.remove) this.#removed.add(recordKey(r));
    for (const r of change.add) {
      this.#removed.delete(recordKey(r));
      this.#removedNames.delete(r.name);
    }
    if (this.#removed.size + this.#removedNames.size >= this.#pruneAt) {
      this.stillLive(this.allLive());
      this.#pruneAt = Math.max(PRUNE_AT, 2 * (this.#removed.size + this.#removedNames.size));
    }
  }

  /**
   * The records of `live` to publish again: those whose removal the
   * upstream already applied are left out. Notes about records no longer
   * live are dropped (the zone has caught up).
   */
  stillLive(live: readonly AddrRecord[]): AddrRecord[] {
    const keys = new Set(live.map(recordKey));
    const names = new Set(live.map((r) => r.name));
    for (const k of this.#removed) if (!keys.has(k)) this.#removed.delete(k);
    for (const n of this.#removedNames) if (!names.has(n)) this.#removedNames.delete(n);
    return this.notRemoved(live);
  }

  /** The records of a part of the live records whose removal the upstream has not applied (no notes dropped). */
  notRemoved(records: readonly AddrRecord[]): AddrRecord[] {
    return records.filter((r) => !this.#removed.has(recordKey(r)) && !this.#removedNames.has(r.name));
  }
}
