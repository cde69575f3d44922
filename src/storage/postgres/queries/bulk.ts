/**
 * PostgreSQL statements of the bulk actions by id (`bulk-ops.ts`): subtree walks, row locks,
 * the retry that skips a held unique key, and subtree deletion. Lookups and locks go through
 * `sdj_jobs` (a subtree spans both partitions).
 * @internal
 */
import { jobRetryStatement } from './jobs.js';

/**
 * One level of a subtree walk, with each child's parent (so every given job's own subtree can
 * be told apart). Params: $1 ids. Result: { id, parent_id }.
 */
export const JOB_CHILDREN_OF = 'SELECT id, parent_id FROM {s}.sdj_jobs WHERE parent_id = ANY($1::text[])';

/**
 * Locks jobs by id, in id order (after the fan-outs they may count on: fan-outs before jobs),
 * and reads what the bulk actions decide on. Params: $1 ids. Result: { id, status, parent_id }.
 */
export const JOB_LOCK_MANY = `
SELECT id, status, parent_id FROM {s}.sdj_jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`;

/** The status of jobs by id, without locking. Params: $1 ids. Result: { id, status }. */
export const JOB_STATUS_MANY = 'SELECT id, status FROM {s}.sdj_jobs WHERE id = ANY($1::text[])';

/**
 * As `JOB_RETRY` (`queries/jobs.ts`), except that a job whose unique key a live job holds, as
 * this statement sees it (earlier retries of the same transaction included), is left alone and
 * reported `held`. Params: $1 now, $2 id, $3 channel, $4 failed, $5 cancelled.
 * Result: one row { n: rows moved, held }.
 */
export const JOB_RETRY_UNLESS_HELD = jobRetryStatement(true);

/**
 * Drops what the earlier runs of retried jobs left: the checkpoints and fan-outs of the jobs
 * $1 and of their descendants $2, and the descendants themselves with their signals.
 * Params: $1 retried ids, $2 their descendants. Result: none.
 */
export const JOB_DROP_WORKFLOW_STATE_MANY = `
WITH ds AS (DELETE FROM {s}.sdj_steps WHERE job_id = ANY($1::text[]) OR job_id = ANY($2::text[])),
df AS (DELETE FROM {s}.sdj_fan_outs WHERE parent_id = ANY($1::text[]) OR parent_id = ANY($2::text[])),
dg AS (DELETE FROM {s}.sdj_signals WHERE job_id = ANY($2::text[])),
dj AS (DELETE FROM {s}.sdj_jobs WHERE id = ANY($2::text[]))
SELECT 1 AS done`;

/**
 * Deletes jobs (whole subtrees, listed by the caller) with every checkpoint, signal and fan-out
 * row they own, as retention does. Params: $1 job ids. Result: one row { deleted }.
 */
export const JOB_DELETE_TREES = `
WITH ds AS (DELETE FROM {s}.sdj_steps WHERE job_id = ANY($1::text[])),
dg AS (DELETE FROM {s}.sdj_signals WHERE job_id = ANY($1::text[])),
df AS (DELETE FROM {s}.sdj_fan_outs WHERE parent_id = ANY($1::text[])),
dj AS (DELETE FROM {s}.sdj_jobs WHERE id = ANY($1::text[]) RETURNING id)
SELECT count(*) AS deleted FROM dj`;
