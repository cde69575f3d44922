/**
 * Looking at jobs: `listJobs` (filters, keyset pagination), `getSteps`, `getSignals`, and the
 * filter checks shared with the bulk actions.
 * @internal
 */
import { InvalidArgumentError, JobNotFoundError } from '../errors.js';
import { decodeJson, undecodedNote } from '../storage/codec.js';
import { scanBudgetApplies, type JobFilter, type JobRow } from '../storage/storage.js';
import { JOB_STATUSES, type Job, type JobStatus } from '../types.js';
import type { QueueCore } from '../core/queue-core.js';
import { toJob } from '../core/job-mapper.js';
import { checkDate, checkInt, checkName, checkOptions, checkQueueName, checkTag, describe } from '../core/validate.js';
import type { GetSignalsOptions, GetStepsOptions, JobFilterOptions, JobPage, ListJobsOptions, SignalInfo, StepInfo } from './operator-types.js';

/** The filter fields every listing and bulk action accepts. */
export const FILTER_KEYS = ['status', 'queue', 'type', 'tenant', 'parentId', 'search', 'createdAfter', 'createdBefore'] as const;

/** The largest scan budget `listJobs` accepts (`scanLimit`). */
const MAX_SCAN_LIMIT = 1_000_000;

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
  const o = checkOptions<ListJobsOptions>(options, 'listJobs options', [...FILTER_KEYS, 'limit', 'cursor', 'order', 'scanLimit']);
  const filter = checkFilter(o);
  const limit = o.limit === undefined ? 50 : checkInt(o.limit, 'limit', 1, 500);
  if (o.order !== undefined && o.order !== 'asc' && o.order !== 'desc') throw new InvalidArgumentError(`order must be 'asc' or 'desc', got ${describe(o.order)}`);
  const order = o.order ?? 'desc';
  const scanLimit = o.scanLimit === undefined ? undefined : checkInt(o.scanLimit, 'scanLimit', 1, MAX_SCAN_LIMIT);
  const afterId = o.cursor === undefined ? undefined : decodeCursor(o.cursor, order);
  // One row more than the page tells whether another page exists.
  const params = { ...filter, limit: limit + 1, order, ...(afterId === undefined ? {} : { afterId }) };
  // A listing the budget does not apply to is the same with or without it.
  const budgeted = scanLimit !== undefined && scanBudgetApplies(filter);
  const scan = budgeted ? await core.storage.jobListScan({ ...params, scanLimit }) : { rows: await core.storage.jobList(params), scanEnd: null };
  const page = scan.rows.slice(0, limit);
  const out: JobPage = { jobs: page.map(listedJob) };
  if (scan.rows.length > limit) out.nextCursor = encodeCursor(order, page[page.length - 1]!.id);
  else if (scan.scanEnd !== null && scanLimit !== undefined) {
    // The budget ran out first: the next page starts right after the last job read.
    out.nextCursor = encodeCursor(order, scan.scanEnd);
    out.scanExhausted = true;
    out.scanned = scanLimit;
  }
  return out;
}

/** Most checkpoints or signals one page may ask for. */
const MAX_PAGE = 1000;

/** `queue.getSteps()`: a job's checkpoints by index, all or a page. @throws JobNotFoundError, InvalidArgumentError */
export async function getSteps(core: QueueCore, id: string, options?: GetStepsOptions): Promise<StepInfo[]> {
  checkName(id, 'job id');
  const o = checkOptions<GetStepsOptions>(options, 'getSteps options', ['limit', 'after']);
  const page: { afterIndex?: number; limit?: number } = {};
  if (o.limit !== undefined) page.limit = checkInt(o.limit, 'limit', 1, MAX_PAGE);
  // A page starts above the stored answers of `ctx.patched` (negative indexes): they are not steps.
  if (o.limit !== undefined || o.after !== undefined) page.afterIndex = o.after === undefined ? -1 : checkInt(o.after, 'after', -1);
  const [job, steps] = await Promise.all([core.storage.jobGet({ id }), core.storage.stepList({ jobId: id, withTimes: true, ...page })]);
  if (job === undefined && steps.length === 0) throw new JobNotFoundError(id);
  // The answers `ctx.patched` stored (negative indexes) are not steps: `patchStatus` reports them.
  return steps.filter((s) => s.stepIndex >= 0).map((s) => {
    const step: StepInfo = { index: s.stepIndex, name: s.stepName, status: s.status, at: new Date(s.createdAt ?? 0) };
    if (s.outputJson !== null) step.output = shownPayload(s.outputJson, 'step output');
    if (s.error !== null) step.error = s.error;
    return step;
  });
}

/** A stored payload as a value, or why it cannot be decoded (a listing never fails on one). */
function shownPayload(json: string, what: string): unknown {
  try {
    return decodeJson(json, what);
  } catch {
    // Why it cannot be decoded (no key of the codec opens it), or the stored text as it is.
    return undecodedNote(json) ?? json;
  }
}

/** `queue.getSignals()`: a job's signals, oldest first. @throws JobNotFoundError, InvalidArgumentError */
export async function getSignals(core: QueueCore, id: string, options: GetSignalsOptions | undefined): Promise<SignalInfo[]> {
  checkName(id, 'job id');
  const o = checkOptions<GetSignalsOptions>(options, 'getSignals options', ['limit', 'after']);
  const limit = o.limit === undefined ? 100 : checkInt(o.limit, 'limit', 1, MAX_PAGE);
  const after = o.after === undefined ? {} : { afterSeq: checkInt(o.after, 'after', 0, Number.MAX_SAFE_INTEGER) };
  const [job, signals] = await Promise.all([core.storage.jobGet({ id }), core.storage.signalList({ jobId: id, limit, ...after })]);
  if (job === undefined && signals.length === 0) throw new JobNotFoundError(id);
  return signals.map((s) => {
    const info: SignalInfo = { seq: s.seq, name: s.name, sentAt: new Date(s.createdAt) };
    if (s.payloadJson !== null) info.payload = shownPayload(s.payloadJson, 'signal payload');
    if (s.consumedAt !== null) info.consumedAt = new Date(s.consumedAt);
    return info;
  });
}
