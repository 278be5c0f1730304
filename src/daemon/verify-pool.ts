/**
 * Signature checks on a few worker threads of their own instead of libuv's
 * thread pool (bench/README.md, "Hot path (issue 12)": the measurements
 * behind it).
 *
 * libuv's pool (4 threads by default) also does every file write and fsync
 * of the journals and the replay cache: with all its threads busy verifying,
 * a claim's durable journal line waited behind the signature checks of
 * other requests. Here the checks run on `threads` worker threads (one per
 * core by default), each check synchronous in its thread, so libuv's pool is
 * left to file I/O. How many checks run at once is still the guard's
 * business (guard.ts, `checks-in-flight`): the pool only queues what it is
 * given, on the thread with the fewest checks outstanding.
 *
 * The public key travels as its KeyObject, which postMessage shares with
 * the worker (the same imported key, not a copy): key imports and the key
 * cache stay where they are (src/dns/key-cache.ts), and workers keep no
 * key memory of their own.
 *
 * A worker that dies (an uncaught exception, a crash, terminate) fails the
 * checks it had as a VerifyWorkerError — a server error, never a pass — and
 * the next check that needs its place starts a new one.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Sig0Error } from '../dns/errors.js';
import type { PreparedSig0 } from '../dns/sig0.js';
import { NsregError } from '../errors.js';
import type { VerifyAnswer, VerifyJob } from './verify-job.js';

/** A check that did not get an answer: its worker died, or the pool was closed. */
export class VerifyWorkerError extends NsregError {
  readonly code = 'ERR_VERIFY_WORKER';
}

export interface VerifyPoolOptions {
  /** Worker threads; default one per core (os.availableParallelism()). */
  threads?: number;
  /** Told when a worker dies other than by close() (to log it). */
  onWorkerExit?: (err: Error) => void;
  /** The worker script (tests); default verify-worker.js next to this module. */
  script?: URL;
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

/** One worker and the checks it has not answered yet. */
interface Thread {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
  dead: boolean;
}

export class VerifyPool {
  readonly #script: URL;
  readonly #onWorkerExit: ((err: Error) => void) | undefined;
  readonly #threads: Thread[] = [];
  #nextId = 0;
  #closed = false;

  constructor(opts: VerifyPoolOptions = {}) {
    const n = opts.threads ?? availableParallelism();
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`verification threads must be an integer ≥ 1, got ${n}`);
    this.#script = opts.script ?? new URL('./verify-worker.js', import.meta.url);
    this.#onWorkerExit = opts.onWorkerExit;
    for (let i = 0; i < n; i++) this.#threads.push(this.#start());
  }

  get size(): number {
    return this.#threads.length;
  }

  /** Checks posted and not answered yet, all threads. */
  get outstanding(): number {
    let n = 0;
    for (const t of this.#threads) n += t.pending.size;
    return n;
  }

  /**
   * The signature check of a prepared verification (same contract as
   * verifyPreparedSig0): resolves when valid, rejects with Sig0Error
   * 'bad-signature' when not, with VerifyWorkerError when no answer came,
   * and with a plain Error when the check could not be made (an
   * unsupported algorithm, a key of the wrong kind).
   */
  readonly verify = (p: PreparedSig0): Promise<void> => {
    if (this.#closed) return Promise.reject(new VerifyWorkerError('the verification pool is closed'));
    const thread = this.#pick();
    const id = this.#nextId++;
    const bytes = new ArrayBuffer(p.data.length + p.signature.length);
    const view = new Uint8Array(bytes);
    view.set(p.data, 0);
    view.set(p.signature, p.data.length);
    const job: VerifyJob = { id, algorithm: p.algorithm, publicKey: p.publicKey, bytes, dataLength: p.data.length };
    return new Promise<void>((resolve, reject) => {
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage(job, [bytes]);
    });
  };

  /** Terminates the workers; checks still outstanding fail with VerifyWorkerError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const err = new VerifyWorkerError('the verification pool was closed');
    await Promise.all(
      this.#threads.map(async (t) => {
        t.dead = true;
        this.#failAll(t, err);
        await t.worker.terminate();
      }),
    );
  }

  /** The live thread with the fewest checks outstanding; a dead one is replaced first. */
  #pick(): Thread {
    let best = 0;
    let bestLoad = Infinity;
    for (let i = 0; i < this.#threads.length; i++) {
      let t = this.#threads[i];
      if (t.dead) {
        t = this.#start();
        this.#threads[i] = t;
      }
      if (t.pending.size < bestLoad) {
        best = i;
        bestLoad = t.pending.size;
        if (bestLoad === 0) break;
      }
    }
    return this.#threads[best];
  }

  #start(): Thread {
    const worker = new Worker(this.#script);
    worker.unref();
    const thread: Thread = { worker, pending: new Map(), dead: false };
    let failure: Error | undefined;
    worker.on('message', (a: VerifyAnswer) => this.#answer(thread, a));
    worker.on('error', (err) => {
      failure = err;
    });
    worker.on('exit', (code) => {
      if (thread.dead) return;
      thread.dead = true;
      const err = new VerifyWorkerError(`a verification thread exited (code ${code})`, { cause: failure });
      this.#failAll(thread, err);
      this.#onWorkerExit?.(err);
    });
    return thread;
  }

  #answer(thread: Thread, a: VerifyAnswer): void {
    const p = thread.pending.get(a.id);
    if (p === undefined) return;
    thread.pending.delete(a.id);
    if (thread.pending.size === 0) thread.worker.unref();
    if ('error' in a) p.reject(new Error(a.error));
    else if (a.ok) p.resolve();
    else p.reject(new Sig0Error('bad-signature', 'signature does not verify'));
  }

  #failAll(thread: Thread, err: Error): void {
    const pending = [...thread.pending.values()];
    thread.pending.clear();
    for (const p of pending) p.reject(err);
  }
}
