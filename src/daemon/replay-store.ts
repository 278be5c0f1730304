/**
 * The replay cache on disk, so that a restart does not reopen replays: one
 * file per daemon, `<data-dir>/replay-cache`, one line per accepted request:
 * `<expiry, ms since the epoch> <replay key>`. Entries live until their
 * signature expires, which `max-sig-validity` bounds, so the file stays
 * small: it is rewritten (src/fs/atomic.ts) with the live entries when
 * opened and whenever it has grown to twice what the last rewrite kept.
 *
 * Group commit: the lines of requests accepted while a write is under way
 * (or in the same tick) go out together in the next write(), through
 * libuv's thread pool, and each add() resolves only once its line has been
 * written — the handler answers after that, so a killed process never
 * forgets a request it answered (what the reply promises is on disk, as far
 * as the process can see). This replaced one synchronous write() per
 * request on the event loop: under load the batched writes cost a fraction
 * of the event loop's time (bench/README.md, "Hot path (issue 12)"), and the
 * wait behind the thread pool's queue is bounded by the guard's check slots
 * (as many as the pool has threads by default), not by the load.
 *
 * Lines are not fsynced: a power loss may forget the last ones (as it may
 * the key database's last refreshes). A crash never does: the lines
 * appended while a rewrite writes the new file are written to it too
 * before it replaces the old one, and new lines wait from then until the
 * new file is open, so an answered request's line is always in the file
 * at the path. Forgetting an entry reopens that one request to replay
 * until its signature expires; since the handler holds the name's lock
 * until the line is written, a later request for the same name is
 * accepted only after it, so a replay can never undo a later update that
 * survived the crash — at worst it re-applies an update its key holder
 * made. A torn last line is ignored when the file is read.
 */
