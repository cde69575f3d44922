/**
 * Row mapping between SQLite result rows (snake_case columns) and the storage domain rows.
 * Integers are accepted as `number` or `bigint` (a user `Database` may use safe integers).
 * @internal
 */
import type { JobStatus } from '../../types.js';
import type { FanOutRow, JobRow, ReclaimedJob, ScheduleRow, StepRow } from '../storage.js';

/** Integer-ish column value. */
type Int = number | bigint;

/** `sdj_jobs` as SQLite returns it. */
export interface JobDbRow {
  id: string;
  type: string;
  queue: string;
  status: string;
  priority: Int;
  attempt: Int;
  max_retries: Int;
  run_count: Int;
  args: string | null;
  result: string | null;
  meta: string | null;
  last_error: string | null;
  run_at: Int;
  created_at: Int;
  started_at: Int | null;
  completed_at: Int | null;
  timeout_ms: Int | null;
  unique_key: string | null;
  tenant: string | null;
  parent_id: string | null;
  fan_out_id: string | null;
  fan_out_index: Int | null;
  locked_by: string | null;
  lease_expires_at: Int | null;
  heartbeat_at: Int | null;
  wake_at: Int | null;
  wait_signal: string | null;
}

/** `sdj_steps` as SQLite returns it. */
export interface StepDbRow {
  job_id: string;
  step_index: Int;
  step_name: string;
  status: string;
  output: string | null;
  error: string | null;
}

/** `sdj_fan_outs` as SQLite returns it. */
export interface FanOutDbRow {
  id: string;
  parent_id: string;
  step_index: Int;
  strategy: string;
  threshold: number | null;
  total: Int;
  succeeded: Int;
  failed: Int;
  cancelled: Int;
  status: string;
  deadline_at: Int | null;
  created_at: Int;
  decided_at: Int | null;
}

/** `sdj_schedules` as SQLite returns it. */
export interface ScheduleDbRow {
  name: string;
  spec: string;
  options: string;
  next_run_at: Int;
  last_run_at: Int | null;
  last_job_id: string | null;
  created_at: Int;
  updated_at: Int;
}

/** The columns `jobReclaimExpired` returns. */
export interface ReclaimDbRow {
  id: string;
  type: string;
  queue: string;
  status: string;
  attempt: Int;
  max_retries: Int;
  fan_out_id: string | null;
}

/** An integer column as a JS number. */
export function int(v: Int): number {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** A nullable integer column as a JS number or null. */
export function intOrNull(v: Int | null): number | null {
  return v === null ? null : int(v);
}

/** Maps a job row. */
export function toJobRow(r: JobDbRow): JobRow {
  return {
    id: r.id,
    type: r.type,
    queue: r.queue,
    status: r.status as JobStatus,
    priority: int(r.priority),
    attempt: int(r.attempt),
    maxRetries: int(r.max_retries),
    runCount: int(r.run_count),
    argsJson: r.args,
    resultJson: r.result,
    metaJson: r.meta,
    lastError: r.last_error,
    runAt: int(r.run_at),
    createdAt: int(r.created_at),
    startedAt: intOrNull(r.started_at),
    completedAt: intOrNull(r.completed_at),
    timeoutMs: intOrNull(r.timeout_ms),
    uniqueKey: r.unique_key,
    tenant: r.tenant,
    parentId: r.parent_id,
    fanOutId: r.fan_out_id,
    fanOutIndex: intOrNull(r.fan_out_index),
    lockedBy: r.locked_by,
    leaseExpiresAt: intOrNull(r.lease_expires_at),
    heartbeatAt: intOrNull(r.heartbeat_at),
    wakeAt: intOrNull(r.wake_at),
    waitSignal: r.wait_signal,
  };
}

/**
 * A job row as a raw-mode tuple, in `JOB_COLUMNS` order (queries/jobs.ts): raw mode skips
 * building one keyed object per row on the hot path.
 */
export type JobTuple = [
  id: string,
  type: string,
  queue: string,
  status: string,
  priority: Int,
  attempt: Int,
  max_retries: Int,
  run_count: Int,
  args: string | null,
  result: string | null,
  meta: string | null,
  last_error: string | null,
  run_at: Int,
  created_at: Int,
  started_at: Int | null,
  completed_at: Int | null,
  timeout_ms: Int | null,
  unique_key: string | null,
  tenant: string | null,
  parent_id: string | null,
  fan_out_id: string | null,
  fan_out_index: Int | null,
  locked_by: string | null,
  lease_expires_at: Int | null,
  heartbeat_at: Int | null,
  wake_at: Int | null,
  wait_signal: string | null,
];

/** Maps a job tuple (`JOB_COLUMNS` order). */
export function tupleToJobRow(r: JobTuple): JobRow {
  return {
    id: r[0],
    type: r[1],
    queue: r[2],
    status: r[3] as JobStatus,
    priority: int(r[4]),
    attempt: int(r[5]),
    maxRetries: int(r[6]),
    runCount: int(r[7]),
    argsJson: r[8],
    resultJson: r[9],
    metaJson: r[10],
    lastError: r[11],
    runAt: int(r[12]),
    createdAt: int(r[13]),
    startedAt: intOrNull(r[14]),
    completedAt: intOrNull(r[15]),
    timeoutMs: intOrNull(r[16]),
    uniqueKey: r[17],
    tenant: r[18],
    parentId: r[19],
    fanOutId: r[20],
    fanOutIndex: intOrNull(r[21]),
    lockedBy: r[22],
    leaseExpiresAt: intOrNull(r[23]),
    heartbeatAt: intOrNull(r[24]),
    wakeAt: intOrNull(r[25]),
    waitSignal: r[26],
  };
}

/** Maps a step row. */
export function toStepRow(r: StepDbRow): StepRow {
  return {
    jobId: r.job_id,
    stepIndex: int(r.step_index),
    stepName: r.step_name,
    status: r.status as StepRow['status'],
    outputJson: r.output,
    error: r.error,
  };
}

/** Maps a fan-out row. */
export function toFanOutRow(r: FanOutDbRow): FanOutRow {
  return {
    id: r.id,
    parentId: r.parent_id,
    stepIndex: int(r.step_index),
    strategy: r.strategy as FanOutRow['strategy'],
    threshold: r.threshold,
    total: int(r.total),
    succeeded: int(r.succeeded),
    failed: int(r.failed),
    cancelled: int(r.cancelled),
    status: r.status as FanOutRow['status'],
    deadlineAt: intOrNull(r.deadline_at),
    createdAt: int(r.created_at),
    decidedAt: intOrNull(r.decided_at),
  };
}

/** Maps a schedule row. */
export function toScheduleRow(r: ScheduleDbRow): ScheduleRow {
  return {
    name: r.name,
    specJson: r.spec,
    optionsJson: r.options,
    nextRunAt: int(r.next_run_at),
    lastRunAt: intOrNull(r.last_run_at),
    lastJobId: r.last_job_id,
    createdAt: int(r.created_at),
    updatedAt: int(r.updated_at),
  };
}

/** Maps a reclaimed job. */
export function toReclaimedJob(r: ReclaimDbRow): ReclaimedJob {
  return {
    id: r.id,
    type: r.type,
    queue: r.queue,
    status: r.status as ReclaimedJob['status'],
    attempt: int(r.attempt),
    maxRetries: int(r.max_retries),
  };
}

/** Claim order: priority desc, run_at asc, id asc. */
export function compareClaimOrder(a: JobRow, b: JobRow): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.runAt !== b.runAt) return a.runAt - b.runAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
