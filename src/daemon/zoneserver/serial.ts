/**
 * SOA serials that increase on every change and survive restarts, crashes
 * included, without a disk write per change: the file holds a reservation
 * (a serial not yet handed out); serials are handed out below it, and a new
 * block is reserved — written atomically — before the reservation runs out.
 * After a crash the next serial starts at the reservation, above every
 * serial ever served. Serial arithmetic wraps per RFC 1982.
 */
import { mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { errnoCode } from '../../errors.js';
import { atomicWrite } from '../../fs/atomic.js';

const BLOCK = 1000;

export class SerialCounter {
  private reserving: Promise<void> | undefined;

  private constructor(
    private readonly file: string,
    private current: number,
    private reservedUpTo: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  /**
   * Opens (or starts) the counter kept in `file`; a new counter starts at the
   * Unix time. `onError` hears of a background reservation that failed (a
   * full disk, say): serving goes on, and the next change tries again.
   */
  static async open(file: string, nowSeconds: number, onError: (err: unknown) => void = () => undefined): Promise<SerialCounter> {
    let start = nowSeconds >>> 0;
    try {
      const text = (await readFile(file, 'utf8')).trim();
      if (/^[0-9]+$/.test(text)) start = Number(text) >>> 0;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    const counter = new SerialCounter(file, start, start, onError);
    await counter.reserve();
    return counter;
  }

  get value(): number {
    return this.current;
  }

  /** The next serial; reserves a new block in the background when half of the current one is used. */
  next(): number {
    this.current = (this.current + 1) >>> 0;
    if (((this.reservedUpTo - this.current) >>> 0) < BLOCK / 2 && this.reserving === undefined) {
      this.reserving = this.reserve()
        .catch((err: unknown) => this.onError(err))
        .finally(() => (this.reserving = undefined));
    }
    return this.current;
  }

  /** Waits for any reservation in progress. */
  async settle(): Promise<void> {
    await this.reserving;
  }

  private async reserve(): Promise<void> {
    const target = (this.current + BLOCK) >>> 0;
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await atomicWrite(this.file, `${target}\n`);
    this.reservedUpTo = target;
  }
}
