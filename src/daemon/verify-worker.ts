/**
 * A thread of the verification pool (verify-pool.ts): answers each posted
 * signature check (verify-job.ts) synchronously, in the order received.
 */
import { parentPort } from 'node:worker_threads';
import { answerJob, type VerifyJob } from './verify-job.js';

const port = parentPort;
if (port === null) throw new Error('verify-worker.js runs only as a worker thread');
port.on('message', (job: VerifyJob) => port.postMessage(answerJob(job)));
