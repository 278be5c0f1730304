/**
 * Replacing a file so that a crash leaves either the old content or the
 * new, never a mix: write a temporary file in the same directory, fsync it,
 * rename it over the target, fsync the directory (so the rename itself is
 * durable). On any failure the temporary file is removed and the target is
 * left as it was. Every file nsregd rewrites goes through here.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';

export type Chunk = string | Uint8Array;

export interface AtomicWriteOptions {
  /** Permissions of the new file (before the umask). Default 0o600. */
  readonly mode?: number;
  /**
   * Called once the data is written and fsynced, with the temporary file
   * still open at its end, just before the rename: what it writes goes
   * with the new file but is not fsynced (for an append-only file whose
   * appends never are, to carry over what was appended to the old one
   * meanwhile). A failure aborts the write like an I/O error does.
   */
  readonly beforeRename?: (tmp: FileHandle) => Promise<void>;
}

/** Makes the directory entries of `dir` (creations, renames, removals in it) durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes all of `chunk` at the handle's position (a single write may take only part of it). */
export async function writeAll(fh: FileHandle, chunk: Chunk): Promise<void> {
  const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

const ignore = (): void => undefined;

/**
 * Replaces `file` with `data` atomically (see the module comment). `data`
 * may be a whole string/buffer or an (async) iterable of chunks, written in
 * turn — each write yields to the event loop, so a large file does not
 * stall other work. A chunk source that throws aborts the write like an
 * I/O error does.
 */
export async function atomicWrite(
  file: string,
  data: Chunk | Iterable<Chunk> | AsyncIterable<Chunk>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const dir = path.dirname(file);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', options.mode ?? 0o600);
  try {
    try {
      if (typeof data === 'string' || data instanceof Uint8Array) {
        await writeAll(fh, data);
      } else {
        for await (const chunk of data) await writeAll(fh, chunk);
      }
      await fh.sync();
      await options.beforeRename?.(fh);
    } catch (err) {
      await fh.close().catch(ignore);
      throw err;
    }
    await fh.close();
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(ignore);
    throw err;
  }
  await syncDir(dir);
}
