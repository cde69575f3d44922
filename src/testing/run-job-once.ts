/**
 * `runJobOnce()`: runs one attempt of a job with a temporary worker (real time).
 * @module
 */
import { DurableJobsError, WaitTimeoutError } from '../errors.js';
import type { Queue } from '../queue/queue.js';
import type { Job } from '../types.js';

/** Options of {@link runJobOnce}. */
export interface RunJobOnceOptions {
  /** Give up after this many ms. @default 10000 */
  timeout?: number;
}

/**
 * Runs one attempt of a job with a temporary in-process worker on the job's queue, and resolves
 * with the job after that attempt (completed, failed, pending for a retry, or waiting).
 * Other ready jobs of the same queue may run too.
 * @throws WaitTimeoutError when the attempt does not end in time
 */
export async function runJobOnce<Args = unknown, Result = unknown>(queue: Queue, jobId: string, options: RunJobOnceOptions = {}): Promise<Job<Args, Result>> {
  const before = await queue.getJob(jobId);
  if (!before) throw new DurableJobsError('JOB_NOT_FOUND', `job ${jobId} not found`);
  const worker = queue.newWorker({ queues: { [before.queue]: { concurrency: 1 } }, handleSignals: false, pollInterval: 20, maintenanceInterval: 50 });
  const running = worker.start();
  const deadline = Date.now() + (options.timeout ?? 10_000);
  try {
    for (;;) {
      const job = await queue.getJob<Args, Result>(jobId);
      if (job && job.status !== 'running' && (job.attempt > before.attempt || job.status !== 'pending' || job.lastError !== before.lastError)) return job;
      if (Date.now() > deadline) throw new WaitTimeoutError(`job ${jobId} did not finish an attempt in time`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await worker.stop();
    await running;
  }
}
