/**
 * One mapping from database rows to the storage contract's rows (`JobRow`, `StepRow`,
 * `SignalRow`, `FanOutRow`, `ScheduleRow`, `ReclaimedJob`), parameterised by a
 * {@link ColumnCoercer}: the small per-dialect object that turns one column value into a number
 * or a string. Column names
 * and their order are written here once; a dialect only says how its client returns values.
 *
 * Rows come either keyed by column name ({@link DbRecord}) or, on SQLite's raw-mode hot path,
 * as tuples in {@link JOB_COLUMN_NAMES} order.
 *
 * Internal to the storage layer: every export carries the JSDoc internal tag (so it is
 * stripped from the published declaration files), and none is exported from the package.
 */
import { StorageError } from '../../errors.js';
import type { JobStatus } from '../../types.js';
import type { FanOutRow, JobRow, ReclaimedJob, ScheduleRow, SignalRow, StepRow } from '../storage.js';

/** A result row keyed by column name, as a client returns it. @internal */
export type DbRecord = Readonly<Record<string, unknown>>;

/** Turns one column value, as a dialect's client returns it, into a contract value. @internal */
export interface ColumnCoercer {
  /** An integer column (BIGINT ms times, counters). @throws StorageError on anything else */
  int(v: unknown): number;
  /** A nullable integer column. */
  optInt(v: unknown): number | null;
  /** A real or DECIMAL column (a fan-out's threshold). @throws StorageError on anything else */
  num(v: unknown): number;
  /** A nullable real or DECIMAL column. */
  optNum(v: unknown): number | null;
  /** A text column. @throws StorageError on anything else */
  str(v: unknown): string;
  /** A nullable text column. */
  optStr(v: unknown): string | null;
}

/**
 * A coercer that accepts what any of the three clients returns: numbers, bigints and numeric
 * strings for numbers (`pg` returns BIGINT as text, mysql2 DECIMAL as text, `better-sqlite3`
 * safe integers as bigint), strings and byte buffers (binary collations) for text. The common
 * case — a JS number or string — is one `typeof` test. Errors name `dialect`.
 * @internal
 */
export function createColumnCoercer(dialect: string): ColumnCoercer {
  const bad = (what: string, v: unknown): StorageError => new StorageError(`${dialect}: expected ${what}, got ${typeof v} ${String(v)}`);
  const num = (v: unknown): number => {
    if (typeof v === 'number') return v;
    if (typeof v === 'bigint' || (typeof v === 'string' && v.trim() !== '')) {
      const n = Number(v);
      if (Number.isFinite(n)) return n;
    }
    throw bad('a number', v);
  };
  const int = (v: unknown): number => {
    const n = typeof v === 'number' ? v : num(v);
    if (!Number.isSafeInteger(n)) throw bad('an integer', v);
    return n;
  };
  const str = (v: unknown): string => {
    if (typeof v === 'string') return v;
    if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
    throw bad('text', v);
  };
  return Object.freeze({
    int,
    optInt: (v: unknown) => (v === null || v === undefined ? null : int(v)),
    num,
    optNum: (v: unknown) => (v === null || v === undefined ? null : num(v)),
    str,
    optStr: (v: unknown) => (v === null || v === undefined ? null : str(v)),
  });
}

/** The `sdj_jobs` columns in the order the drivers select them (`JOB_COLUMNS`) and tuples carry them. @internal */
export const JOB_COLUMN_NAMES = [
  'id',
  'type',
  'queue',
  'status',
  'priority',
  'attempt',
  'max_retries',
  'run_count',
  'args',
  'result',
  'meta',
  'last_error',
  'run_at',
  'created_at',
  'started_at',
  'completed_at',
  'timeout_ms',
  'unique_key',
  'tenant',
  'parent_id',
  'fan_out_id',
  'fan_out_index',
  'locked_by',
  'lease_expires_at',
  'heartbeat_at',
  'wake_at',
  'wait_signal',
  'concurrency_key',
  'rate_key',
  'limited',
  'debounce_key',
  'progress_value',
  'progress_message',
  'progress_at',
] as const;

/** A `sdj_jobs` row keyed by column name as a `JobRow`. @internal */
export function mapJobRow(c: ColumnCoercer, r: DbRecord): JobRow {
  return {
    id: c.str(r['id']),
    type: c.str(r['type']),
    queue: c.str(r['queue']),
    status: c.str(r['status']) as JobStatus,
    priority: c.int(r['priority']),
    attempt: c.int(r['attempt']),
    maxRetries: c.int(r['max_retries']),
    runCount: c.int(r['run_count']),
    argsJson: c.optStr(r['args']),
    resultJson: c.optStr(r['result']),
    metaJson: c.optStr(r['meta']),
    lastError: c.optStr(r['last_error']),
    runAt: c.int(r['run_at']),
    createdAt: c.int(r['created_at']),
    startedAt: c.optInt(r['started_at']),
    completedAt: c.optInt(r['completed_at']),
    timeoutMs: c.optInt(r['timeout_ms']),
    uniqueKey: c.optStr(r['unique_key']),
    tenant: c.optStr(r['tenant']),
    parentId: c.optStr(r['parent_id']),
    fanOutId: c.optStr(r['fan_out_id']),
    fanOutIndex: c.optInt(r['fan_out_index']),
    lockedBy: c.optStr(r['locked_by']),
    leaseExpiresAt: c.optInt(r['lease_expires_at']),
    heartbeatAt: c.optInt(r['heartbeat_at']),
    wakeAt: c.optInt(r['wake_at']),
    waitSignal: c.optStr(r['wait_signal']),
    concurrencyKey: c.optStr(r['concurrency_key']),
    rateKey: c.optStr(r['rate_key']),
    limited: c.int(r['limited']) !== 0,
    debounceKey: c.optStr(r['debounce_key']),
    progressValue: c.optNum(r['progress_value']),
    progressMessage: c.optStr(r['progress_message']),
    progressAt: c.optInt(r['progress_at']),
  };
}

