/**
 * A zone's durable state (`<data-dir>/<zone>state`): its installed records
 * with their deadlines, and every upstream operation not yet applied. With
 * it, `kill -9` loses nothing: after a restart each record still expires at
 * its own deadline and is removed upstream, and unacknowledged operations
 * are sent again.
 *
 * The file is a journal (journal.ts: checksummed lines, group commit).
 * Lines: {"r":[name,type,address,ttl,expiresAt]} a record installed or
 * refreshed, {"r":[…,expiresAt,1]} one withdrawn from the upstreams at a
 * clean stop (installed again at the next start while its deadline has not
 * passed); {"d":key} a record gone; {"o":[upstream,seq,kind,key,payload]}
 * an operation about to be sent (written durably first); {"a":[upstream,seq]}
 * that operation applied. Record lines are written lazily: a crash can lose
 * the last refreshes (those records then expire up to one refresh early)
 * and the newest installs — which is safe, because their add operations are
 * still unacknowledged or were acknowledged only after the install line was
 * queued; an add found without its record on load is turned into a removal.
 *
 * Compaction (at open, at close, and when the file holds more than
 * max(10000, 4 × live entries) lines) uses the journal's hand-over with no
 * separate snapshot: the fresh file starts with the whole current state,
 * and `<zone>state.old` exists only until that is on disk.
 */
import * as path from 'node:path';
import { describeDamage, Journal } from './journal.js';
import type { Op, OpKind, OutboxPersistence } from './outbox.js';
import { recordKey, type AddrRecord, type AddrType } from './records.js';

type Line =
  | { r: [string, AddrType, string, number, number] | [string, AddrType, string, number, number, 1] }
  | { d: string }
  | { o: [string, number, OpKind, string, unknown] }
  | { a: [string, number] };

function parseLine(v: unknown): Line | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (Array.isArray(o.r) && (o.r.length === 5 || (o.r.length === 6 && o.r[5] === 1))) {
    const [name, type, address, ttl, exp] = o.r as unknown[];
    if (typeof name === 'string' && (type === 'A' || type === 'AAAA') && typeof address === 'string' && typeof ttl === 'number' && typeof exp === 'number') {
      return { r: o.r.length === 6 ? [name, type, address, ttl, exp, 1] : [name, type, address, ttl, exp] };
    }
    return undefined;
  }
  if (typeof o.d === 'string') return { d: o.d };
  if (Array.isArray(o.o) && o.o.length === 5) {
    const [up, seq, kind, key, payload] = o.o as unknown[];
    if (typeof up === 'string' && typeof seq === 'number' && (kind === 'add' || kind === 'remove' || kind === 'removeName') && typeof key === 'string') {
      return { o: [up, seq, kind, key, payload] };
    }
    return undefined;
  }
  if (Array.isArray(o.a) && o.a.length === 2 && typeof o.a[0] === 'string' && typeof o.a[1] === 'number') {
    return { a: [o.a[0], o.a[1]] };
  }
  return undefined;
}

function recordLine(r: AddrRecord, expiresAt: number, withdrawn = false): Line {
  return { r: withdrawn ? [r.name, r.type, r.address, r.ttl, expiresAt, 1] : [r.name, r.type, r.address, r.ttl, expiresAt] };
}

function opPayload(op: Op): unknown {
  if (op.kind === 'removeName') return { n: op.name, x: (op.addresses ?? []).map((r) => [r.name, r.type, r.address, r.ttl]) };
  const r = op.record as AddrRecord;
  return [r.name, r.type, r.address, r.ttl];
}

function toRecord(v: unknown): AddrRecord | undefined {
  if (!Array.isArray(v) || v.length !== 4) return undefined;
  const [name, type, address, ttl] = v as unknown[];
  if (typeof name !== 'string' || (type !== 'A' && type !== 'AAAA') || typeof address !== 'string' || typeof ttl !== 'number') return undefined;
  return { name, type, address, ttl };
}

function opFrom(kind: OpKind, key: string, seq: number, payload: unknown): Op | undefined {
  if (kind === 'removeName') {
    const p = payload as { n?: unknown; x?: unknown };
    if (typeof p?.n !== 'string' || !Array.isArray(p.x)) return undefined;
    const addresses = p.x.map(toRecord).filter((r): r is AddrRecord => r !== undefined);
    return { key, kind, seq, name: p.n, addresses };
  }
  const record = toRecord(payload);
  return record === undefined ? undefined : { key, kind, seq, record };
}

