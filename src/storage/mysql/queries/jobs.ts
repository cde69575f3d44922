/**
 * MySQL/MariaDB statements that create, read and administer jobs (outside the run hot path).
 * @internal
 */
import { JOB_COLUMNS, NOW, repeat } from './common.js';
import { FLOW_GROUP, typeLimitedSql } from './flow.js';

/**
 * One row of {@link jobInsertSql}: 21 params, see `rowValues` in `job-insert.ts`. `limited` is
 * read from `sdj_type_limits` in the statement ({@link typeLimitedSql}); `flow_group` is
 * computed from the columns set before it in the row.
 */
const INSERT_ROW =
  `(?, ?, ?, 'pending', ?, 0, ?, 0, ?, ?, GREATEST(${NOW} + ?, ?), ${NOW}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ` +
  `${typeLimitedSql('?')}, IF(limited = 1, ${FLOW_GROUP}, NULL))`;

/**
 * Inserts `n` pending jobs. run_at = max(now + delayMs, runAt ?? 0), created_at = now.
 * Params per row: id, type, queue, priority, maxRetries, args, meta, now, delayMs, runAt ?? 0,
 * now, timeoutMs, uniqueKey, tenant, parentId, fanOutId, fanOutIndex, concurrencyKey, rateKey,
 * debounceKey, type.
 * With `skipDuplicates`, a row clashing on a unique index is left out (no error).
 */
export function jobInsertSql(n: number, skipDuplicates: boolean): string {
  return (
    'INSERT INTO sdj_jobs (id, type, queue, status, priority, attempt, max_retries, run_count, args, meta, run_at, created_at, ' +
    'timeout_ms, unique_key, tenant, parent_id, fan_out_id, fan_out_index, concurrency_key, rate_key, debounce_key, limited, flow_group) VALUES ' +
    repeat(INSERT_ROW, n) +
    (skipDuplicates ? ' ON DUPLICATE KEY UPDATE id = id' : '')
  );
}

/**
 * Every job holding one of the unique keys, live or finished (`sdj_jobs_unique_key`), with the
 * database now. Params: now, keys[]. Result: `{ id, unique_key, status, completed_at, now_ms }[]`.
 */
export const JOB_UNIQUE_HOLDERS = `SELECT id, unique_key, status, completed_at, ${NOW} AS now_ms FROM sdj_jobs FORCE INDEX (sdj_jobs_unique_key) WHERE unique_key IN (?)`;

/**
 * Locks debounce keys (their `sdj_debounce_locks` rows, inserted on first use) until the
 * transaction ends. Params per row: lock key (32 bytes), now. Rows in key order, so that two
 * batches lock in one order.
 */
export function debounceLockSql(n: number): string {
  return `INSERT INTO sdj_debounce_locks (lock_key, created_at) VALUES ${repeat(`(?, ${NOW})`, n)} ON DUPLICATE KEY UPDATE lock_key = lock_key`;
}

/**
 * The pending holders of debounce keys (`debounce_active` values), locked, oldest first.
 * Params: keys[] (bytes). Result: `{ id, k }[]`.
 */
export const DEBOUNCE_HOLDERS =
  'SELECT id, debounce_active AS k FROM sdj_jobs FORCE INDEX (sdj_jobs_debounce) WHERE debounce_active IN (?) ORDER BY created_at, id FOR UPDATE';

/**
 * Replaces a pending debounce holder's fields with a debounce's (id, created_at, attempt and
 * last_error kept); `limited` and `flow_group` follow the new keys.
 * Params: queue, priority, maxRetries, args, meta, now, delayMs, runAt ?? 0, timeoutMs, tenant,
 * concurrencyKey, rateKey, id.
 */
export const DEBOUNCE_REPLACE =
  'UPDATE sdj_jobs SET queue = ?, priority = ?, max_retries = ?, args = ?, meta = ?, ' +
  `run_at = GREATEST(${NOW} + ?, ?), timeout_ms = ?, tenant = ?, concurrency_key = ?, rate_key = ?, ` +
  `limited = ${typeLimitedSql('sdj_jobs.type')}, flow_group = IF(limited = 1, ${FLOW_GROUP}, NULL) ` +
  "WHERE id = ? AND status = 'pending'";

/** Which of the given ids exist. Params: ids[]. Result: `{ id }[]`. */
export const JOB_IDS_EXISTING = 'SELECT id FROM sdj_jobs WHERE id IN (?)';

/** A non-terminal job holding one of the keys. Params: keys[]. Result: `{ unique_key }[]`. */
export const JOB_ACTIVE_UNIQUE_KEY = `SELECT unique_key FROM sdj_jobs WHERE unique_active IN (?) LIMIT 1`;

/** One job. Params: id. */
export const JOB_GET = `SELECT ${JOB_COLUMNS} FROM sdj_jobs WHERE id = ?`;

/** Jobs by id (each once, ids not found left out). Params: ids[]. */
export const JOB_GET_MANY = `SELECT ${JOB_COLUMNS} FROM sdj_jobs WHERE id IN (?)`;

