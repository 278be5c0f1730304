/**
 * The publisher's schedule of a zone's deadlines (README, "Several daemons
 * as one service"): what it knows of every name's `until/<name>`, to
 * expire from.
 *
 * A refresh that only moves deadlines writes `until/<name>` alone, and no
 * daemon watches until/, so such a refresh costs no daemon but the one
 * that takes it. The publisher learns deadlines instead:
 *   - all of them when its term starts (one paged range read);
 *   - its own writes at once: its expiries, and the updates its daemon
 *     takes (`note`);
 *   - a name whose claim or records another daemon changed (its zone
 *     mirror reports the name: `changed`) by reading `until/<name>` again;
 *   - a name whose known deadline has come, by reading it again before
 *     acting (`reread`).
 * A write that reaches no mirror only moves a name's earliest deadline
 * later: a daemon that would move it earlier also writes the claim again
 * (./shared-zone.ts), so the mirrors report the name. So what the schedule
 * holds for a name is never due later than what the store holds, and the
 * publisher looks again at the latest when the store's deadline comes.
 * Expiry itself compares the mod revision of `until/<name>` that a read
 * just found, so a refresh elsewhere in the same moment wins.
 */
import { Range, type IKeyValue, type IRequestOp, type Namespace } from 'etcd3';
import type { Logger } from 'pino';
import { isSubdomain } from '../../dns/names.js';
import type { SharedStore, StoredDeadlines, Versioned } from './contract.js';
import type { ZoneMirrorOptions } from './mirror.js';
import { readAtOneRevision } from './reads.js';
import { DEADLINES_PREFIX, decodeDeadlines, deadlinesKey, fullKey, parseZoneKey } from './layout.js';
import { ResponseTooLargeError } from './errors.js';

/** Keys per page of the term's first read. */
const LOAD_PAGE = 1000;
/** Keys read in one transaction (etcd refuses more than 128 operations in one, its default --max-txn-ops). */
const READ_PER_TXN = 64;
/** Undecodable entries logged one by one; beyond this they go unlogged (the name still does not expire). */
const MAX_LOGGED_BAD = 100;
/** Own deletes remembered between reads; beyond, they are forgotten (a stale read then costs one more read later). */
const MAX_GONE = 10_000;

/** What a schedule reads with: the zone, its namespace, the store's bounded runner and a logger, as a zone mirror's. */
export type DeadlineScheduleOptions = Pick<ZoneMirrorOptions, 'zone' | 'namespace' | 'run' | 'logger'>;

interface Held {
  readonly v: Versioned<StoredDeadlines>;
  readonly mod: bigint;
}

/** The earliest moment anything of `d` is due: its claim's deadline or a record's. */
export function earliestDeadline(d: StoredDeadlines): number {
  let at = d.expiry;
  for (const r of d.records.values()) if (r < at) at = r;
  return at;
}

export class DeadlineSchedule {
  readonly #zone: string;
  readonly #ns: Namespace;
  readonly #run: SharedStore['run'];
  readonly #log: Logger;
  readonly #held = new Map<string, Held>();
  /** Names changed elsewhere, with the revision at which that was seen: read again unless what is held is as new. */
  readonly #changed = new Map<string, bigint>();
  /**
   * This daemon's deletes, by name, until a read at or after them: a read
   * from before must not bring the name back, and the mirror's report of
   * the same delete needs no read. (Every expiry reads the name first, so
   * forgetting one costs a read, nothing more.)
   */
  readonly #gone = new Map<string, bigint>();
  #badLogged = 0;

  constructor(opts: DeadlineScheduleOptions) {
    this.#zone = opts.zone;
    this.#ns = opts.namespace;
    this.#run = opts.run;
    this.#log = opts.logger;
  }

  get size(): number {
    return this.#held.size;
  }

  /** Names waiting to be read again because another daemon changed them. */
  get changedCount(): number {
    return this.#changed.size;
  }

  deadlines(name: string): Versioned<StoredDeadlines> | undefined {
    return this.#held.get(name)?.v;
  }

