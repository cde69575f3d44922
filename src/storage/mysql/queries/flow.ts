/**
 * MySQL/MariaDB statements of flow control's claim (`jobClaimLimited`, see `flow-ops.ts`) and the
 * fragments every statement that marks jobs `limited` shares. The indexes they read are described
 * in migration 4.
 * @internal
 */
import { JOB_COLUMNS, NOW, repeat } from './common.js';

/**
 * A job's flow group over the columns of the row being written (`type`, `concurrency_key`,
 * `rate_key`): the SHA-256 of its type and keys, each length-prefixed, a null key as ''. Two
 * jobs share it exactly when they share their type concurrency group and their type rate group.
 */
export const FLOW_GROUP =
  "UNHEX(SHA2(CONCAT(OCTET_LENGTH(type), ':', type, OCTET_LENGTH(IFNULL(concurrency_key, '')), ':', IFNULL(concurrency_key, ''), IFNULL(rate_key, '')), 256))";

/**
 * 1 when the type `typeExpr` has a type limit row, else 0, reading `sdj_type_limits` under a
 * share lock of flow lock row 2: a type limit's appearance or removal (which locks that row
 * exclusively before re-marking the type's jobs) waits for the statement's transaction, so no
 * job written in flight misses it.
 */
export function typeLimitedSql(typeExpr: string): string {
  return `(SELECT EXISTS (SELECT 1 FROM sdj_type_limits l WHERE l.type = ${typeExpr}) FROM sdj_flow_locks WHERE id = 2 LOCK IN SHARE MODE)`;
}

/** Takes the lock every limited claim, limit change and queue pause takes first (flow lock row 1). */
export const FLOW_LOCK = 'SELECT id FROM sdj_flow_locks WHERE id = 1 FOR UPDATE';

/** Takes flow lock row 2 exclusively (a type limit appears or disappears; see {@link typeLimitedSql}). */
export const FLOW_LOCK_TYPE_LIMITS = 'SELECT id FROM sdj_flow_locks WHERE id = 2 FOR UPDATE';

/** The columns of a candidate row of {@link claimLimitedRead} after its kind (see there). */
const CANDIDATE = 'j.type, j.concurrency_key, j.rate_key, NULL, NULL, NULL, NULL, NULL, j.id, j.queue, j.priority, j.run_at';

/** The flow group column of a row of {@link claimLimitedRead}: set on `h` rows only. */
const NO_GROUP = 'NULL AS grp';

/** The columns of a state row of {@link claimLimitedRead} after its first nine. */
const STATE_REST = `NULL AS id, NULL AS queue, NULL AS priority, NULL AS run_at, ${NO_GROUP}`;

/**
 * A ready job of the flow group `g` (a row of the group scan) in claim order, `limit` saying
 * which, as `priority:run_at:bytes:id` (`bytes` the id's length in bytes): one ordered probe of
 * `sdj_jobs_flow`, which holds all four (no row lookup). Params: now.
 */
function groupProbe(limit: string): string {
  return (
    "(SELECT CONCAT(f.priority, ':', f.run_at, ':', OCTET_LENGTH(f.id), ':', f.id) FROM sdj_jobs f FORCE INDEX (sdj_jobs_flow) " +
    `WHERE f.flow_queue = g.queue AND f.flow_group = g.flow_group AND f.run_at <= ${NOW} ORDER BY f.priority DESC, f.run_at, f.id ${limit})`
  );
}

/** A statement and its values. */
export interface FlowStatement {
  sql: string;
  values: unknown[];
}

/**
 * Everything a limited claim decides from, in one statement read after the flow lock (so each
 * part sees every claim committed before): rows `{ kind, name, k1, k2, a, b, c, d, tat, id,
 * queue, priority, run_at, grp }` of kinds
 * - `n`: the database now (`a`);
 * - `q`: a requested queue's row: paused (`a`), concurrency (`b`), rate limit (`c`), period (`d`);
 * - `t`: a type limit row: updated_at (`a`), concurrency, rate limit, period;
 * - `c`: running jobs (`a`) per (type `name`, concurrency key `k1` with null as '', queue `k2`),
 *   exact bytes, of the types with a concurrency limit and the requested queues with one: the
 *   running rows through `sdj_jobs_prune` (status first), bounded by the fleet's concurrency;
 * - `s`: rate state still ahead of now (`tat`) of the rate-limited types (`name`, `k1` the key)
 *   and of the requested queues (`k2` = 'queue');
 * - `h`: per requested queue not paused, one row per flow group with a ready job: the group's
 *   type and keys (`name`, `k1`, `k2`, read from its first job's row), `queue`, `grp`, and in `id`
 *   its first two ready jobs in claim order, each as `priority:run_at:bytes:id` (the second tells
 *   whether the group still has a job waiting once the first starts). The distinct groups of the
 *   queue's pending limited jobs come from a loose scan of `sdj_jobs_wake` (one probe per group,
 *   never the jobs of a group), then two ordered probes of `sdj_jobs_flow` per group, and one row
 *   lookup. So a group with a backlog costs the same as a group of two jobs;
 * - `z`: per requested queue with a queue limit and not paused, its first `limit` ready jobs
 *   without type limits in claim order (`sdj_jobs_claim`, range (queue, 'pending', 0)).
 * Candidate rows carry `id, queue, name` (type), `k1` / `k2` (the keys, as stored), `priority`,
 * `run_at`, and on `h` rows the flow group (`grp`).
 */
