/**
 * One signature check as the verification pool (verify-pool.ts) hands it
 * to a worker thread, and its answer. The signed data and the signature
 * travel in one transferred ArrayBuffer (data first, then the signature):
 * a Buffer posted as it is would copy the whole slab it was cut from.
 */
import type { KeyObject } from 'node:crypto';
import { verifyData } from '../dns/keys.js';
import { errorMessage } from '../errors.js';

export interface VerifyJob {
  id: number;
  algorithm: number;
  /** Shared with the posting thread, not copied (a KeyObject is posted as a handle to the same key). */
  publicKey: KeyObject;
  /** The signed data, then the signature. */
  bytes: ArrayBuffer;
  dataLength: number;
}

/** Whether the signature is valid, or why it could not be checked (an unsupported algorithm, a key of the wrong kind). */
export type VerifyAnswer = { id: number; ok: boolean } | { id: number; error: string };

/** The check itself, on the calling thread: verifyData's result, or its exception's message. */
export function answerJob(job: VerifyJob): VerifyAnswer {
  try {
    const data = Buffer.from(job.bytes, 0, job.dataLength);
    const signature = Buffer.from(job.bytes, job.dataLength);
    return { id: job.id, ok: verifyData(job.algorithm, job.publicKey, data, signature) };
  } catch (err) {
    return { id: job.id, error: errorMessage(err) };
  }
}
