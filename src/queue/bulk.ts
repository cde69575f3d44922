/**
 * Acting on many jobs by filter: `retryJobs`, `cancelJobs`, `deleteJobs`, and `deleteJob`.
 * Matching jobs are walked oldest first by id (a workflow before its sub-jobs), up to the newest
 * job when the action started, in batches (one short transaction each); a job that changed in
 * between is skipped with a reason, never an error.
 * @internal
 */
import { DuplicateJobError, InvalidArgumentError, InvalidStateError, JobNotFoundError } from '../errors.js';
import { SKIP_ALREADY_FINISHED, SKIP_NOT_FOUND, SKIP_UNIQUE_HELD, type BulkResult, type JobFilter } from '../storage/storage.js';
import type { JobStatus } from '../types.js';
import type { QueueCore } from '../core/queue-core.js';
import { checkInt, checkName, checkOptions } from '../core/validate.js';
import { checkFilter, FILTER_KEYS } from './listing.js';
import type { BulkOptions, BulkOutcome, JobFilterOptions } from './operator-types.js';

/** The bulk actions and the statuses each acts on (its default status filter). */
const ACTS_ON = {
  retry: ['failed', 'cancelled'],
  cancel: ['pending', 'running', 'waiting', 'paused'],
  delete: ['completed', 'failed', 'cancelled'],
} as const satisfies Record<string, readonly JobStatus[]>;

type Action = keyof typeof ACTS_ON;

/** `queue.retryJobs()` / `cancelJobs()` / `deleteJobs()`. */
export async function bulkAction(core: QueueCore, action: Action, filterOptions: JobFilterOptions, options: BulkOptions | undefined): Promise<BulkOutcome> {
  const name = `${action}Jobs`;
  const filter = checkFilter(checkOptions<JobFilterOptions>(filterOptions, `${name} filter`, FILTER_KEYS));
  const o = checkOptions<BulkOptions>(options, `${name} options`, ['onProgress', 'batchSize']);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new InvalidArgumentError(`${name} onProgress must be a function`);
  const batchSize = o.batchSize === undefined ? 200 : checkInt(o.batchSize, `${name} batchSize`, 1, 500);
  const allowed: readonly JobStatus[] = ACTS_ON[action];
  const wrong = (filter.statuses ?? []).filter((s) => !allowed.includes(s));
  if (wrong.length > 0) throw new InvalidArgumentError(`${name} acts on ${allowed.join(', ')} jobs only, not ${wrong.join(', ')}`);
  const scoped: JobFilter = { ...filter, statuses: filter.statuses ?? allowed };

  const total = await core.storage.jobCount(scoped);
  const out: BulkOutcome = { count: 0, skipped: [] };
  const queues = new Set<string>();
  // Ids are time-ordered (UUIDv7: the first 12 hex digits are the millisecond): the largest id
  // of this millisecond bounds every job created before the action started, by any generator.
  const upTo = `${core.ids.next().slice(0, 13)}-7fff-bfff-ffffffffffff`;
  /** Jobs acted on, and their sub-jobs met since (taken along with them). */
  const touched = new Set<string>();
  const act = (ids: string[]): Promise<BulkResult> =>
    action === 'retry' ? retryBatch(core, ids) : action === 'delete' ? core.storage.jobDeleteMany({ ids }) : cancelBatch(core, ids);
  let afterId: string | undefined;
  for (;;) {
    // Oldest first: a workflow comes before its sub-jobs (a parent's id is older than its children's).
    const listed = await core.storage.jobList({ ...scoped, limit: batchSize, order: 'asc', ...(afterId === undefined ? {} : { afterId }) });
    const rows = listed.filter((r) => r.id <= upTo);
    if (rows.length === 0) break;
    afterId = rows[rows.length - 1]!.id;
    let left = rows;
    while (left.length > 0) {
      // A sub-job of a job acted on went with it (retried from scratch, cancelled or deleted
      // with its subtree): not acted on again, not reported as skipped.
      left = left.filter((row) => {
        if (row.parentId === null || !touched.has(row.parentId)) return true;
        touched.add(row.id);
        return false;
      });
      // Parents in this batch go first; their sub-jobs wait for the parents' outcome.
      const here = new Set(left.map((r) => r.id));
      const now = left.filter((r) => r.parentId === null || !here.has(r.parentId));
      left = left.filter((r) => r.parentId !== null && here.has(r.parentId));
      if (now.length === 0) break;
      const r = await act(now.map((row) => row.id));
      for (const id of r.done) touched.add(id);
      out.count += r.done.length;
      out.skipped.push(...r.skipped);
      if (action === 'retry') for (const row of now) if (touched.has(row.id)) queues.add(row.queue);
    }
    o.onProgress?.({ done: out.count, skipped: out.skipped.length, total: Math.max(total, out.count + out.skipped.length) });
    if (listed.length < batchSize || rows.length < listed.length) break;
    // Let the process's own workers and timers run between batches (SQLite calls are synchronous).
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  for (const q of queues) for (const w of core.wakers) w.wake(q);
  return out;
}

/** One retry batch; a unique key taken between the check and the write falls back to one job at a time. */
async function retryBatch(core: QueueCore, ids: string[]): Promise<BulkResult> {
  try {
    return await core.storage.jobRetryMany({ ids });
  } catch (e) {
    if (!(e instanceof DuplicateJobError)) throw e;
  }
  const out: BulkResult = { done: [], skipped: [] };
  for (const id of ids) {
    const r = await core.storage.jobRetryMany({ ids: [id] }).catch((e: unknown) => {
      if (e instanceof DuplicateJobError) return { done: [], skipped: [{ id, reason: SKIP_UNIQUE_HELD }] };
      throw e;
    });
    out.done.push(...r.done);
    out.skipped.push(...r.skipped);
  }
  return out;
}

/** One cancel batch: each job with its subtree, in its own transaction. */
async function cancelBatch(core: QueueCore, ids: string[]): Promise<BulkResult> {
  const out: BulkResult = { done: [], skipped: [] };
  for (const id of ids) {
    let cancelled: string[];
    try {
      cancelled = await core.storage.jobCancel({ id });
    } catch (e) {
      if (e instanceof JobNotFoundError) {
        out.skipped.push({ id, reason: SKIP_NOT_FOUND });
        continue;
      }
      throw e;
    }
    if (cancelled.length === 0) {
      out.skipped.push({ id, reason: SKIP_ALREADY_FINISHED });
      continue;
    }
    out.done.push(id);
    if (core.hub.hasSubscribers) {
      const at = new Date();
      for (const jobId of cancelled) core.hub.emit({ type: 'job.cancelled', jobId, at });
    }
  }
  return out;
}

/** `queue.deleteJob()`: a finished job with its subtree. @throws JobNotFoundError, InvalidStateError */
export async function deleteJob(core: QueueCore, id: string): Promise<void> {
  checkName(id, 'job id');
  const r = await core.storage.jobDeleteMany({ ids: [id] });
  const skip = r.skipped[0];
  if (skip === undefined) return;
  if (skip.reason === SKIP_NOT_FOUND) throw new JobNotFoundError(id);
  throw new InvalidStateError(`cannot delete job ${id}: ${skip.reason}`);
}
