/**
 * SQLite result rows (snake_case columns, as `better-sqlite3` returns them) and their mapping to
 * the storage contract's rows. The mapping itself is the shared one (shared/row-mapping.ts); this
 * file gives it SQLite's column coercer: integers come as `number`, or as `bigint` when a
 * user-supplied `Database` runs in safe-integers mode.
 * @internal
 */
import {
  createColumnCoercer,
  mapFanOutRow,
  mapJobRow,
  mapJobTuple,
  mapReclaimedJob,
  mapScheduleRow,
  mapSignalRow,
  mapStepRow,
  type DbRecord,
} from '../shared/row-mapping.js';
import type { FanOutRow, JobRow, ReclaimedJob, ScheduleRow, SignalRow, StepRow } from '../storage.js';

/** Integer column value: `bigint` on a `Database` in safe-integers mode. */
type Int = number | bigint;

/** SQLite's column coercer (errors name the dialect). */
export const sqliteColumns = createColumnCoercer('sqlite');

/** `sdj_jobs` as SQLite returns it (the columns the operations read by name). */
export type JobDbRow = DbRecord & {
  id: string;
  status: string;
  unique_key: string | null;
  fan_out_id: string | null;
};

/**
 * A job row as a raw-mode tuple, in `JOB_COLUMNS` order (queries/common.ts): raw mode skips
 * building one keyed object per row on the hot path.
 */
export type JobTuple = readonly unknown[];

/** `sdj_fan_outs` as SQLite returns it. */
export type FanOutDbRow = DbRecord & {
  id: string;
  parent_id: string;
  status: string;
};

/** The columns `jobReclaimExpired` returns (id, type, queue, status, attempt, max_retries, fan_out_id). */
export type ReclaimDbRow = DbRecord & {
  id: string;
  status: string;
  fan_out_id: string | null;
};

/** A job id and its fan-out, as `RETURNING id, fan_out_id` gives them. */
export type JobFanOutDbRow = DbRecord & {
  id: string;
  fan_out_id: string | null;
};

/** An integer column (a count, a time) as a JS number. */
export function int(v: Int): number {
  return sqliteColumns.int(v);
}

/** Maps a job row. */
export function toJobRow(r: DbRecord): JobRow {
  return mapJobRow(sqliteColumns, r);
}

/** Maps a job tuple (`JOB_COLUMNS` order). */
export function tupleToJobRow(r: JobTuple): JobRow {
  return mapJobTuple(sqliteColumns, r);
}

/** Maps a step row, with the instant it was recorded (`created_at`). */
export function toStepRow(r: DbRecord): StepRow {
  return { ...mapStepRow(sqliteColumns, r), createdAt: sqliteColumns.int(r['created_at']) };
}

/** Maps a fan-out row. */
export function toFanOutRow(r: DbRecord): FanOutRow {
  return mapFanOutRow(sqliteColumns, r);
}

/** Maps a schedule row. */
export function toScheduleRow(r: DbRecord): ScheduleRow {
  return mapScheduleRow(sqliteColumns, r);
}

/** Maps a reclaimed job. */
export function toReclaimedJob(r: DbRecord): ReclaimedJob {
  return mapReclaimedJob(sqliteColumns, r);
}

/** Maps a `sdj_signals` row. */
export function toSignalRow(r: DbRecord): SignalRow {
  return mapSignalRow(sqliteColumns, r);
}
