/**
 * Row mapping of the MySQL/MariaDB driver. mysql2 returns BIGINT as a number (or, with
 * `bigNumberStrings` or past 2^53, a string), DECIMAL as a string, and binary columns as
 * Buffers; everything is converted to the storage contract's numbers and strings here.
 * @internal
 */
import { StorageError } from '../../errors.js';
import type { JobStatus } from '../../types.js';
import type { FanOutRow, JobRow, ScheduleRow, StepRow } from '../storage.js';

/** A raw row as mysql2 returns it. */
export type DbRow = Record<string, unknown>;

/** An integer column: number, numeric string, or (binary protocol) bigint. */
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' || typeof v === 'string') {
    const n = Number(v);
    if (Number.isFinite(n)) return n;
  }
  throw new StorageError(`mysql: expected a number, got ${typeof v} ${String(v)}`);
}

/** A nullable integer column. */
export function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

/** A text column (a Buffer when the column or expression is binary). */
export function str(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  throw new StorageError(`mysql: expected text, got ${typeof v}`);
}

/** A nullable text column. */
export function strOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : str(v);
}

/** A `sdj_jobs` row (selected with `JOB_COLUMNS`) as a `JobRow`. */
export function toJobRow(r: DbRow): JobRow {
  return {
    id: str(r['id']),
    type: str(r['type']),
    queue: str(r['queue']),
    status: str(r['status']) as JobStatus,
    priority: num(r['priority']),
    attempt: num(r['attempt']),
    maxRetries: num(r['max_retries']),
    runCount: num(r['run_count']),
    argsJson: strOrNull(r['args']),
    resultJson: strOrNull(r['result']),
    metaJson: strOrNull(r['meta']),
    lastError: strOrNull(r['last_error']),
    runAt: num(r['run_at']),
    createdAt: num(r['created_at']),
    startedAt: numOrNull(r['started_at']),
    completedAt: numOrNull(r['completed_at']),
    timeoutMs: numOrNull(r['timeout_ms']),
    uniqueKey: strOrNull(r['unique_key']),
    tenant: strOrNull(r['tenant']),
    parentId: strOrNull(r['parent_id']),
    fanOutId: strOrNull(r['fan_out_id']),
    fanOutIndex: numOrNull(r['fan_out_index']),
    lockedBy: strOrNull(r['locked_by']),
    leaseExpiresAt: numOrNull(r['lease_expires_at']),
    heartbeatAt: numOrNull(r['heartbeat_at']),
    wakeAt: numOrNull(r['wake_at']),
    waitSignal: strOrNull(r['wait_signal']),
  };
}

/** A `sdj_steps` row as a `StepRow`. */
export function toStepRow(r: DbRow): StepRow {
  return {
    jobId: str(r['job_id']),
    stepIndex: num(r['step_index']),
    stepName: str(r['step_name']),
    status: str(r['status']) as StepRow['status'],
    outputJson: strOrNull(r['output']),
    error: strOrNull(r['error']),
  };
}

/** A `sdj_fan_outs` row as a `FanOutRow`. */
export function toFanOutRow(r: DbRow): FanOutRow {
  return {
    id: str(r['id']),
    parentId: str(r['parent_id']),
    stepIndex: num(r['step_index']),
    strategy: str(r['strategy']) as FanOutRow['strategy'],
    threshold: numOrNull(r['threshold']),
    total: num(r['total']),
    succeeded: num(r['succeeded']),
    failed: num(r['failed']),
    cancelled: num(r['cancelled']),
    status: str(r['status']) as FanOutRow['status'],
    deadlineAt: numOrNull(r['deadline_at']),
    createdAt: num(r['created_at']),
    decidedAt: numOrNull(r['decided_at']),
  };
}

/** A `sdj_schedules` row as a `ScheduleRow`. */
export function toScheduleRow(r: DbRow): ScheduleRow {
  return {
    name: str(r['name']),
    specJson: str(r['spec']),
    optionsJson: str(r['options']),
    nextRunAt: num(r['next_run_at']),
    lastRunAt: numOrNull(r['last_run_at']),
    lastJobId: strOrNull(r['last_job_id']),
    createdAt: num(r['created_at']),
    updatedAt: num(r['updated_at']),
  };
}
