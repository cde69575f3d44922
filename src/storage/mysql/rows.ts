/**
 * MySQL/MariaDB result rows and their mapping to the storage contract's rows. The mapping itself
 * is the shared one (shared/row-mapping.ts); this file gives it the MySQL column coercer: mysql2
 * returns BIGINT as a number (or, past 2^53, a string), DECIMAL as a string, and binary columns
 * and expressions as Buffers.
 * @internal
 */
import { createColumnCoercer, mapFanOutRow, mapJobRow, mapScheduleRow, mapSignalRow, mapStepRow, type DbRecord } from '../shared/row-mapping.js';
import type { FanOutRow, JobRow, ScheduleRow, SignalRow, StepRow } from '../storage.js';

/** A raw row as mysql2 returns it, keyed by column name. */
export type DbRow = Record<string, unknown>;

/** The MySQL column coercer (errors name the dialect). */
export const mysqlColumns = createColumnCoercer('mysql');

/** An integer column (BIGINT ms, counters, 0/1 flags). @throws StorageError on anything else */
export function num(v: unknown): number {
  return mysqlColumns.int(v);
}

/** A nullable integer column. */
export function numOrNull(v: unknown): number | null {
  return mysqlColumns.optInt(v);
}

/** A text column (a Buffer when the column or expression is binary). */
export function str(v: unknown): string {
  return mysqlColumns.str(v);
}

/** A nullable text column. */
export function strOrNull(v: unknown): string | null {
  return mysqlColumns.optStr(v);
}

/** A `sdj_jobs` row (selected with `JOB_COLUMNS`) as a `JobRow`. */
export function toJobRow(r: DbRecord): JobRow {
  return mapJobRow(mysqlColumns, r);
}

/** A `sdj_steps` row as a `StepRow`, with the instant it was recorded (`created_at`). */
export function toStepRow(r: DbRecord): StepRow {
  return { ...mapStepRow(mysqlColumns, r), createdAt: mysqlColumns.int(r['created_at']) };
}

/** A `sdj_fan_outs` row as a `FanOutRow`. */
export function toFanOutRow(r: DbRecord): FanOutRow {
  return mapFanOutRow(mysqlColumns, r);
}

/**
 * The fan-out of a row whose fan-out columns carry the prefix `prefix` (reads that join job
 * rows, see `FAN_OUT_COLUMNS_FO`).
 */
export function toPrefixedFanOutRow(r: DbRecord, prefix: string): FanOutRow {
  const own: DbRow = {};
  for (const [k, v] of Object.entries(r)) if (k.startsWith(prefix)) own[k.slice(prefix.length)] = v;
  return toFanOutRow(own);
}

/** A `sdj_schedules` row as a `ScheduleRow`. */
export function toScheduleRow(r: DbRecord): ScheduleRow {
  return mapScheduleRow(mysqlColumns, r);
}

/** Maps a `sdj_signals` row. */
export function toSignalRow(r: DbRecord): SignalRow {
  return mapSignalRow(mysqlColumns, r);
}