import { mkdir, open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import type { Clock } from '../clock.js';
import { errnoCode } from '../errors.js';
import { atomicWrite, writeAll } from '../fs/atomic.js';
import { ExpiryQueue } from './expiry-queue.js';
import { DEFAULT_GUARD, type ReplayPersistence } from './guard.js';

/** Lines appended before the first rewrite is considered, however few are live. */
const MIN_COMPACT_LINES = 1024;
/** Expiry, then a replay key: base64 of a SHA-256 (see replayKey). */
const LINE = /^(\d{1,16}) ([A-Za-z0-9+/]{43}=)$/;

export interface OpenedReplayStore {
  store: ReplayStore;
  /** The unexpired entries, for RequestGuard.loadReplays. */
  entries: Array<{ key: string; expiresAtMs: number }>;
  warnings: readonly string[];
}

const lineOf = (key: string, expiresAtMs: number): string => `${expiresAtMs} ${key}\n`;

/** Lines per chunk of a rewrite (about 240 KB). */
const SNAPSHOT_CHUNK_LINES = 4096;

/** The lines of `entries`, a chunk at a time. */
function* snapshotChunks(entries: ReadonlyArray<{ readonly key: string; readonly deadline: number }>): Generator<string> {
  for (let i = 0; i < entries.length; i += SNAPSHOT_CHUNK_LINES) {
    let chunk = '';
    for (const e of entries.slice(i, i + SNAPSHOT_CHUNK_LINES)) chunk += lineOf(e.key, e.deadline);
    yield chunk;
  }
}

interface Pending {
  readonly line: string;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class ReplayStore implements ReplayPersistence {
  /**
   * Replay key → expiry of every entry appended since the last rewrite (and
   * kept by it), at most `capacity` of them: beyond it the one expiring
   * first is dropped, as the guard's own list does (the file holds no more
   * than the guard could use again).
   */
  private readonly live = new ExpiryQueue<null>();
  private lines = 0;
  private compactAt = MIN_COMPACT_LINES;
  /** While a rewrite writes the new file: the writes of lines to the old one meanwhile (text, lines), for the new one. */
  private appendedDuringRewrite: Array<readonly [string, number]> | undefined;
  private fh: FileHandle | undefined;
  /** Lines waiting for the next write. */
  private pending: Pending[] = [];
  /** The writer runs (a write under way, or one about to start). */
  private draining = false;
  /** A rewrite is swapping files: the writer waits. */
  private held = false;
  private idleWaiters: Array<() => void> = [];
  private rewriting: Promise<void> | undefined;
  private closed = false;

  private constructor(
    readonly file: string,
    private readonly clock: Clock,
    private readonly onError: (err: unknown) => void,
    private readonly capacity: number,
  ) {}

  /** Keeps `key` until `expiresAtMs` (the later of two), within the capacity. */
  private keep(key: string, expiresAtMs: number): void {
    this.live.set(key, Math.max(expiresAtMs, this.live.deadlineOf(key) ?? 0), null);
    if (this.live.size > this.capacity) this.live.pop();
  }

  static fileFor(dataDir: string): string {
    return path.join(dataDir, 'replay-cache');
  }

  /** Loads (or creates) the replay file in `dataDir`. Throws on I/O errors other than a missing file. */
  /** `capacity`: entries kept at most (default the guard's replay capacity). */
  static async open(dataDir: string, clock: Clock, onError: (err: unknown) => void, capacity = DEFAULT_GUARD.replayCapacity): Promise<OpenedReplayStore> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const store = new ReplayStore(ReplayStore.fileFor(dataDir), clock, onError, capacity);
    let text = '';
    try {
      text = await readFile(store.file, 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    let bad = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      const m = LINE.exec(line);
      if (m === null) {
        bad++;
        continue;
      }
      store.keep(m[2], Number(m[1]));
    }
    await store.rewrite();
    const warnings = bad === 0 ? [] : [`${store.file}: ignored ${bad} unreadable line(s) (an interrupted write)`];
    return { store, entries: [...store.live.entries()].map((e) => ({ key: e.key, expiresAtMs: e.deadline })), warnings };
  }

  get size(): number {
    return this.live.size;
  }

  /** Resolves once the entry's line is written (not fsynced); rejects when it cannot be. */
  add(key: string, expiresAtMs: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.file} is closed`));
    this.keep(key, expiresAtMs);
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ line: lineOf(key, expiresAtMs), resolve, reject });
      this.startWriter();
    });
  }

  /** Starts the writer once the event loop has run what is ready now, so that the lines of every request completed in this turn share one write. */
  private startWriter(): void {
    if (this.draining || this.held || this.pending.length === 0) return;
    this.draining = true;
    setImmediate(() => void this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0 && !this.held) {
        const batch = this.pending;
        this.pending = [];
        const text = batch.length === 1 ? batch[0].line : batch.map((p) => p.line).join('');
        try {
          await this.append(text, batch.length);
        } catch (err) {
          for (const p of batch) p.reject(err);
          continue;
        }
        this.appendedDuringRewrite?.push([text, batch.length]);
        for (const p of batch) p.resolve();
      }
    } finally {
      this.draining = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
    if (this.appendedDuringRewrite === undefined && this.rewriting === undefined && !this.closed && this.lines >= this.compactAt) {
      this.rewriting = this.rewrite()
        .catch((err: unknown) => this.onError(err))
        .finally(() => (this.rewriting = undefined));
    }
  }

  private async append(text: string, count: number): Promise<void> {
    if (this.fh === undefined) throw new Error(`${this.file} is closed`);
    await writeAll(this.fh, text);
    this.lines += count;
  }

  /** Resolves once the writer has stopped (nothing pending, or held by a rewrite). */
  private async writerStopped(): Promise<void> {
    while (this.draining) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Replaces the file with the unexpired entries (atomically, in chunks, so
   * that a full cache does not hold the event loop). Lines appended to the
   * old file meanwhile are written to the new one before it takes the old
   * one's place; from then until the new file is open, the writer waits.
   */
  private async rewrite(): Promise<void> {
    this.live.popDue(this.clock.now());
    const entries = [...this.live.entries()];
    let lines = entries.length;
    let swapping = false;
    this.appendedDuringRewrite = [];
    try {
      await atomicWrite(this.file, snapshotChunks(entries), {
        beforeRename: async (tmp) => {
          swapping = true;
          this.held = true;
          await this.writerStopped();
          const meanwhile = this.appendedDuringRewrite ?? [];
          this.appendedDuringRewrite = undefined;
          if (meanwhile.length > 0) await writeAll(tmp, meanwhile.map(([text]) => text).join(''));
          for (const [, count] of meanwhile) lines += count;
        },
      });
      if (this.closed) return;
      const old = this.fh;
      this.fh = await open(this.file, 'a', 0o600);
      await old?.close().catch(() => undefined);
      this.lines = lines;
      this.compactAt = Math.max(MIN_COMPACT_LINES, 2 * this.live.size);
    } finally {
      this.appendedDuringRewrite = undefined;
      if (swapping) {
        this.held = false;
        this.startWriter();
      }
    }
  }

  /** Resolves once no line is waiting or being written and no rewrite is under way. */
  async idle(): Promise<void> {
    while (this.rewriting !== undefined || this.draining || this.pending.length > 0) {
      if (this.rewriting !== undefined) await this.rewriting;
      else await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  /** Writes what is waiting, waits for a rewrite under way, then closes the file; a file without live entries is removed. */
  async close(): Promise<void> {
    await this.idle();
    this.closed = true;
    const fh = this.fh;
    this.fh = undefined;
    if (fh === undefined) return;
    await fh.close();
    const now = this.clock.now();
    if ([...this.live.entries()].every((e) => e.deadline <= now)) await unlink(this.file).catch(() => undefined);
  }
}
