/**
 * PostgreSQL result rows and their mapping to the storage contract's rows. The mapping itself is
 * the shared one (shared/row-mapping.ts); this file gives it PostgreSQL's column coercer: `pg`
 * returns BIGINT and count(*) columns as strings, integer and double columns as numbers, and the
 * values inside `row_to_json` / `json_agg` results as JSON numbers.
 * @internal
 */
import {
  compareClaimOrder,
  createColumnCoercer,
  mapFanOutRow,
  mapJobRow,
  mapReclaimedJob,
  mapScheduleRow,
  mapSignalRow,
  mapStepRow,
  type DbRecord,
} from '../shared/row-mapping.js';
import type { FanOutRow, JobRow, ReclaimedJob, ScheduleRow, SignalRow, StepRow } from '../storage.js';

export { compareClaimOrder };

/** PostgreSQL's column coercer (errors name the dialect). */
export const pgColumns = createColumnCoercer('postgres');

/** A `sdj_jobs` row as `pg` returns it (the columns the operations read by name). */
export type JobDbRow = DbRecord & {
  id: string;
  status: string;
  fan_out_id: string | null;
};

/** A `sdj_fan_outs` row as `pg` returns it, or as `row_to_json` encodes it. */
export type FanOutDbRow = DbRecord & {
  id: string;
  parent_id: string;
  status: string;
};

/** A `sdj_steps` row as `pg` returns it. */
export type StepDbRow = DbRecord;

/** A `sdj_schedules` row as `pg` returns it. */
export type ScheduleDbRow = DbRecord;

/**
 * A BIGINT (or count) as a JS number.
 * @throws StorageError when the value is not a safe integer
 */
export function toInt(v: unknown): number {
  return pgColumns.int(v);
}

/** A nullable BIGINT as a JS number or null. */
export function toIntOrNull(v: unknown): number | null {
  return pgColumns.optInt(v);
}

/** Maps a job row. */
export function toJobRow(r: DbRecord): JobRow {
  return mapJobRow(pgColumns, r);
}

/** Maps a fan-out row. */
export function toFanOutRow(r: DbRecord): FanOutRow {
  return mapFanOutRow(pgColumns, r);
}

/** Maps a step row, with the instant it was recorded (`created_at`). */
export function toStepRow(r: DbRecord): StepRow {
  return { ...mapStepRow(pgColumns, r), createdAt: pgColumns.int(r['created_at']) };
}

/** Maps a schedule row. */
export function toScheduleRow(r: DbRecord): ScheduleRow {
  return mapScheduleRow(pgColumns, r);
}

/** Maps a reclaimed job (id, type, queue, status, attempt, max_retries). */
export function toReclaimedJob(r: DbRecord): ReclaimedJob {
  return mapReclaimedJob(pgColumns, r);
}

/** Maps a `sdj_signals` row. */
export function toSignalRow(r: DbRecord): SignalRow {
  return mapSignalRow(pgColumns, r);
}