/** A `sdj_jobs` row as a tuple in {@link JOB_COLUMN_NAMES} order (raw mode) as a `JobRow`. @internal */
export function mapJobTuple(c: ColumnCoercer, t: readonly unknown[]): JobRow {
  return {
    id: c.str(t[0]),
    type: c.str(t[1]),
    queue: c.str(t[2]),
    status: c.str(t[3]) as JobStatus,
    priority: c.int(t[4]),
    attempt: c.int(t[5]),
    maxRetries: c.int(t[6]),
    runCount: c.int(t[7]),
    argsJson: c.optStr(t[8]),
    resultJson: c.optStr(t[9]),
    metaJson: c.optStr(t[10]),
    lastError: c.optStr(t[11]),
    runAt: c.int(t[12]),
    createdAt: c.int(t[13]),
    startedAt: c.optInt(t[14]),
    completedAt: c.optInt(t[15]),
    timeoutMs: c.optInt(t[16]),
    uniqueKey: c.optStr(t[17]),
    tenant: c.optStr(t[18]),
    parentId: c.optStr(t[19]),
    fanOutId: c.optStr(t[20]),
    fanOutIndex: c.optInt(t[21]),
    lockedBy: c.optStr(t[22]),
    leaseExpiresAt: c.optInt(t[23]),
    heartbeatAt: c.optInt(t[24]),
    wakeAt: c.optInt(t[25]),
    waitSignal: c.optStr(t[26]),
    concurrencyKey: c.optStr(t[27]),
    rateKey: c.optStr(t[28]),
    limited: c.int(t[29]) !== 0,
    debounceKey: c.optStr(t[30]),
    progressValue: c.optNum(t[31]),
    progressMessage: c.optStr(t[32]),
    progressAt: c.optInt(t[33]),
  };
}

/** A `sdj_steps` row as a `StepRow`. @internal */
export function mapStepRow(c: ColumnCoercer, r: DbRecord): StepRow {
  return {
    jobId: c.str(r['job_id']),
    stepIndex: c.int(r['step_index']),
    stepName: c.str(r['step_name']),
    status: c.str(r['status']) as StepRow['status'],
    outputJson: c.optStr(r['output']),
    error: c.optStr(r['error']),
  };
}

/** A `sdj_signals` row (seq, name, payload, created_at, consumed_at) as a `SignalRow`. @internal */
export function mapSignalRow(c: ColumnCoercer, r: DbRecord): SignalRow {
  return {
    seq: c.int(r['seq']),
    name: c.str(r['name']),
    payloadJson: c.optStr(r['payload']),
    createdAt: c.int(r['created_at']),
    consumedAt: c.optInt(r['consumed_at']),
  };
}

/** A `sdj_fan_outs` row (or its `row_to_json` / `JSON_OBJECT` encoding) as a `FanOutRow`. @internal */
export function mapFanOutRow(c: ColumnCoercer, r: DbRecord): FanOutRow {
  return {
    id: c.str(r['id']),
    parentId: c.str(r['parent_id']),
    stepIndex: c.int(r['step_index']),
    strategy: c.str(r['strategy']) as FanOutRow['strategy'],
    threshold: c.optNum(r['threshold']),
    total: c.int(r['total']),
    succeeded: c.int(r['succeeded']),
    failed: c.int(r['failed']),
    cancelled: c.int(r['cancelled']),
    status: c.str(r['status']) as FanOutRow['status'],
    deadlineAt: c.optInt(r['deadline_at']),
    createdAt: c.int(r['created_at']),
    decidedAt: c.optInt(r['decided_at']),
  };
}

/** A `sdj_schedules` row as a `ScheduleRow`. @internal */
export function mapScheduleRow(c: ColumnCoercer, r: DbRecord): ScheduleRow {
  return {
    name: c.str(r['name']),
    specJson: c.str(r['spec']),
    optionsJson: c.str(r['options']),
    nextRunAt: c.int(r['next_run_at']),
    lastRunAt: c.optInt(r['last_run_at']),
    lastJobId: c.optStr(r['last_job_id']),
    createdAt: c.int(r['created_at']),
    updatedAt: c.int(r['updated_at']),
  };
}

/** The columns `jobReclaimExpired` returns (id, type, queue, status, attempt, max_retries) as a `ReclaimedJob`. @internal */
export function mapReclaimedJob(c: ColumnCoercer, r: DbRecord): ReclaimedJob {
  return {
    id: c.str(r['id']),
    type: c.str(r['type']),
    queue: c.str(r['queue']),
    status: c.str(r['status']) as ReclaimedJob['status'],
    attempt: c.int(r['attempt']),
    maxRetries: c.int(r['max_retries']),
  };
}

/** Claim order: priority descending, then run_at, then id (the order every claim statement uses). @internal */
export function compareClaimOrder(a: JobRow, b: JobRow): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
