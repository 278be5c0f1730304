/**
 * A bounded history of a zone's changes for IXFR (RFC 1995): the records
 * of the zone as last published, with their SOA serial, and the
 * differences (records deleted, records added) between consecutive
 * published serials.
 *
 * The zone is observed, not told: whoever serves a transfer hands in the
 * zone's records as they are now and the current serial, and the history
 * records what changed since the last observation. So the history never
 * depends on when the records of a change become visible relative to the
 * serial's increment; data that changed under an unchanged serial is
 * reported (`stale`), and the caller increments the serial first.
 *
 * It survives restarts through toJSON()/restore() (the serve upstream
 * keeps it next to the serial): the first observation of a new process
 * records what changed while nsregd was down, from the last serial it
 * served to the new process's (serials increase across restarts), so a
 * secondary catches up by IXFR. A history that cannot be read starts
 * empty, and an IXFR from an older serial gets the whole zone (RFC 1995 §4).
 */
import type { ResourceRecord } from '../../dns/message.js';

/** The records deleted and added from serial `from` to serial `to`. */
export interface Difference {
  readonly from: number;
  readonly to: number;
  readonly deleted: readonly ResourceRecord[];
  readonly added: readonly ResourceRecord[];
}

export interface HistoryLimits {
  /** Differences kept (the oldest go first). */
  readonly differences: number;
  /** Records in all kept differences together. */
  readonly records: number;
}

/** A record's identity for comparing two versions of a zone: a TTL change is a deletion and an addition. */
function identity(rr: ResourceRecord): string {
  return `${rr.name.toLowerCase()}|${rr.type}|${rr.class}|${rr.ttl}|${JSON.stringify(rr.data)}`;
}

/** The history as saved: the published version and the differences that led to it. */
export interface SavedHistory {
  readonly serial: number;
  readonly published: readonly ResourceRecord[];
  readonly differences: readonly Difference[];
}

const isSerial = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/** Records as saved: an owner, a type and a class are all the checks need (they are our own file's). */
function isRecordList(v: unknown): v is ResourceRecord[] {
  return (
    Array.isArray(v) &&
    v.every((rr) => typeof rr === 'object' && rr !== null && typeof (rr as ResourceRecord).name === 'string' && typeof (rr as ResourceRecord).type === 'string')
  );
}

export class ZoneHistory {
  #published = new Map<string, ResourceRecord>();
  #serial: number | undefined;
  #differences: Difference[] = [];
  #records = 0;

  constructor(private readonly limits: HistoryLimits) {}

  /**
   * Takes the zone as it is now (every record but the SOA) at `serial`.
   * Returns 'stale' without recording anything when the records changed
   * but the serial did not: the caller increments the serial and observes
   * again.
   */
  observe(records: readonly ResourceRecord[], serial: number): 'ok' | 'stale' {
    const current = new Map<string, ResourceRecord>();
    for (const rr of records) current.set(identity(rr), rr);
    if (this.#serial === undefined) {
      this.#published = current;
      this.#serial = serial;
      return 'ok';
    }
    const deleted = [...this.#published].filter(([k]) => !current.has(k)).map(([, rr]) => rr);
    const added = [...current].filter(([k]) => !this.#published.has(k)).map(([, rr]) => rr);
    if (serial === this.#serial) return deleted.length === 0 && added.length === 0 ? 'ok' : 'stale';
    this.push({ from: this.#serial, to: serial, deleted, added });
    this.#published = current;
    this.#serial = serial;
    return 'ok';
  }

  private push(d: Difference): void {
    this.#differences.push(d);
    this.#records += d.deleted.length + d.added.length;
    while (this.#differences.length > this.limits.differences || (this.#records > this.limits.records && this.#differences.length > 0)) {
      const old = this.#differences.shift() as Difference;
      this.#records -= old.deleted.length + old.added.length;
    }
  }

  /** The last observed serial; undefined before the first observation. */
  get serial(): number | undefined {
    return this.#serial;
  }

  /** What restore() takes back; undefined before the first observation. */
  save(): SavedHistory | undefined {
    if (this.#serial === undefined) return undefined;
    return { serial: this.#serial, published: [...this.#published.values()], differences: this.#differences };
  }

  /** A history as saved; an empty one when `saved` is not one (a damaged or foreign file). */
  static restore(saved: unknown, limits: HistoryLimits): ZoneHistory {
    const h = new ZoneHistory(limits);
    if (typeof saved !== 'object' || saved === null) return h;
    const { serial, published, differences } = saved as Record<string, unknown>;
    if (!isSerial(serial) || !isRecordList(published) || !Array.isArray(differences)) return h;
    const diffs: Difference[] = [];
    for (const d of differences as unknown[]) {
      if (typeof d !== 'object' || d === null) return h;
      const { from, to, deleted, added } = d as Record<string, unknown>;
      if (!isSerial(from) || !isSerial(to) || !isRecordList(deleted) || !isRecordList(added)) return h;
      diffs.push({ from, to, deleted, added });
    }
    h.observe(published, serial);
    // The differences must lead to the published version; a broken chain is dropped, the version kept.
    if (diffs.at(-1)?.to === serial) for (const d of diffs) h.push(d);
    return h;
  }

  /**
   * The differences that lead from `serial` to the last observed serial, in
   * order; empty when `serial` is the last observed one; undefined when the
   * history does not reach back to it (then only the whole zone will do).
   */
  since(serial: number): Difference[] | undefined {
    if (serial === this.#serial) return [];
    const i = this.#differences.findIndex((d) => d.from === serial);
    return i < 0 ? undefined : this.#differences.slice(i);
  }
}
