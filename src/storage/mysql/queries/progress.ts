/**
 * MySQL/MariaDB statements of job progress (`progress-ops.ts`, `Storage.jobProgressMany`).
 * @internal
 */
import { NOW } from './common.js';

/**
 * Locks, in id order, the jobs whose run fences hold (running, locked by the worker, at the run
 * count), with the database now. Params: now, ids[], [id, workerId, runCount][].
 * Result: `{ id, now_ms }[]`.
 */
export const PROGRESS_LOCK =
  `SELECT id, ${NOW} AS now_ms FROM sdj_jobs WHERE id IN (?) AND status = 'running' ` +
  'AND (id, locked_by, run_count) IN (?) ORDER BY id FOR UPDATE';

/**
 * Stores the progress of `n` jobs locked by {@link PROGRESS_LOCK}; changes nothing else.
 * Params: n × (id, value), n × (id, message), at, ids[].
 */
export function progressUpdateSql(n: number): string {
  const cases = (then: string): string => Array.from({ length: n }, () => `WHEN ? THEN ${then}`).join(' ');
  return (
    `UPDATE sdj_jobs SET progress_value = CASE id ${cases('CAST(? AS DOUBLE)')} END, ` +
    `progress_message = CASE id ${cases('?')} END, progress_at = ? WHERE id IN (?)`
  );
}
