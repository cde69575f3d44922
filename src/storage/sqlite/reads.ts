/**
 * Read-only queries on SQLite (single statements, no explicit transaction needed).
 * @internal
 */
import { JOB_STATUSES, type JobStatus } from '../../types.js';
import type { FanOutRow, JobListParams, JobRow, StepRow } from '../storage.js';
import {
  JOB_COUNT_BY_STATUS,
  JOB_COUNT_BY_STATUS_IN_QUEUE,
  JOB_GET,
  JOB_GET_MANY,
  JOB_LIST_FILTERS,
  JOB_NEXT_RUN_AT,
  jobListSql,
} from './queries/jobs.js';
import { FAN_OUT_GET, STEP_LIST } from './queries/workflow.js';
import { int, toFanOutRow, toJobRow, toStepRow, type FanOutDbRow, type JobDbRow, type StepDbRow } from './rows.js';
import type { Statements } from './statements.js';

/** One job by id. */
export function getJob(c: Statements, id: string): JobRow | undefined {
  const r = c.st(JOB_GET).get(id) as JobDbRow | undefined;
  return r === undefined ? undefined : toJobRow(r);
}

/**
 * Jobs by id (each once, ids not found left out), in one statement: the ids go as one JSON
 * parameter, so no list is too long for SQLite's parameter limit.
 */
export function getJobs(c: Statements, ids: readonly string[]): JobRow[] {
  if (ids.length === 0) return [];
  return (c.st(JOB_GET_MANY).all(JSON.stringify(ids)) as JobDbRow[]).map(toJobRow);
}

/** Jobs matching the filters, newest first unless `order: 'asc'`. */
export function listJobs(c: Statements, p: JobListParams): JobRow[] {
  const filters = (Object.keys(JOB_LIST_FILTERS) as (keyof typeof JOB_LIST_FILTERS)[]).filter((k) => p[k] !== undefined);
  const params: Record<string, string | number> = { limit: Math.max(0, p.limit), offset: Math.max(0, p.offset ?? 0) };
  for (const k of filters) params[k] = p[k] as string;
  const rows = c.st(jobListSql(filters, p.order ?? 'desc')).all(params) as JobDbRow[];
  return rows.map(toJobRow);
}

/** Counts by status (every status present, zero when none), over all queues or one. */
export function countByStatus(c: Statements, queue: string | undefined): Record<JobStatus, number> {
  const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
  const rows = (queue === undefined ? c.st(JOB_COUNT_BY_STATUS).all() : c.st(JOB_COUNT_BY_STATUS_IN_QUEUE).all(queue, queue, queue, queue)) as {
    status: JobStatus;
    n: number | bigint;
  }[];
  for (const r of rows) out[r.status] = int(r.n);
  return out;
}

/** The earliest run_at among pending jobs of these (unpaused) queues. */
export function nextRunAt(c: Statements, queues: readonly string[]): number | undefined {
  if (queues.length === 0) return undefined;
  const r = c.st(JOB_NEXT_RUN_AT).get(JSON.stringify(queues)) as { next: number | bigint | null } | undefined;
  return r?.next == null ? undefined : int(r.next);
}

/** Every checkpoint of a job, by step index. */
export function listSteps(c: Statements, jobId: string): StepRow[] {
  return (c.st(STEP_LIST).all(jobId) as StepDbRow[]).map(toStepRow);
}

/** One fan-out by id. */
export function getFanOut(c: Statements, id: string): FanOutRow | undefined {
  const r = c.st(FAN_OUT_GET).get(id) as FanOutDbRow | undefined;
  return r === undefined ? undefined : toFanOutRow(r);
}
