/**
 * Helpers for users' own tests: `simple-durable-jobs/testing`.
 * @module
 */
import { isDeepStrictEqual } from 'node:util';
import { DurableJobsError, WaitTimeoutError } from '../errors.js';
import { toJob } from '../core/job-mapper.js';
import type { Queue } from '../queue/queue.js';
import type { Job, JobStatus } from '../types.js';

/** Filters of {@link requireEnqueued}. */
export interface RequireEnqueuedOptions {
  /** The job's args must deep-equal this (after the JSON round trip). */
  args?: unknown;
  /** Only jobs of this queue. */
  queue?: string;
  /** Statuses that count. @default ['pending'] */
  statuses?: JobStatus[];
}

/**
 * Asserts that a job of `type` was enqueued (and is still pending, by default); returns the
 * newest match. Throws an `Error` describing what was found otherwise.
 * @example const job = await requireEnqueued(queue, 'send-email', { args: { to: 'a@example.com' } });
 */
export async function requireEnqueued<Args = unknown>(queue: Queue, type: string, options: RequireEnqueuedOptions = {}): Promise<Job<Args>> {
  const statuses = options.statuses ?? ['pending'];
  const found: Job[] = [];
  const p: Parameters<Queue['storage']['jobList']>[0] = { type, statuses, limit: 1000, order: 'desc' };
  if (options.queue !== undefined) p.queue = options.queue;
  for (const row of await queue.storage.jobList(p)) found.push(toJob(row));
  const match = found.find((j) => !('args' in options) || isDeepStrictEqual(j.args, options.args));
  if (!match) {
    const seen = found.slice(0, 5).map((j) => JSON.stringify(j.args)).join(', ');
    throw new Error(`expected a ${statuses.join('/')} job of type "${type}"${'args' in options ? ` with args ${JSON.stringify(options.args)}` : ''}; found ${found.length}${seen ? `: ${seen}` : ''}`);
  }
  return match as Job<Args>;
}

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
