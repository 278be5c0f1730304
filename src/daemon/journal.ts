/**
 * An append-only file of checksummed JSON lines, for state that must
 * survive a crash: the key database's changes and the zone's records and
 * upstream operations both live in one of these.
 *
 * Line format: `<json>\t<crc32>\n`, the CRC-32 (as zlib computes it) of the
 * JSON text's UTF-8 bytes in 8 lower-case hex digits. JSON text never holds
 * a raw tab, so the last tab separates the two. A line without a tab is a
 * line written before checksums were added and is taken as it is; a line
 * whose checksum does not match is bad.
 *
 * - write()/writeDurable(): lines queued in one event-loop turn go out in one write;
 *   if any of them is durable, one fdatasync covers them all before any
 *   durable promise resolves (group commit).
 * - writeDeferred(): a lazy line that may also wait up to
 *   LAZY_WRITE_DELAY_MS for company — for lines that only move a deadline,
 *   so that a burst of refreshes costs one write() every few milliseconds
 *   rather than one per request (each write is a round trip through libuv's
 *   thread pool, which the signature checks keep busy). Any other line,
 *   idle() and close() send them at once. The order of lines in the file is
 *   always the order of the calls.
 * - Reading: a crash mid-write can leave a torn last line (or, on some file
 *   systems, a tail of zeros). Bad lines after the last good one are
 *   dropped and cut off when the journal is opened (`torn`); a bad line
 *   followed by a good one cannot be a torn write — it is damage done
 *   later. Neither stops the open: every bad line is returned with its
 *   byte offset and raw bytes (`damaged`), for the owner to judge what it
 *   may have held, and the owner's `inspect` hook runs before anything is
 *   cut off, so that it can record what it must (README, "What nsregd
 *   keeps on disk").
 * - compact(): the owner folds the journal into a compact form. The file is
 *   set aside as `<file>.old`; new lines go to a fresh file that starts
 *   with whatever the owner's snapshot will not hold; the owner writes its
 *   snapshot; `.old` is deleted. A crash at any point leaves files that
 *   replay to the same state (`.old` first, then the file), provided every
 *   line states an absolute value — which both users' lines do.
 * Loading costs time proportional to the files' size.
 */
import { ReasonedError, errnoCode, errorMessage } from '../errors.js';
import { mkdir, open, readFile, rename, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { atomicWrite, syncDir, writeAll } from '../fs/atomic.js';

/** A journal that cannot be read, or whose torn tail cannot be cut off. */
export class JournalError extends ReasonedError<'read-failed' | 'write-failed'> {
  readonly code = 'ERR_JOURNAL';
  constructor(
    reason: 'read-failed' | 'write-failed',
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(reason, message, options);
  }
}

function checksum(json: string): string {
  return crc32(json).toString(16).padStart(8, '0');
}

/** One journal line, newline included. */
export function encodeLine(entry: unknown): string {
  const json = JSON.stringify(entry);
  return `${json}\t${checksum(json)}\n`;
}

const BAD = Symbol('bad line');
const CHECKSUM = /^[0-9a-f]{8}$/;

/** The JSON value of one line (without its newline), or BAD. */
function decodeLine(text: string): unknown {
  const tab = text.lastIndexOf('\t');
  let json = text;
  if (tab !== -1) {
    json = text.slice(0, tab);
    const sum = text.slice(tab + 1);
    if (!CHECKSUM.test(sum) || sum !== checksum(json)) return BAD;
  }
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return BAD;
  }
}

/** One line that is not a good entry (bad checksum, not JSON, not an entry, or no newline). */
export interface DamagedLine {
  readonly file: string;
  /** Byte offset of the line's first byte in `file`. */
  readonly offset: number;
  /** The line's bytes, without its newline. */
  readonly bytes: Buffer;
  /** After the last good line: possibly a write a crash cut short. */
  readonly torn: boolean;
}