/** A record as loaded: `withdrawn` when a clean stop removed it from the upstreams that do not keep records. */
export interface LoadedRecord {
  record: AddrRecord;
  expiresAt: number;
  withdrawn?: true;
}

export interface LoadedState {
  records: LoadedRecord[];
  /** Unapplied operations per upstream id, oldest first. */
  ops: Map<string, Op[]>;
  /** Highest operation sequence number seen (new ones continue above it). */
  lastSeq: number;
  /** Torn last lines (an interrupted write), dropped. */
  warnings: string[];
  /** Damaged lines with good ones after them, dropped: each names the file and byte offset. */
  errors: string[];
}

export class ZoneState implements OutboxPersistence {
  /**
   * The installed records come from the zone's record cache when the file
   * is compacted (no second copy is kept here); until a source is set, the
   * records loaded from the file.
   */
  private recordSource: () => Iterable<{ readonly record: AddrRecord; readonly expiresAt: number }>;
  private recordCount: () => number;
  private readonly ops = new Map<string, Map<string, Op>>();
  private compacting: Promise<void> | undefined;
  private seq: number;
  /** Keys of the records withdrawn at a clean stop and not installed again since. */
  private readonly withdrawn = new Set<string>();

  private constructor(
    private readonly journal: Journal<Line>,
    loaded: LoadedState,
    private readonly onError: (err: unknown) => void,
  ) {
    const initial = loaded.records;
    this.recordSource = () => initial;
    this.recordCount = () => initial.length;
    for (const r of initial) if (r.withdrawn === true) this.withdrawn.add(recordKey(r.record));
    for (const [up, list] of loaded.ops) this.ops.set(up, new Map(list.map((op) => [op.key, op])));
    this.seq = loaded.lastSeq;
  }

  static fileFor(dataDir: string, zone: string): string {
    return path.join(dataDir, `${zone}state`);
  }

  /** Loads (or creates) the state file of `zone`. */
  static async open(dataDir: string, zone: string, onError: (err: Error) => void): Promise<{ state: ZoneState; loaded: LoadedState }> {
    const file = ZoneState.fileFor(dataDir, zone);
    const report = (err: unknown): void => onError(err instanceof Error ? err : new Error(String(err)));
    const { journal, entries, damaged } = await Journal.open(file, parseLine, { onError: report });
    // Nothing here is worth refusing to start over (README, "What nsregd
    // keeps on disk"): a lost record line means a record nsregd no longer
    // tracks — its client's next refresh installs it again, and the key's
    // expiry deletes the name's addresses upstream — and a lost operation
    // line means an update not sent again, which the same refresh or expiry
    // repairs. The open compacts below, which drops the damaged lines.
    const warnings: string[] = [];
    const errors: string[] = [];
    for (const d of damaged) {
      if (d.torn) warnings.push(`${describeDamage(d)}: an incomplete last line (interrupted write), dropped`);
      else errors.push(`${describeDamage(d)}: damaged line dropped; the records or operations it held are lost`);
    }
    const records = new Map<string, LoadedRecord>();
    const ops = new Map<string, Map<string, Op>>();
    const bySeq = new Map<string, Map<number, string>>();
    let lastSeq = 0;
    for (const line of entries) {
      if ('r' in line) {
        const [name, type, address, ttl, expiresAt] = line.r;
        const record = { name, type, address, ttl };
        records.set(recordKey(record), line.r.length === 6 ? { record, expiresAt, withdrawn: true } : { record, expiresAt });
      } else if ('d' in line) {
        records.delete(line.d);
      } else if ('o' in line) {
        const [up, seq, kind, key, payload] = line.o;
        const op = opFrom(kind, key, seq, payload);
        if (op === undefined) continue;
        lastSeq = Math.max(lastSeq, seq);
        let m = ops.get(up);
        if (m === undefined) ops.set(up, (m = new Map<string, Op>()));
        if (kind === 'removeName' && op.name !== undefined) {
          for (const k of [...m.keys()]) if (k.startsWith(`${op.name} `)) m.delete(k);
        }
        m.delete(key);
        m.set(key, op);
        let s = bySeq.get(up);
        if (s === undefined) bySeq.set(up, (s = new Map<number, string>()));
        s.set(seq, key);
      } else {
        const [up, seq] = line.a;
        const key = bySeq.get(up)?.get(seq);
        const m = ops.get(up);
        if (key !== undefined && m?.get(key)?.seq === seq) m.delete(key);
      }
    }
    // An add that was never confirmed installed (no record) must not stay upstream: make it a removal.
    const opsOut = new Map<string, Op[]>();
    for (const [up, m] of ops) {
      const list: Op[] = [];
      for (const op of m.values()) {
        if (op.kind === 'add' && !records.has(op.key)) list.push({ ...op, kind: 'remove' });
        else list.push(op);
      }
      if (list.length > 0) opsOut.set(up, list);
    }
    const loaded: LoadedState = { records: [...records.values()], ops: opsOut, lastSeq, warnings, errors };
    const state = new ZoneState(journal, loaded, report);
    // Start from a compact file: what was loaded, nothing else.
    await state.compact();
    return { state, loaded };
  }

