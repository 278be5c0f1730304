/**
 * The prototype measured in bench/README.md ("Hot path (issue 12)", worker
 * threads or libuv's pool): signature checks on a few worker threads of
 * their own instead of libuv's thread pool, each check synchronous in its
 * thread; the KeyObject is posted along (postMessage shares the imported
 * key, it does not copy it), the signed data and the signature travel in
 * one transferred ArrayBuffer. It did not win (more CPU per check, no
 * higher rate), so the daemon does not use it; it stays here so that
 * `verify-pool.ts` can repeat the comparison. This file is also the
 * workers' script.
 */
import type { KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Sig0Error } from '../../src/dns/errors.js';
import { verifyData } from '../../src/dns/keys.js';
import type { PreparedSig0 } from '../../src/dns/sig0.js';
import { errorMessage } from '../../src/errors.js';

interface VerifyJob {
  id: number;
  algorithm: number;
  publicKey: KeyObject;
  /** The signed data, then the signature. */
  bytes: ArrayBuffer;
  dataLength: number;
}

type VerifyAnswer = { id: number; ok: boolean } | { id: number; error: string };

const WORKER_MARK = 'nsregd-bench-verify-pool';

function answerJob(job: VerifyJob): VerifyAnswer {
  try {
    const data = Buffer.from(job.bytes, 0, job.dataLength);
    const signature = Buffer.from(job.bytes, job.dataLength);
    return { id: job.id, ok: verifyData(job.algorithm, job.publicKey, data, signature) };
  } catch (err) {
    return { id: job.id, error: errorMessage(err) };
  }
}

if (!isMainThread && workerData === WORKER_MARK && parentPort !== null) {
  const port = parentPort;
  port.on('message', (job: VerifyJob) => port.postMessage(answerJob(job)));
}

interface Thread {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve(): void; reject(err: Error): void }>;
}

export class VerifyPool {
  readonly #threads: Thread[] = [];
  #nextId = 0;

  constructor(threads: number = availableParallelism()) {
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(new URL(import.meta.url), { workerData: WORKER_MARK });
      worker.unref();
      const thread: Thread = { worker, pending: new Map() };
      worker.on('message', (a: VerifyAnswer) => {
        const p = thread.pending.get(a.id);
        if (p === undefined) return;
        thread.pending.delete(a.id);
        if (thread.pending.size === 0) worker.unref();
        if ('error' in a) p.reject(new Error(a.error));
        else if (a.ok) p.resolve();
        else p.reject(new Sig0Error('bad-signature', 'signature does not verify'));
      });
      worker.on('exit', () => {
        for (const p of thread.pending.values()) p.reject(new Error('a verification thread exited'));
        thread.pending.clear();
      });
      this.#threads.push(thread);
    }
  }

  /** Same contract as verifyPreparedSig0: resolves when valid, rejects with Sig0Error 'bad-signature' when not. */
  readonly verify = (p: PreparedSig0): Promise<void> => {
    let thread = this.#threads[0];
    for (const t of this.#threads) if (t.pending.size < thread.pending.size) thread = t;
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

  async close(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }
}