/** `file: byte offset N (L bytes)`, then the start of the line, escaped, for a log line. */
export function describeDamage(d: DamagedLine): string {
  const shown = d.bytes.subarray(0, 120).toString('latin1');
  const more = d.bytes.length > 120 ? '…' : '';
  return `${d.file}: byte offset ${d.offset} (${d.bytes.length} bytes${d.torn ? ', after the last good line' : ''}): ${JSON.stringify(shown)}${more}`;
}

interface JournalRead<T> {
  entries: T[];
  damaged: DamagedLine[];
  /** Bytes up to and including the last good line. */
  validBytes: number;
  /** Bytes after it: a torn last line. */
  tornBytes: number;
}

/**
 * Reads every whole line, turning each into an entry with `parse`
 * (undefined: not an entry); an absent file reads as empty. Applies the
 * torn-tail rule of the module comment.
 */
async function readJournal<T>(file: string, parse: (value: unknown) => T | undefined): Promise<JournalRead<T> | undefined> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new JournalError('read-failed', file, errorMessage(err), { cause: err });
  }
  const entries: T[] = [];
  const bad: Array<{ offset: number; bytes: Buffer }> = [];
  let good = 0;
  let start = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl === -1 ? buf.length : nl + 1;
    let entry: T | undefined;
    if (nl !== -1) {
      const value = decodeLine(buf.toString('utf8', start, nl));
      if (value !== BAD) entry = parse(value);
    }
    if (entry === undefined) {
      bad.push({ offset: start, bytes: Buffer.from(buf.subarray(start, nl === -1 ? buf.length : nl)) });
    } else {
      entries.push(entry);
      good = end;
    }
    start = end;
  }
  const damaged = bad.map((b) => ({ file, ...b, torn: b.offset >= good }));
  return { entries, damaged, validBytes: good, tornBytes: buf.length - good };
}

export interface JournalOptions {
  /** A lazily written line could not be written (called once per failed batch). */
  readonly onError?: (err: unknown) => void;
  /**
   * The file was found shorter than what this journal wrote to it: someone
   * else cut or replaced it. What it held is still in the owner's memory,
   * so the owner should compact soon.
   */
  readonly onLost?: () => void;
  /**
   * Runs during open() when there are bad lines, before a torn tail is cut
   * off: the owner records what it must about them first (a rejection
   * fails the open, and nothing is cut).
   */
  readonly inspect?: (damaged: readonly DamagedLine[]) => Promise<void>;
}

export interface OpenedJournal<T> {
  readonly journal: Journal<T>;
  /** Every entry, those of a left-over `.old` file first. */
  readonly entries: T[];
  /** Every bad line, those of a left-over `.old` file first. Torn ones are cut off by open(). */
  readonly damaged: readonly DamagedLine[];
}

interface Queued {
  readonly line: string;
  readonly durable: boolean;
  /** May wait LAZY_WRITE_DELAY_MS for company. */
  readonly deferred?: boolean;
  /** Runs synchronously once the line is on disk, before anyone else can look. */
  readonly onWritten?: () => void;
  readonly resolve?: () => void;
  readonly reject?: (err: unknown) => void;
}

const ignore = (): void => undefined;

/**
 * How long deferred lines may wait to be written with others. A crash loses
 * what is queued (a lazy line may always be lost: module comment), so this
 * bounds how much more than before it can be: the last few milliseconds of
 * refreshes, each of which only moves a deadline.
 */
export const LAZY_WRITE_DELAY_MS = 5;

