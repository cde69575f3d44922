/**
 * Row mapping of the PostgreSQL driver. `pg` returns BIGINT (and count(*)) columns as strings
 * and json columns already parsed; everything is converted to the storage contract's numbers.
 * @internal
 */
import { StorageError } from '../../errors.js';
import type { FanOutRow, JobRow, ScheduleRow, StepRow } from '../storage.js';
import type { JobStatus } from '../../types.js';

/** A BIGINT, integer or numeric value as `pg` returns it (string, number, or null). */
type DbInt = string | number | null;

/** A job row as `pg` returns it. */
export interface JobDbRow {
  id: string;
  type: string;
  queue: string;
  status: string;
  priority: number;
  attempt: number;
  max_retries: number;
  run_count: number;
  args: string | null;
  result: string | null;
  meta: string | null;
  last_error: string | null;
  run_at: DbInt;
  created_at: DbInt;
  started_at: DbInt;
  completed_at: DbInt;
  timeout_ms: DbInt;
  unique_key: string | null;
  tenant: string | null;
  parent_id: string | null;
  fan_out_id: string | null;
  fan_out_index: number | null;
  locked_by: string | null;
  lease_expires_at: DbInt;
  heartbeat_at: DbInt;
  wake_at: DbInt;
  wait_signal: string | null;
}

/** A fan-out row as `pg` returns it (or as `row_to_json` encodes it). */
export interface FanOutDbRow {
  id: string;
  parent_id: string;
  step_index: number;
  strategy: string;
  threshold: number | null;
  total: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  status: string;
  deadline_at: DbInt;
  created_at: DbInt;
  decided_at: DbInt;
}

/** A step row as `pg` returns it. */
export interface StepDbRow {
  job_id: string;
  step_index: number;
  step_name: string;
  status: string;
  output: string | null;
  error: string | null;
}

/** A schedule row as `pg` returns it. */
export interface ScheduleDbRow {
  name: string;
  spec: string;
  options: string;
  next_run_at: DbInt;
  last_run_at: DbInt;
  last_job_id: string | null;
  created_at: DbInt;
  updated_at: DbInt;
}

/**
 * A BIGINT as a JS number.
 * @throws StorageError when the value is not a safe integer
 */
export function toInt(v: string | number | bigint): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n)) throw new StorageError(`postgres: expected an integer, got ${String(v)}`);
  return n;
}

/** A nullable BIGINT as a JS number or null. */
export function toIntOrNull(v: DbInt | undefined): number | null {
  return v === null || v === undefined ? null : toInt(v);
}

/** Maps a job row. */
export function toJobRow(r: JobDbRow): JobRow {
  return {
    id: r.id,
    type: r.type,
    queue: r.queue,
    status: r.status as JobStatus,
    priority: r.priority,
    attempt: r.attempt,
    maxRetries: r.max_retries,
    runCount: r.run_count,
    argsJson: r.args,
    resultJson: r.result,
    metaJson: r.meta,
    lastError: r.last_error,
    runAt: toInt(r.run_at ?? 0),
    createdAt: toInt(r.created_at ?? 0),
    startedAt: toIntOrNull(r.started_at),
    completedAt: toIntOrNull(r.completed_at),
    timeoutMs: toIntOrNull(r.timeout_ms),
    uniqueKey: r.unique_key,
    tenant: r.tenant,
    parentId: r.parent_id,
    fanOutId: r.fan_out_id,
    fanOutIndex: r.fan_out_index,
    lockedBy: r.locked_by,
    leaseExpiresAt: toIntOrNull(r.lease_expires_at),
    heartbeatAt: toIntOrNull(r.heartbeat_at),
    wakeAt: toIntOrNull(r.wake_at),
    waitSignal: r.wait_signal,
  };
}

/** Maps a fan-out row. */
export function toFanOutRow(r: FanOutDbRow): FanOutRow {
  return {
    id: r.id,
    parentId: r.parent_id,
    stepIndex: r.step_index,
    strategy: r.strategy as FanOutRow['strategy'],
    threshold: r.threshold,
    total: r.total,
    succeeded: r.succeeded,
    failed: r.failed,
    cancelled: r.cancelled,
    status: r.status as FanOutRow['status'],
    deadlineAt: toIntOrNull(r.deadline_at),
    createdAt: toInt(r.created_at ?? 0),
    decidedAt: toIntOrNull(r.decided_at),
  };
}

/** Maps a step row. */
export function toStepRow(r: StepDbRow): StepRow {
  return {
    jobId: r.job_id,
    stepIndex: r.step_index,
    stepName: r.step_name,
    status: r.status as StepRow['status'],
    outputJson: r.output,
    error: r.error,
  };
}

/** Maps a schedule row. */
export function toScheduleRow(r: ScheduleDbRow): ScheduleRow {
  return {
    name: r.name,
    specJson: r.spec,
    optionsJson: r.options,
    nextRunAt: toInt(r.next_run_at ?? 0),
    lastRunAt: toIntOrNull(r.last_run_at),
    lastJobId: r.last_job_id,
    createdAt: toInt(r.created_at ?? 0),
    updatedAt: toInt(r.updated_at ?? 0),
  };
}

/** Claim order: priority desc, run_at, id. */
export function compareClaimOrder(a: JobRow, b: JobRow): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