/** Job counts by status over every queue. Result: `{ status, n }[]`. */
export const JOB_COUNT_BY_STATUS = 'SELECT status, COUNT(*) AS n FROM sdj_jobs GROUP BY status';

/** Job counts by status of one queue. Params: queue. Result: `{ status, n }[]`. */
export const JOB_COUNT_BY_STATUS_IN_QUEUE = 'SELECT status, COUNT(*) AS n FROM sdj_jobs WHERE queue = ? GROUP BY status';

/** Status of one job. Params: id. Result: `{ status }`. */
export const JOB_STATUS = 'SELECT status FROM sdj_jobs WHERE id = ?';

/** A job's status and fan-out, without a lock (planning which fan-outs to lock first). Params: id. Result: `{ status, fan_out_id }`. */
export const JOB_PEEK = 'SELECT status, fan_out_id FROM sdj_jobs WHERE id = ?';

/** Locks one job for a state change. Params: id. Result: `{ id, status, fan_out_id }`. */
export const JOB_LOCK = 'SELECT id, status, fan_out_id FROM sdj_jobs WHERE id = ? FOR UPDATE';

/** pending → paused. Params: id. */
export const JOB_PAUSE = "UPDATE sdj_jobs SET status = 'paused', debounce_key = NULL WHERE id = ? AND status = 'pending'";

/** paused → pending. Params: id. */
export const JOB_RESUME = "UPDATE sdj_jobs SET status = 'pending' WHERE id = ? AND status = 'paused'";

/**
 * failed/cancelled → pending, attempt 0, run_at now; last_error kept; lease and wait cleared;
 * `limited` decided again from `sdj_type_limits` (a type limit may have appeared or gone since
 * the job was live). Params: now, id.
 */
export const JOB_RETRY =
  `UPDATE sdj_jobs SET status = 'pending', attempt = 0, run_at = ${NOW}, result = NULL, completed_at = NULL, ` +
  'locked_by = NULL, lease_expires_at = NULL, wake_at = NULL, wait_signal = NULL, ' +
  `limited = ${typeLimitedSql('sdj_jobs.type')}, flow_group = IF(limited = 1, ${FLOW_GROUP}, NULL) ` +
  "WHERE id = ? AND status IN ('failed', 'cancelled')";

/** The ids of the subtree under the given jobs (no locks). Params: rootIds[]. Result: `{ id }[]`. */
export const JOB_SUBTREE_IDS =
  'WITH RECURSIVE sub (id) AS (SELECT id FROM sdj_jobs WHERE parent_id IN (?) ' +
  'UNION ALL SELECT c.id FROM sdj_jobs c JOIN sub ON c.parent_id = sub.id) SELECT id FROM sub';

/** Deletes jobs. Params: ids[]. */
export const JOB_DELETE_MANY = 'DELETE FROM sdj_jobs WHERE id IN (?)';

/** Deletes the checkpoints of jobs. Params: jobIds[]. */
export const STEP_DELETE_FOR_JOBS = 'DELETE FROM sdj_steps WHERE job_id IN (?)';

/** Deletes the fan-outs of parent jobs. Params: parentIds[]. */
export const FAN_OUT_DELETE_FOR_PARENTS = 'DELETE FROM sdj_fan_outs WHERE parent_id IN (?)';

/** Deletes the signals of jobs. Params: jobIds[]. */
export const SIGNAL_DELETE_FOR_JOBS = 'DELETE FROM sdj_signals WHERE job_id IN (?)';

// ---------------------------------------------------------------------------- retention

/**
 * The database clock in ms, as {@link NOW} reads it when no clock is injected, with no bound value:
 * the plan carries it on its rows, and the driver uses its injected clock instead when it has one.
 */
const DB_NOW = NOW.replace('?', 'NULL');

/**
 * The rest of a subtree walk whose anchor, `tree (root, n, id, status, completed_at)`, holds the
 * roots: every job below them over `parent_id` (through `sdj_jobs_parent`), then one `j` row per
 * job (the roots included, each with the database clock, `db_now_ms`) and one `f` row per fan-out
 * whose parent is one of them. No locks.
 */
const TREE_WALK =
  'UNION ALL SELECT t.root, t.n, c.id, c.status, c.completed_at FROM tree t JOIN sdj_jobs c ON c.parent_id = t.id) ' +
  `SELECT 'j' AS kind, root, n, id, status, completed_at, ${DB_NOW} AS db_now_ms FROM tree ` +
  "UNION ALL SELECT 'f', t.root, t.n, f.id, NULL, NULL, NULL FROM tree t JOIN sdj_fan_outs f ON f.parent_id = t.id";

/**
 * One status's due roots in {@link pruneDueSql}: a range of `sdj_jobs_prune` (status,
 * lease_expires_at, parent_id, completed_at), in (completed_at, id) order. A finished job holds no
 * lease, so `lease_expires_at IS NULL` keeps every one of them and only narrows the range.
 */