export class Journal<T> {
  readonly file: string;
  /** The journal set aside while a compaction is under way (or after one failed). */
  readonly oldFile: string;
  readonly #dir: string;
  readonly #onError: ((err: unknown) => void) | undefined;
  readonly #onLost: (() => void) | undefined;
  /** Opened on the first write (and again after a failed one). */
  #fh: FileHandle | undefined;
  /** Length of the file up to its last known-good line. */
  #bytes = 0;
  /** A failed write (or a torn tail) may have left bytes after #bytes. */
  #dirty = false;
  #lines = 0;
  #hasOld = false;
  #oldLines = 0;
  #queue: Queued[] = [];
  /** Lines in #queue that are not deferred: when there are any, the queue is written at once. */
  #urgentQueued = 0;
  #scheduled = false;
  /** While deferred lines alone wait (see LAZY_WRITE_DELAY_MS). */
  #lazyTimer: ReturnType<typeof setTimeout> | undefined;
  #writing = false;
  /** During a compaction's hand-over lines wait in the queue (they go to the fresh file). */
  #held = false;
  #compacting: Promise<void> | undefined;
  #idleWaiters: Array<() => void> = [];
  #closed = false;

  private constructor(file: string, options: JournalOptions) {
    this.file = file;
    this.oldFile = `${file}.old`;
    this.#dir = path.dirname(file);
    this.#onError = options.onError;
    this.#onLost = options.onLost;
  }

