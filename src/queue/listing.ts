/**
 * Looking at jobs: `listJobs` (filters, keyset pagination), `getSteps`, and the filter checks
 * shared with the bulk actions.
 * @internal
 */
import { InvalidArgumentError, JobNotFoundError } from '../errors.js';
import { decodeJson, undecodedNote } from '../storage/codec.js';
import type { JobFilter, JobRow } from '../storage/storage.js';
import { JOB_STATUSES, type Job, type JobStatus } from '../types.js';
import type { QueueCore } from '../core/queue-core.js';
import { toJob } from '../core/job-mapper.js';
import { checkDate, checkInt, checkName, checkOptions, checkQueueName, checkTag, describe } from '../core/validate.js';
import type { JobFilterOptions, JobPage, ListJobsOptions, StepInfo } from './operator-types.js';

/** The filter fields every listing and bulk action accepts. */
export const FILTER_KEYS = ['status', 'queue', 'type', 'tenant', 'parentId', 'search', 'createdAfter', 'createdBefore'] as const;

/** Validates filter fields into the storage's filter. @throws InvalidArgumentError */
export function checkFilter(o: JobFilterOptions): JobFilter {
  const f: JobFilter = {};
  if (o.status !== undefined) f.statuses = checkStatuses(o.status);
  if (o.queue !== undefined) f.queue = checkQueueName(o.queue);
  if (o.type !== undefined) f.type = checkName(o.type, 'type');
  if (o.tenant !== undefined) f.tenant = checkTag(o.tenant, 'tenant');
  if (o.parentId !== undefined) f.parentId = checkName(o.parentId, 'parentId');
  if (o.search !== undefined) f.search = checkTag(o.search, 'search');
  if (o.createdAfter !== undefined) f.createdAfter = checkDate(o.createdAfter, 'createdAfter').getTime();
  if (o.createdBefore !== undefined) f.createdBefore = checkDate(o.createdBefore, 'createdBefore').getTime();
  return f;
}

function checkStatuses(value: unknown): JobStatus[] {
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  if (list.length === 0) throw new InvalidArgumentError('status must be a job status or a non-empty array of them');
  return [...new Set(list)].map((s) => {
    if (typeof s !== 'string' || !(JOB_STATUSES as readonly string[]).includes(s)) {
      throw new InvalidArgumentError(`status must be one of ${JOB_STATUSES.join(', ')}, got ${describe(s)}`);
    }
    return s as JobStatus;
  });
}

/** Cursor text: `<order>.<last id>` in base64url, opaque to callers. */
function encodeCursor(order: 'asc' | 'desc', id: string): string {
  return Buffer.from(`${order}.${id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: unknown, order: 'asc' | 'desc'): string {
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 400 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw new InvalidArgumentError(`cursor must be the nextCursor of a previous page, got ${describe(cursor)}`);
  }
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const dot = text.indexOf('.');
  const o = text.slice(0, dot);
  const id = text.slice(dot + 1);
  if ((o !== 'asc' && o !== 'desc') || id.length === 0) throw new InvalidArgumentError('cursor is not a listJobs cursor');
  if (o !== order) throw new InvalidArgumentError(`cursor belongs to a listing in ${o} order, not ${order}`);
  // Any id the storage holds is a valid boundary (keyset): a cursor made by hand pages from there.
  return checkName(id, 'cursor');
}

/** A listed job: decoded, or without its payloads when one cannot be decoded (a listing never fails on one bad row). */
export function listedJob(row: JobRow): Job {
  try {
    return toJob(row);
  } catch {
    return toJob(row, { decode: false });
  }
}

/** `queue.listJobs()`. */
export async function listJobs(core: QueueCore, options: ListJobsOptions): Promise<JobPage> {
  const o = checkOptions<ListJobsOptions>(options, 'listJobs options', [...FILTER_KEYS, 'limit', 'cursor', 'order']);
  const filter = checkFilter(o);
  const limit = o.limit === undefined ? 50 : checkInt(o.limit, 'limit', 1, 500);
  if (o.order !== undefined && o.order !== 'asc' && o.order !== 'desc') throw new InvalidArgumentError(`order must be 'asc' or 'desc', got ${describe(o.order)}`);
  const order = o.order ?? 'desc';
  const afterId = o.cursor === undefined ? undefined : decodeCursor(o.cursor, order);
  // One row more than the page tells whether another page exists.
  const rows = await core.storage.jobList({ ...filter, limit: limit + 1, order, ...(afterId === undefined ? {} : { afterId }) });
  const page = rows.slice(0, limit);
  const out: JobPage = { jobs: page.map(listedJob) };
  if (rows.length > limit) out.nextCursor = encodeCursor(order, page[page.length - 1]!.id);
  return out;
}

/** `queue.getSteps()`: a job's checkpoints by index. @throws JobNotFoundError */
export async function getSteps(core: QueueCore, id: string): Promise<StepInfo[]> {
  checkName(id, 'job id');
  const [job, steps] = await Promise.all([core.storage.jobGet({ id }), core.storage.stepList({ jobId: id, withTimes: true })]);
  if (job === undefined && steps.length === 0) throw new JobNotFoundError(id);
  // The answers `ctx.patched` stored (negative indexes) are not steps: `patchStatus` reports them.
  return steps.filter((s) => s.stepIndex >= 0).map((s) => {
    const step: StepInfo = { index: s.stepIndex, name: s.stepName, status: s.status, at: new Date(s.createdAt ?? 0) };
    if (s.outputJson !== null) {
      try {
        step.output = decodeJson(s.outputJson, 'step output');
      } catch {
        // Why it cannot be decoded (no key of the codec opens it), or the stored text as it is.
        step.output = undecodedNote(s.outputJson) ?? s.outputJson;
      }
    }
    if (s.error !== null) step.error = s.error;
    return step;
  });
}