function dueRootsOf(after: boolean): string {
  return (
    '(SELECT id, status, completed_at FROM sdj_jobs FORCE INDEX (sdj_jobs_prune) ' +
    `WHERE status = ? AND lease_expires_at IS NULL AND parent_id IS NULL AND completed_at < ${NOW} - ?` +
    (after ? ' AND (completed_at > ? OR (completed_at = ? AND id > ?))' : '') +
    ' ORDER BY completed_at, id LIMIT ?)'
  );
}

/**
 * A window of due roots with their subtrees and fan-outs (no locks): the oldest `n` roots (no
 * parent) of the given statuses whose `completed_at` is older than their status's age
 * (`completed_at < now - age`), after the cursor when `after`, numbered `n` = 1, 2, ... in
 * (completed_at, id) order; then the {@link TREE_WALK} rows of each. Each status is its own index
 * range read only as far as the window needs.
 * Params per status: status, now, age, [cursor completed_at, cursor completed_at, cursor id,] n;
 * then n. Result: `{ kind: 'j' | 'f', root, n, id, status, completed_at, db_now_ms }[]`.
 */
export function pruneDueSql(statuses: number, after: boolean): string {
  const parts = Array.from({ length: statuses }, () => dueRootsOf(after)).join(' UNION ALL ');
  return (
    'WITH RECURSIVE due (id, status, completed_at, n) AS (' +
    `SELECT id, status, completed_at, ROW_NUMBER() OVER (ORDER BY completed_at, id) FROM (${parts}) d ORDER BY completed_at, id LIMIT ?), ` +
    'tree (root, n, id, status, completed_at) AS (SELECT id, n, id, status, completed_at FROM due ' +
    TREE_WALK
  );
}

/**
 * The current subtrees and fan-outs of some roots (no locks), read again once their rows are
 * locked, to find any job or fan-out that appeared since they were planned.
 * Params: rootIds[]. Result: as {@link pruneDueSql}.
 */
export const PRUNE_TREES =
  'WITH RECURSIVE tree (root, n, id, status, completed_at) AS (SELECT id, 0, id, status, completed_at FROM sdj_jobs WHERE id IN (?) ' + TREE_WALK;

/** Locks fan-outs about to be deleted, in id order, skipping those others hold. Params: ids[]. Result: `{ id }[]`. */
export const PRUNE_LOCK_FAN_OUTS = 'SELECT id FROM sdj_fan_outs FORCE INDEX (PRIMARY) WHERE id IN (?) ORDER BY id FOR UPDATE SKIP LOCKED';

/**
 * Locks jobs about to be deleted, in id order, skipping those others hold, with their state now
 * and the database now. Params: now, ids[]. Result: `{ id, parent_id, status, completed_at, now_ms }[]`.
 */
export const PRUNE_LOCK_JOBS =
  `SELECT id, parent_id, status, completed_at, ${NOW} AS now_ms FROM sdj_jobs FORCE INDEX (PRIMARY) WHERE id IN (?) ORDER BY id FOR UPDATE SKIP LOCKED`;

/**
 * The ids of a prune delete as the derived table `d (id)`: a JSON array of strings bound as one
 * value, read with `JSON_TABLE` (MySQL 8, MariaDB >= 10.6) in the type and collation of the id
 * columns.
 */
const PRUNE_IDS = "JSON_TABLE(?, '$[*]' COLUMNS (id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin PATH '$')) d";

/**
 * A prune delete of the rows of `table` whose `column` is one of the ids: the id table first
 * (`STRAIGHT_JOIN`), then `table` looked up through `index` for each id (`eq_ref` / `ref`), so the
 * statement reads, and locks, only the rows it deletes, whatever share of the table the ids are.
 * (`DELETE ... WHERE id IN (...)` does not promise that: MariaDB scans the whole table when the
 * ids are a large share of a small one, `FORCE INDEX` or not, and a locking scan waits for every
 * row another transaction holds.) Bulk deletes (`queries/bulk.ts`) use it too. Params: JSON array of ids.
 */
export function pruneDeleteSql(table: string, column: string, index: string): string {
  return `DELETE x FROM ${PRUNE_IDS} STRAIGHT_JOIN ${table} x FORCE INDEX (${index}) ON x.${column} = d.id`;
}

/** Deletes the checkpoints of pruned jobs. Params: JSON array of job ids. */
export const PRUNE_DELETE_STEPS = pruneDeleteSql('sdj_steps', 'job_id', 'PRIMARY');

/** Deletes the signals of pruned jobs. Params: JSON array of job ids. */
export const PRUNE_DELETE_SIGNALS = pruneDeleteSql('sdj_signals', 'job_id', 'sdj_signals_job_name');

/** Deletes pruned fan-outs. Params: JSON array of fan-out ids. */
export const PRUNE_DELETE_FAN_OUTS = pruneDeleteSql('sdj_fan_outs', 'id', 'PRIMARY');

/** Deletes pruned jobs. Params: JSON array of job ids. */
export const PRUNE_DELETE_JOBS = pruneDeleteSql('sdj_jobs', 'id', 'PRIMARY');