export function claimLimitedRead(now: number | null, queues: readonly { name: string; limit: number }[]): FlowStatement {
  const names = queues.map((q) => q.name);
  const values: unknown[] = [now];
  const parts = [`SELECT 'n' AS kind, NULL AS name, NULL AS k1, NULL AS k2, ${NOW} AS a, NULL AS b, NULL AS c, NULL AS d, NULL AS tat, ${STATE_REST}`];
  parts.push(
    "SELECT 'q', s.name, NULL, NULL, s.paused, s.concurrency, s.rate_limit, s.rate_period_ms, NULL, " +
      `${STATE_REST} FROM sdj_queues s WHERE s.name IN (?)`,
  );
  values.push(names);
  parts.push(`SELECT 't', l.type, NULL, NULL, l.updated_at, l.concurrency, l.rate_limit, l.rate_period_ms, NULL, ${STATE_REST} FROM sdj_type_limits l`);
  parts.push(
    "SELECT 'c', CAST(r.type AS BINARY), CAST(IFNULL(r.concurrency_key, '') AS BINARY), CAST(r.queue AS BINARY), COUNT(*), NULL, NULL, NULL, NULL, " +
      `${STATE_REST} FROM sdj_jobs r FORCE INDEX (sdj_jobs_prune) WHERE r.status = 'running' AND (` +
      'r.type IN (SELECT l.type FROM sdj_type_limits l WHERE l.concurrency IS NOT NULL) OR ' +
      'r.queue IN (SELECT s.name FROM sdj_queues s WHERE s.name IN (?) AND s.concurrency IS NOT NULL)) ' +
      'GROUP BY CAST(r.type AS BINARY), CAST(IFNULL(r.concurrency_key, \'\') AS BINARY), CAST(r.queue AS BINARY)',
  );
  values.push(names);
  parts.push(
    `SELECT 's', st.name, st.rkey, st.scope, NULL, NULL, NULL, NULL, st.tat, ${STATE_REST} FROM sdj_rate_state st ` +
      `WHERE st.tat > ${NOW} AND ((st.scope = 'type' AND st.name IN (SELECT l.type FROM sdj_type_limits l WHERE l.rate_limit IS NOT NULL)) ` +
      "OR (st.scope = 'queue' AND st.name IN (?)))",
  );
  values.push(now, names);
  parts.push(
    "SELECT 'h', j.type, j.concurrency_key, j.rate_key, NULL, NULL, NULL, NULL, NULL, CONCAT(x.head, IFNULL(x.next, '')), j.queue, NULL, NULL, x.flow_group FROM (" +
      `SELECT g.queue, g.flow_group, ${groupProbe('LIMIT 1')} AS head, ${groupProbe('LIMIT 1 OFFSET 1')} AS next FROM (` +
      "SELECT w.queue, w.flow_group FROM sdj_jobs w FORCE INDEX (sdj_jobs_wake) WHERE w.status = 'pending' AND w.wake_at IS NULL " +
      'AND w.queue IN (?) AND w.limited = 1 GROUP BY w.status, w.wake_at, w.queue, w.limited, w.flow_group) g ' +
      'WHERE NOT EXISTS (SELECT 1 FROM sdj_queues p WHERE p.name = g.queue AND p.paused = 1)) x ' +
      "JOIN sdj_jobs j ON j.id = SUBSTRING(x.head, CHAR_LENGTH(SUBSTRING_INDEX(x.head, ':', 3)) + 2)",
  );
  values.push(now, now, names);
  for (const q of queues) {
    parts.push(
      `(SELECT 'z', ${CANDIDATE}, NULL FROM sdj_jobs j FORCE INDEX (sdj_jobs_claim) ` +
        `WHERE j.queue = ? AND j.status = 'pending' AND j.limited = 0 AND j.run_at <= ${NOW} ` +
        'AND EXISTS (SELECT 1 FROM sdj_queues s WHERE s.name = ? AND s.paused = 0 AND (s.concurrency IS NOT NULL OR s.rate_limit IS NOT NULL)) ' +
        'ORDER BY j.priority DESC, j.run_at, j.id LIMIT ?)',
    );
    values.push(q.name, now, q.name, Math.floor(q.limit));
  }
  return { sql: parts.join(' UNION ALL '), values };
}

