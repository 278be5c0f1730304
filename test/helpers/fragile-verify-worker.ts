/**
 * A verification-pool worker (src/daemon/verify-worker.ts) that can be made
 * to fail, for the pool's tests: a job with algorithm HANG_ALGORITHM is
 * never answered, CRASH_ALGORITHM ends the thread (exit code 3),
 * THROW_ALGORITHM throws out of the message handler (an uncaught
 * exception); every other job is answered as the real worker does.
 */
import { parentPort } from 'node:worker_threads';
import { answerJob, type VerifyJob } from '../../src/daemon/verify-job.js';

export const HANG_ALGORITHM = 251;
export const CRASH_ALGORITHM = 252;
export const THROW_ALGORITHM = 253;

const port = parentPort;
if (port !== null) {
  port.on('message', (job: VerifyJob) => {
    if (job.algorithm === HANG_ALGORITHM) return;
    if (job.algorithm === CRASH_ALGORITHM) process.exit(3);
    if (job.algorithm === THROW_ALGORITHM) throw new Error('a worker that throws');
    port.postMessage(answerJob(job));
  });
}