  /**
   * Reads `file` (and a `.old` left by an interrupted compaction), reports
   * bad lines to `inspect`, cuts off a torn last line, and returns the
   * journal ready for appending (bad lines before good ones stay where they
   * are until the owner compacts). The file itself is opened (created) only
   * by the first write. Throws JournalError.
   */
  static async open<T>(file: string, parse: (value: unknown) => T | undefined, options: JournalOptions = {}): Promise<OpenedJournal<T>> {
    const j = new Journal<T>(file, options);
    try {
      await mkdir(j.#dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new JournalError('read-failed', j.#dir, `cannot create directory: ${errorMessage(err)}`, { cause: err });
    }
    const old = await readJournal(j.oldFile, parse);
    const cur = await readJournal(file, parse);
    const damaged = [...(old?.damaged ?? []), ...(cur?.damaged ?? [])];
    if (damaged.length > 0) await options.inspect?.(damaged);
    j.#hasOld = old !== undefined;
    j.#oldLines = old?.entries.length ?? 0;
    j.#lines = cur?.entries.length ?? 0;
    j.#bytes = cur?.validBytes ?? 0;
    // Cut a torn tail off now, so that new lines do not follow it.
    j.#dirty = (cur?.tornBytes ?? 0) > 0;
    try {
      await j.#cutTail();
    } catch (err) {
      throw new JournalError('write-failed', file, `cannot cut off an incomplete last line: ${errorMessage(err)}`, { cause: err });
    }
    return { journal: j, entries: [...(old?.entries ?? []), ...(cur?.entries ?? [])], damaged };
  }

  /** Lines in the file(s), queued ones included (for deciding when to compact). */
  get length(): number {
    return this.#oldLines + this.#lines + this.#queue.length;
  }

  /** A `.old` file is there: a compaction is under way, or one failed (or was interrupted) and is to be finished. */
  get hasOld(): boolean {
    return this.#hasOld;
  }

  /** Writes `entry` lazily: a crash can lose it. A failure goes to the onError option. */
  write(entry: T): void {
    this.#enqueue({ line: encodeLine(entry), durable: false });
  }

  /** write() that may wait up to LAZY_WRITE_DELAY_MS to share a write() with other lines (module comment). */
  writeDeferred(entry: T): void {
    this.#enqueue({ line: encodeLine(entry), durable: false, deferred: true });
  }

  /**
   * Writes `entry` and resolves once it is on disk (fdatasync). `onWritten`
   * runs synchronously as soon as it is, before any other code — a
   * compaction in particular — can observe the owner's state.
   */
  writeDurable(entry: T, onWritten?: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#enqueue({ line: encodeLine(entry), durable: true, resolve, reject, ...(onWritten === undefined ? {} : { onWritten }) });
    });
  }

  /** Resolves once no line is queued or being written (deferred lines waiting are sent now). */
  async idle(): Promise<void> {
    this.#hurry();
    while (this.#writing || this.#scheduled || this.#queue.length > 0 || this.#compacting !== undefined) {
      if (this.#compacting !== undefined) await this.#compacting.catch(ignore);
      else await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
  }

  /**
   * The compaction hand-over (see the module comment). `capture` runs when
   * every line written so far is on disk and none is being written; it
   * returns the entries the fresh file must start with (what the owner's
   * snapshot will not hold) and may note what the snapshot is to hold.
   * `save` then writes that snapshot. Lines written meanwhile wait and go
   * to the fresh file after the captured entries. Compactions queue behind
   * one another. On failure the files stay consistent; the next compaction
   * finishes the job.
   */
  compact(capture: () => Iterable<T>, save?: () => Promise<void>): Promise<void> {
    // Started at once when none is running, so that lines written after this call go to the fresh file.
    const prior = this.#compacting;
    const run = prior === undefined ? this.#compact(capture, save) : prior.catch(ignore).then(() => this.#compact(capture, save));
    const tracked = run.finally(() => {
      if (this.#compacting === tracked) this.#compacting = undefined;
    });
    this.#compacting = tracked;
    return tracked;
  }

  /**
   * Waits for queued lines, then releases the file. With `removeIfEmpty` an
   * empty journal (and no `.old`) is deleted. Later writes fail.
   */
  async close(options: { removeIfEmpty?: boolean } = {}): Promise<void> {
    await this.idle();
    this.#closed = true;
    await this.#dropHandle();
    if (options.removeIfEmpty === true && this.#bytes === 0 && !this.#hasOld) await unlink(this.file).catch(ignore);
  }

  async #compact(capture: () => Iterable<T>, save: (() => Promise<void>) | undefined): Promise<void> {
    this.#held = true;
    try {
      while (this.#writing) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      // Lines queued before the hand-over (deferred ones waiting for company) go to the file being retired.
      if (this.#queue.length > 0) {
        const early = this.#takeQueue();
        this.#writing = true;
        try {
          await this.#writeBatch(early);
        } finally {
          this.#writing = false;
        }
      }
      if (!this.#hasOld) {
        await this.#cutTail();
        await this.#dropHandle();
        let moved = true;
        try {
          await rename(this.file, this.oldFile);
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw err;
          moved = false;
        }
        if (moved) {
          await syncDir(this.#dir);
          this.#hasOld = true;
          this.#oldLines = this.#lines;
          this.#lines = 0;
          this.#bytes = 0;
        }
        const carry = [...capture()].map(encodeLine);
        if (carry.length > 0) {
          const text = carry.join('');
          await atomicWrite(this.file, text);
          this.#lines = carry.length;
          this.#bytes = Buffer.byteLength(text);
        }
      } else {
        // `.old` is still there from a compaction that failed, and it must
        // not be overwritten: the carried entries are appended to the
        // current file instead, whose lines the snapshot will hold anyway.
        const carry = [...capture()].map(encodeLine);
        if (carry.length > 0) await this.#writeLines(carry.join(''), carry.length, true);
      }
    } finally {
      this.#held = false;
      this.#schedule();
    }
    await save?.();
    if (this.#hasOld) {
      try {
        await unlink(this.oldFile);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
      await syncDir(this.#dir);
      this.#hasOld = false;
      this.#oldLines = 0;
    }
  }

  #enqueue(q: Queued): void {
    if (this.#closed) {
      const err = new Error(`${this.file}: journal is closed`);
      if (q.reject === undefined) this.#onError?.(err);
      else q.reject(err);
      return;
    }
    this.#queue.push(q);
    if (q.deferred !== true) this.#urgentQueued++;
    this.#schedule();
  }

  /**
   * Starts the writer once the event loop has run what is ready now (the
   * I/O callbacks of this turn: every request that completed in it), so
   * that their lines share one write and one fdatasync; when only deferred
   * lines are queued, after LAZY_WRITE_DELAY_MS.
   */
  #schedule(): void {
    if (this.#writing || this.#held || this.#queue.length === 0) return;
    if (this.#scheduled) {
      if (this.#lazyTimer !== undefined && this.#urgentQueued > 0) this.#hurry();
      return;
    }
    this.#scheduled = true;
    if (this.#urgentQueued > 0) {
      setImmediate(() => this.#run());
    } else {
      this.#lazyTimer = setTimeout(() => this.#run(), LAZY_WRITE_DELAY_MS);
    }
  }

  /** Deferred lines waiting for company go out now. */
  #hurry(): void {
    if (this.#lazyTimer === undefined) return;
    clearTimeout(this.#lazyTimer);
    this.#lazyTimer = undefined;
    setImmediate(() => this.#run());
  }

  #run(): void {
    if (this.#lazyTimer !== undefined) {
      clearTimeout(this.#lazyTimer);
      this.#lazyTimer = undefined;
    }
    if (!this.#scheduled) return;
    this.#scheduled = false;
    void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#writing || this.#held) return;
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#held) await this.#writeBatch(this.#takeQueue());
    } finally {
      this.#writing = false;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Empties the queue (a waiting writer start is called off), returning what it held. */
  #takeQueue(): Queued[] {
    const batch = this.#queue;
    this.#queue = [];
    this.#urgentQueued = 0;
    if (this.#lazyTimer !== undefined) {
      clearTimeout(this.#lazyTimer);
      this.#lazyTimer = undefined;
      this.#scheduled = false;
    }
    return batch;
  }

  /** Writes one batch in one write (one fdatasync if any line is durable) and settles its lines. */
  async #writeBatch(batch: readonly Queued[]): Promise<void> {
    let failure: unknown;
    let failed = false;
    try {
      await this.#writeLines(
        batch.map((q) => q.line).join(''),
        batch.length,
        batch.some((q) => q.durable),
      );
    } catch (err) {
      failure = err;
      failed = true;
    }
    if (failed) {
      for (const q of batch) q.reject?.(failure);
      if (batch.some((q) => q.reject === undefined)) this.#onError?.(failure);
    } else {
      for (const q of batch) q.onWritten?.();
      for (const q of batch) q.resolve?.();
    }
  }

  async #writeLines(text: string, count: number, durable: boolean): Promise<void> {
    const data = Buffer.from(text, 'utf8');
    const fh = await this.#handle();
    try {
      await writeAll(fh, data);
      if (durable) await fh.datasync();
    } catch (err) {
      // Part of the batch may have reached the file: the next open of the
      // handle cuts it back to #bytes, so no later line follows a torn one.
      this.#dirty = true;
      await this.#dropHandle();
      throw err;
    }
    this.#bytes += data.length;
    this.#lines += count;
  }

  async #handle(): Promise<FileHandle> {
    if (this.#fh !== undefined) return this.#fh;
    const fh = await open(this.file, 'a', 0o600);
    try {
      const { size } = await fh.stat();
      if (size > this.#bytes) {
        await fh.truncate(this.#bytes);
      } else if (size < this.#bytes) {
        this.#bytes = size;
        this.#onLost?.();
      }
      this.#dirty = false;
      // The file may have just been created: make its name durable too.
      await syncDir(this.#dir);
    } catch (err) {
      await fh.close().catch(ignore);
      throw err;
    }
    this.#fh = fh;
    return fh;
  }

  /** Cuts what a failed write or a torn line left after the last good line. */
  async #cutTail(): Promise<void> {
    if (!this.#dirty) return;
    let fh: FileHandle;
    try {
      fh = await open(this.file, 'r+');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      this.#dirty = false;
      return;
    }
    try {
      const { size } = await fh.stat();
      if (size > this.#bytes) {
        await fh.truncate(this.#bytes);
        await fh.sync();
      }
    } finally {
      await fh.close();
    }
    this.#dirty = false;
  }

  async #dropHandle(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close().catch(ignore);
  }
}