  /** Every until/ entry of the zone, read at one revision (paged); what this daemon wrote since stays. */
  async load(): Promise<void> {
    const seen = new Set<string>();
    const at = await readAtOneRevision(this.#ns, this.#run, `deadlines of ${this.#zone}`, Range.prefix(DEADLINES_PREFIX), LOAD_PAGE, (kv) => {
      const name = this.#put(kv);
      if (name !== undefined) seen.add(name);
    });
    for (const [name, h] of [...this.#held]) if (!seen.has(name) && h.mod <= at) this.#held.delete(name);
    this.#settle(at);
    this.#log.info({ revision: at.toString(), names: this.#held.size }, 'deadlines loaded');
  }

  /** This daemon wrote `until/<name>` at `revision` (`value` undefined: deleted it). */
  note(name: string, revision: string, value: StoredDeadlines | undefined): void {
    const mod = BigInt(revision);
    const h = this.#held.get(name);
    if (h !== undefined && h.mod >= mod) return;
    if ((this.#gone.get(name) ?? -1n) >= mod) return;
    if (value === undefined) {
      this.#held.delete(name);
      if (this.#gone.size >= MAX_GONE) this.#gone.clear();
      this.#gone.set(name, mod);
    } else {
      this.#held.set(name, { v: { value, createRevision: h?.v.createRevision ?? revision, modRevision: revision }, mod });
      this.#gone.delete(name);
    }
    const changed = this.#changed.get(name);
    if (changed !== undefined && changed <= mod) this.#changed.delete(name);
  }

  /** Another daemon changed `name` (claim or records) at `revision`: true when it is now to be read again. */
  changed(name: string, revision: string): boolean {
    const rev = BigInt(revision);
    const known = this.#held.get(name)?.mod ?? this.#gone.get(name) ?? -1n;
    if (known >= rev) return false;
    const before = this.#changed.get(name);
    if (before === undefined || before < rev) this.#changed.set(name, rev);
    return true;
  }

  /**
   * Names due at `now` by what is held, and the earliest deadline of the
   * rest (Infinity when none). O(names held).
   */
  scan(now: number): { due: string[]; next: number } {
    const due: string[] = [];
    let next = Infinity;
    for (const [name, h] of this.#held) {
      const at = earliestDeadline(h.v.value);
      if (at <= now) due.push(name);
      else if (at < next) next = at;
    }
    return { due, next };
  }

  /**
   * Reads `until/` again for `names` and for the names changed elsewhere,
   * at most `limit` in all (changed ones first); returns the names read.
   */
  async reread(names: Iterable<string>, limit: number): Promise<string[]> {
    const pick = new Set<string>();
    for (const name of this.#changed.keys()) {
      if (pick.size >= limit) break;
      pick.add(name);
    }
    for (const name of names) {
      if (pick.size >= limit) break;
      pick.add(name);
    }
    const all = [...pick];
    for (let i = 0; i < all.length; i += READ_PER_TXN) await this.#read(all.slice(i, i + READ_PER_TXN));
    return all;
  }

  /**
   * One transaction of reads (no compares): what each name's until/ holds
   * at one revision. An answer larger than the client takes (entries
   * someone made large) is asked again as two halves, down to single keys.
   */
  async #read(names: readonly string[]): Promise<void> {
    try {
      await this.#readOnce(names);
    } catch (err) {
      if (!(err instanceof ResponseTooLargeError) || names.length === 1) throw err;
      const half = Math.ceil(names.length / 2);
      await this.#read(names.slice(0, half));
      await this.#read(names.slice(half));
    }
  }

  async #readOnce(names: readonly string[]): Promise<void> {
    const res = await this.#run(`deadlines of ${this.#zone}`, () =>
      this.#ns.kv.txn({ compare: [], success: names.map((name): IRequestOp => ({ request_range: { key: fullKey(this.#ns, deadlinesKey(name)) } })), failure: [] }),
    );
    const at = BigInt(res.header.revision);
    names.forEach((name, i) => {
      const kv = res.responses[i]?.response_range?.kvs[0];
      if (kv !== undefined) {
        this.#put(kv);
      } else {
        const h = this.#held.get(name);
        if (h !== undefined && h.mod <= at) this.#held.delete(name);
      }
      const changed = this.#changed.get(name);
      if (changed !== undefined && changed <= at) this.#changed.delete(name);
    });
    this.#settle(at);
  }

  /** Applies what etcd holds under one until/ key, unless older than what is held; the name it is of. */
  #put(kv: IKeyValue): string | undefined {
    const full = kv.key.toString();
    const prefix = this.#ns.prefix.toString();
    const parsed = parseZoneKey(full.startsWith(prefix) ? full.slice(prefix.length) : full);
    if (parsed?.kind !== 'deadlines') return undefined;
    const { name } = parsed;
    const mod = BigInt(kv.mod_revision);
    const h = this.#held.get(name);
    if ((h !== undefined && h.mod >= mod) || (this.#gone.get(name) ?? -1n) >= mod) return name;
    const d = isSubdomain(name, this.#zone) ? decodeDeadlines(kv.value) : { ok: false as const, reason: `${name} is not in zone ${this.#zone}` };
    if (!d.ok) {
      // No deadline is known: the name does not expire until an update replaces the entry (as the daemons do).
      this.#held.delete(name);
      if (this.#badLogged++ < MAX_LOGGED_BAD) this.#log.warn({ name: name.slice(0, 300), reason: d.reason }, 'deadlines in etcd do not decode; the name does not expire until an update replaces them');
      return name;
    }
    this.#held.set(name, { v: { value: d.value, createRevision: kv.create_revision, modRevision: kv.mod_revision }, mod });
    return name;
  }

  /** Deletes at or before a read's revision are in what that read saw: they need not be remembered. */
  #settle(at: bigint): void {
    for (const [name, rev] of this.#gone) if (rev <= at) this.#gone.delete(name);
  }
}
