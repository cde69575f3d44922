/**
 * `requireEnqueued()`: asserts that a job was enqueued.
 * @module
 */
import { isDeepStrictEqual } from 'node:util';
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
