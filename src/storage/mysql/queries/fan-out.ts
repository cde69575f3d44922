/**
 * MySQL/MariaDB statements of fan-out accounting (`fan-out-accounting.ts`): the fan-out locks
 * taken before any job row, subtree locks and cancels, fan-out counters and decisions.
 * @internal
 */
import { FAN_OUT_COLUMNS, NON_TERMINAL, NOW } from './common.js';

/** Locks fan-outs for accounting, in id order. Params: now, ids[]. Result: fan-out columns + `now_ms`. */
export const FAN_OUT_LOCK_MANY = `SELECT ${FAN_OUT_COLUMNS}, ${NOW} AS now_ms FROM sdj_fan_outs WHERE id IN (?) ORDER BY id FOR UPDATE`;

/**
 * The fan-outs of some jobs and of every job below them (no locks): what a cancel of their
 * subtrees may count on. Params: jobIds[]. Result: `{ id }[]`.
 */
export const FAN_OUT_IDS_UNDER_JOBS =
  'WITH RECURSIVE sub (id) AS (SELECT id FROM sdj_jobs WHERE id IN (?) ' +
  'UNION ALL SELECT c.id FROM sdj_jobs c JOIN sub ON c.parent_id = sub.id) ' +
  'SELECT f.id FROM sdj_fan_outs f JOIN sub ON f.parent_id = sub.id';

/**
 * The fan-outs below the unfinished children of some fan-outs (no locks): what a failed decision
 * of those fan-outs, which cancels the children with their subtrees, may count on.
 * Params: fanOutIds[]. Result: `{ id }[]`.
 */
export const FAN_OUT_IDS_BELOW_UNFINISHED =
  `WITH RECURSIVE sub (id) AS (SELECT id FROM sdj_jobs WHERE fan_out_id IN (?) AND status IN ${NON_TERMINAL} ` +
  'UNION ALL SELECT c.id FROM sdj_jobs c JOIN sub ON c.parent_id = sub.id) ' +
  'SELECT f.id FROM sdj_fan_outs f JOIN sub ON f.parent_id = sub.id';

/**
 * The whole subtree under the given jobs (children, grandchildren, ...), locked.
 * Params: rootIds[]. Result: `{ id, status, fan_out_id }[]`.
 */
export const JOB_SUBTREE_LOCK =
  'WITH RECURSIVE sub (id) AS (SELECT id FROM sdj_jobs WHERE parent_id IN (?) ' +
  'UNION ALL SELECT c.id FROM sdj_jobs c JOIN sub ON c.parent_id = sub.id) ' +
  'SELECT j.id, j.status, j.fan_out_id FROM sdj_jobs j JOIN sub ON sub.id = j.id ORDER BY j.id FOR UPDATE';

/** Cancels non-terminal jobs. Params: now, ids[]. */
export const JOB_CANCEL_MANY =
  `UPDATE sdj_jobs SET status = 'cancelled', completed_at = ${NOW}, locked_by = NULL, lease_expires_at = NULL, ` +
  `wake_at = NULL, wait_signal = NULL WHERE id IN (?) AND status IN ${NON_TERMINAL}`;

/**
 * The unfinished children of a fan-out, locked in index order. The index is forced: ordering by
 * id let the optimizer pick a scan of the whole primary key on a small table, and a locking read
 * waits for every row it scans — unrelated jobs included. Params: fanOutId. Result: `{ id, status }[]`.
 */
export const FAN_OUT_UNFINISHED_CHILDREN =
  `SELECT id, status FROM sdj_jobs FORCE INDEX (sdj_jobs_fan_out) WHERE fan_out_id = ? AND status IN ${NON_TERMINAL} ORDER BY fan_out_index FOR UPDATE`;

/** Writes a fan-out's counters and decision. Params: succeeded, failed, cancelled, status, decidedAt, id. */
export const FAN_OUT_UPDATE = 'UPDATE sdj_fan_outs SET succeeded = ?, failed = ?, cancelled = ?, status = ?, decided_at = ? WHERE id = ?';

/** Resumes a parent waiting on a decided fan-out. Params: parentId. */
export const FAN_OUT_WAKE_PARENT =
  "UPDATE sdj_jobs SET status = 'pending', wake_at = NULL, wait_signal = NULL WHERE id = ? AND status = 'waiting'";