/** A flow group to read further (`claimLimitedMore`): its queue and group, the last job read, how many more. */
export interface GroupTail {
  queue: string;
  group: Buffer;
  after: { priority: number; runAt: number; id: string };
  n: number;
}

/**
 * The next ready jobs of some flow groups in claim order, after the job each group's read ended
 * with, at most `n` each: one ordered probe of `sdj_jobs_flow` per group. Result: candidate rows
 * (`kind, name, k1, k2, id, queue, priority, run_at, grp`) as in {@link claimLimitedRead}.
 */
export function claimLimitedMore(now: number | null, tails: readonly GroupTail[]): FlowStatement {
  const values: unknown[] = [];
  const parts = tails.map((t) => {
    values.push(t.queue, t.group, now, t.after.priority, t.after.priority, t.after.runAt, t.after.runAt, t.after.id, Math.floor(t.n));
    return (
      "(SELECT 'm' AS kind, j.type AS name, j.concurrency_key AS k1, j.rate_key AS k2, j.id, j.queue, j.priority, j.run_at, j.flow_group AS grp " +
      `FROM sdj_jobs j FORCE INDEX (sdj_jobs_flow) WHERE j.flow_queue = ? AND j.flow_group = ? AND j.run_at <= ${NOW} ` +
      'AND (j.priority < ? OR (j.priority = ? AND (j.run_at > ? OR (j.run_at = ? AND j.id > ?)))) ORDER BY j.priority DESC, j.run_at, j.id LIMIT ?)'
    );
  });
  return { sql: parts.join(' UNION ALL '), values };
}

/**
 * Locks the picked jobs still pending, skipping (never waiting for) rows another transaction
 * holds. The primary key is forced, so only those rows are read and locked. Params: ids[].
 * Result: job rows.
 */
export const CLAIM_LIMITED_LOCK = `SELECT ${JOB_COLUMNS} FROM sdj_jobs FORCE INDEX (PRIMARY) WHERE id IN (?) AND status = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED`;

/** Stores the rate state of `n` groups. Params per row: scope, name, rkey, tat. */
export function rateStateUpsertSql(n: number): string {
  return `INSERT INTO sdj_rate_state (scope, name, rkey, tat) VALUES ${repeat('(?, ?, ?, ?)', n)} ON DUPLICATE KEY UPDATE tat = VALUES(tat)`;
}

// ---------------------------------------------------------------------------- retention

/** Rows retention deletes per statement at most. */
export const FLOW_PRUNE_BATCH = 1_000;

/** Debounce locks older than a day (ms). */
export const DEBOUNCE_LOCK_TTL_MS = 86_400_000;

/**
 * Flow control's leftovers, locked, skipping rows in use: rate state whose tat has passed (kind
 * `r`: `scope, name, rkey`; a scan of the table, one row per rate group that started lately;
 * a claim holds the rows whose tat it moves ahead) and debounce locks created before now − ttl
 * (kind `d`: `name` the key; oldest first through `sdj_debounce_locks_created`), at most
 * `limit` each. Params: now, limit, now, ttl ms, limit. Result: `{ kind, scope, name, rkey }[]`.
 */
export const FLOW_LEFTOVERS =
  `(SELECT 'r' AS kind, scope, name, rkey FROM sdj_rate_state WHERE tat < ${NOW} LIMIT ? FOR UPDATE SKIP LOCKED) UNION ALL ` +
  "(SELECT 'd', NULL, lock_key, NULL FROM sdj_debounce_locks FORCE INDEX (sdj_debounce_locks_created) " +
  `WHERE created_at < ${NOW} - ? ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED)`;

/** Deletes rate state rows (locked by {@link FLOW_LEFTOVERS}). Params: [scope, name, rkey][]. */
export const RATE_STATE_DELETE_KEYS = 'DELETE FROM sdj_rate_state WHERE (scope, name, rkey) IN (?)';

/** Deletes debounce lock rows (locked by {@link FLOW_LEFTOVERS}). Params: keys[]. */
export const DEBOUNCE_LOCKS_DELETE = 'DELETE FROM sdj_debounce_locks WHERE lock_key IN (?)';