  /** Where compaction reads the installed records from (the zone's cache). */
  setRecordSource(all: () => Iterable<{ readonly record: AddrRecord; readonly expiresAt: number }>, count: () => number): void {
    this.recordSource = all;
    this.recordCount = count;
  }

  nextSeq(): number {
    return ++this.seq;
  }

  /**
   * `r` is installed until `expiresAt`. `deadlineOnly`: it was installed
   * already with the same TTL, only its deadline moves — the line may then
   * wait a few milliseconds to share a write (journal.ts, writeDeferred);
   * losing it in a crash only makes the record expire at its old deadline.
   */
  recordInstalled(r: AddrRecord, expiresAt: number, deadlineOnly = false): void {
    this.withdrawn.delete(recordKey(r));
    if (deadlineOnly) {
      this.journal.writeDeferred(recordLine(r, expiresAt));
      this.maybeCompact();
    } else {
      this.write(recordLine(r, expiresAt));
    }
  }

  /**
   * A record removed from the upstreams at a clean stop but kept, with its
   * deadline, so that the next start installs it again.
   */
  recordWithdrawn(r: AddrRecord, expiresAt: number): void {
    this.withdrawn.add(recordKey(r));
    this.write(recordLine(r, expiresAt, true));
  }

  recordRemoved(r: AddrRecord): void {
    this.withdrawn.delete(recordKey(r));
    this.write({ d: recordKey(r) });
  }

  async persist(upstream: string, ops: readonly Op[]): Promise<void> {
    let m = this.ops.get(upstream);
    if (m === undefined) this.ops.set(upstream, (m = new Map<string, Op>()));
    const writes: Array<Promise<void>> = [];
    for (const op of ops) {
      m.set(op.key, op);
      writes.push(this.journal.writeDurable({ o: [upstream, op.seq, op.kind, op.key, opPayload(op)] }));
    }
    await Promise.all(writes);
    this.maybeCompact();
  }

  acked(upstream: string, ops: readonly Op[]): void {
    const m = this.ops.get(upstream);
    for (const op of ops) {
      if (m?.get(op.key)?.seq === op.seq) m.delete(op.key);
      this.write({ a: [upstream, op.seq] });
    }
  }

  /** Forgets the pending operations of an upstream that is no longer configured. */
  dropUpstream(upstream: string): number {
    const n = this.ops.get(upstream)?.size ?? 0;
    this.ops.delete(upstream);
    return n;
  }

  private write(line: Line): void {
    this.journal.write(line);
    this.maybeCompact();
  }

  private maybeCompact(): void {
    let live = this.recordCount();
    for (const m of this.ops.values()) live += m.size;
    if (this.compacting === undefined && this.journal.length > Math.max(10_000, 4 * live)) {
      this.compacting = this.compact()
        .catch((err: unknown) => this.onError(err))
        .finally(() => (this.compacting = undefined));
    }
  }

  /** Rewrites the file as the current state: every installed record and every pending operation. */
  private compact(): Promise<void> {
    return this.journal.compact(() => this.lines());
  }

  private *lines(): Generator<Line> {
    for (const { record, expiresAt } of this.recordSource()) yield recordLine(record, expiresAt, this.withdrawn.has(recordKey(record)));
    for (const [up, m] of this.ops) {
      for (const op of m.values()) yield { o: [up, op.seq, op.kind, op.key, opPayload(op)] };
    }
  }

  /** Resolves once every line written so far has reached the file (lazy ones included). */
  idle(): Promise<void> {
    return this.journal.idle();
  }

  async close(): Promise<void> {
    await this.compacting;
    await this.compact();
    await this.journal.close();
  }
}
