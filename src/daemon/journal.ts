/**
 * An append-only file of JSON lines with group commit, for state that must
 * survive a crash (the zone's records and upstream operations).
 *
 * - append(entry, durable): lines queued in the same tick go out in one
 *   write; if any of them is durable, one fdatasync covers them all before
 *   their promises resolve.
 * - A crash mid-write can leave a torn last line: readJournal() drops it.
 * - rewrite(entries): compaction — a new file (temp, fsync, rename, fsync
 *   dir) replaces the old one, so a crash leaves either the old or the new.
 * Loading costs time proportional to the file's size.
 */
import { NsregError, errnoCode, errorMessage } from '../errors.js';
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { atomicWrite } from '../fs/atomic.js';
import * as path from 'node:path';

export interface JournalRead<T> {
  entries: T[];
  /** The file was there (an absent journal reads as empty). */
  exists: boolean;
  /** Bytes up to and including the last good line. */
  validBytes: number;
  /** Bytes of a torn last line that were ignored. */
  tornBytes: number;
}

/** A journal that cannot be read, or whose damage is not a torn last line. */
export class JournalError extends NsregError {
  readonly code = 'ERR_JOURNAL';
  constructor(
    readonly reason: 'read-failed' | 'damaged',
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'JournalError';
  }
}

/**
 * Reads every whole line with `parse` (undefined: not an entry). A crash
 * while appending can leave the last line incomplete (or, on some file
 * systems, followed by zeros): bad lines after the last good one are
 * dropped. A bad line followed by a good one is not a torn write but
 * damage, and throws JournalError('damaged').
 */
export async function readJournal<T>(file: string, parse: (line: string) => T | undefined): Promise<JournalRead<T>> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return { entries: [], exists: false, validBytes: 0, tornBytes: 0 };
    throw new JournalError('read-failed', file, errorMessage(err), { cause: err });
  }
  const entries: T[] = [];
  let good = 0;
  let badLine: number | undefined;
  let start = 0;
  let line = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    line++;
    const end = nl === -1 ? buf.length : nl + 1;
    const entry = nl === -1 ? undefined : parse(buf.toString('utf8', start, nl));
    if (entry === undefined) {
      badLine ??= line;
    } else {
      if (badLine !== undefined) {
        throw new JournalError('damaged', file, `${file}: line ${badLine} is not a journal entry, and good entries follow it`);
      }
      entries.push(entry);
      good = end;
    }
    start = end;
  }
  return { entries, exists: true, validBytes: good, tornBytes: buf.length - good };
}

/** A line parser for JSON entries: undefined for anything that is not JSON or not an entry. */
export function jsonLines<T>(parse: (v: unknown) => T | undefined): (line: string) => T | undefined {
  return (line) => {
    try {
      return parse(JSON.parse(line));
    } catch {
      return undefined;
    }
  };
}

interface Pending {
  line: string;
  durable: boolean;
  resolve(): void;
  reject(err: Error): void;
}

export class Journal {
  private fh: FileHandle | undefined;
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;
  /** While a compaction runs, appends wait in the queue and go to the new file. */
  private rewriting = false;
  private lines = 0;

  private constructor(readonly file: string) {}

  /** Opens for appending (creating the directory and file), cutting off a torn tail of `keepBytes`. */
  static async open(file: string, validLines: number, tornBytes: number): Promise<Journal> {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const j = new Journal(file);
    j.fh = await open(file, 'a+', 0o600);
    if (tornBytes > 0) {
      const { size } = await j.fh.stat();
      await j.fh.truncate(size - tornBytes);
    }
    j.lines = validLines;
    return j;
  }

  /** Lines in the file (for deciding when to compact). */
  get length(): number {
    return this.lines;
  }

  append(entry: unknown, durable: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line: JSON.stringify(entry) + '\n', durable, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.writing !== undefined || this.rewriting) return;
    this.writing = (async () => {
      while (this.queue.length > 0 && !this.rewriting) {
        const batch = this.queue;
        this.queue = [];
        try {
          const fh = this.fh;
          if (fh === undefined) throw new Error(`${this.file}: journal is closed`);
          await fh.appendFile(batch.map((p) => p.line).join(''));
          if (batch.some((p) => p.durable)) await fh.datasync();
          this.lines += batch.length;
          for (const p of batch) p.resolve();
        } catch (err) {
          for (const p of batch) p.reject(err as Error);
        }
      }
    })().finally(() => {
      this.writing = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  /** Waits until everything appended so far is written. */
  async drain(): Promise<void> {
    while (this.writing !== undefined) await this.writing;
  }

  /**
   * Replaces the file's content with `entries` atomically (compaction).
   * `entries` must describe the state after every append made so far;
   * appends made meanwhile are held back and written to the new file.
   */
  async rewrite(entries: readonly unknown[]): Promise<void> {
    // Hold new appends first, then let the write in progress finish. Held
    // lines may repeat what `entries` already says; replaying them in order
    // after it gives the same state, since each line sets its key's state.
    this.rewriting = true;
    try {
      await this.drain();
      await this.replaceWith(entries);
    } finally {
      this.rewriting = false;
      this.kick();
    }
  }

  private async replaceWith(entries: readonly unknown[]): Promise<void> {
    function* lines(): Generator<string> {
      let chunk = '';
      for (const e of entries) {
        chunk += JSON.stringify(e) + '\n';
        if (chunk.length >= 65536) {
          yield chunk;
          chunk = '';
        }
      }
      yield chunk;
    }
    await atomicWrite(this.file, lines());
    await this.fh?.close();
    this.fh = await open(this.file, 'a', 0o600);
    this.lines = entries.length;
  }

  async close(): Promise<void> {
    await this.drain();
    await this.fh?.close();
    this.fh = undefined;
  }
}
