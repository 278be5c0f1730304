/**
 * The replay cache on disk, so that a restart does not reopen replays: one
 * file per daemon, `<data-dir>/replay-cache`, one line per accepted request:
 * `<expiry, ms since the epoch> <replay key>`. Entries live until their
 * signature expires, which `max-sig-validity` bounds, so the file stays
 * small: it is rewritten (src/fs/atomic.ts) with the live entries when
 * opened and whenever it has grown to twice what the last rewrite kept.
 *
 * A line is appended with one synchronous write() before the request it
 * records is answered: a few dozen bytes into the page cache cost
 * microseconds on the event loop, where going through the thread pool (as
 * the journals do) waited behind the signature checks queued there and
 * added ~10 ms to every accepted request under load (bench/flood.ts). So
 * neither a restart nor a killed process forgets an entry. Lines are not
 * fsynced one by one: a power loss may forget the last ones (as it may the
 * key database's last refreshes), and so may a crash in the instant
 * between a rewrite's rename and the re-append of the lines accepted while
 * it ran. A torn last line is ignored when the file is read.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import type { Clock } from '../clock.js';
import { errnoCode } from '../errors.js';
import { atomicWrite } from '../fs/atomic.js';
import type { ReplayPersistence } from './guard.js';

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

export class ReplayStore implements ReplayPersistence {
  /** Replay key → expiry of every entry appended since the last rewrite (and kept by it). */
  private readonly live = new Map<string, number>();
  private lines = 0;
  private compactAt = MIN_COMPACT_LINES;
  /** While a rewrite runs: the lines appended meanwhile, to append to the new file. */
  private appendedDuringRewrite: string[] | undefined;
  private fd: number | undefined;
  private rewriting: Promise<void> | undefined;
  private closed = false;

  private constructor(
    readonly file: string,
    private readonly clock: Clock,
    private readonly onError: (err: unknown) => void,
  ) {}

  static fileFor(dataDir: string): string {
    return path.join(dataDir, 'replay-cache');
  }

  /** Loads (or creates) the replay file in `dataDir`. Throws on I/O errors other than a missing file. */
  static async open(dataDir: string, clock: Clock, onError: (err: unknown) => void): Promise<OpenedReplayStore> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const store = new ReplayStore(ReplayStore.fileFor(dataDir), clock, onError);
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
      const e = Number(m[1]);
      store.live.set(m[2], Math.max(e, store.live.get(m[2]) ?? 0));
    }
    await store.rewrite();
    const warnings = bad === 0 ? [] : [`${store.file}: ignored ${bad} unreadable line(s) (an interrupted write)`];
    return { store, entries: [...store.live].map(([key, expiresAtMs]) => ({ key, expiresAtMs })), warnings };
  }

  get size(): number {
    return this.live.size;
  }

  add(key: string, expiresAtMs: number): Promise<void> {
    this.live.set(key, expiresAtMs);
    const line = lineOf(key, expiresAtMs);
    try {
      this.append(line);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.appendedDuringRewrite?.push(line);
    if (this.appendedDuringRewrite === undefined && this.lines >= this.compactAt) {
      this.rewriting = this.rewrite()
        .catch((err: unknown) => this.onError(err))
        .finally(() => (this.rewriting = undefined));
    }
    return Promise.resolve();
  }

  private append(line: string): void {
    if (this.fd === undefined) throw new Error(`${this.file} is closed`);
    const buf = Buffer.from(line);
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off);
    this.lines++;
  }

  /** Replaces the file with the unexpired entries (atomically), then appends what came meanwhile. */
  private async rewrite(): Promise<void> {
    const now = this.clock.now();
    for (const [k, e] of this.live) if (e <= now) this.live.delete(k);
    const snapshot = [...this.live].map(([k, e]) => lineOf(k, e)).join('');
    const kept = this.live.size;
    this.appendedDuringRewrite = [];
    try {
      await atomicWrite(this.file, snapshot);
    } catch (err) {
      this.appendedDuringRewrite = undefined;
      throw err;
    }
    const meanwhile = this.appendedDuringRewrite;
    this.appendedDuringRewrite = undefined;
    if (this.closed) return;
    const old = this.fd;
    this.fd = openSync(this.file, 'a', 0o600);
    if (old !== undefined) closeSync(old);
    this.lines = kept;
    for (const line of meanwhile) this.append(line);
    this.compactAt = Math.max(MIN_COMPACT_LINES, 2 * this.live.size);
  }

  /** Resolves once no rewrite is under way. */
  async idle(): Promise<void> {
    while (this.rewriting !== undefined) await this.rewriting;
  }

  /** Waits for a rewrite under way, then closes the file; a file without live entries is removed. */
  async close(): Promise<void> {
    await this.idle();
    this.closed = true;
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    const now = this.clock.now();
    if ([...this.live.values()].every((e) => e <= now)) await unlink(this.file).catch(() => undefined);
  }
}
