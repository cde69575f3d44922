/**
 * MySQL/MariaDB statements of flow control's claim (`jobClaimLimited`, see `flow-ops.ts`: the
 * read, the claim at a generation of flow lock row 1, the state read under the lock), the
 * fragments every statement that marks jobs `limited` shares, and flow control's retention. The
 * indexes they read are described in migration 4.
 * @internal
 */
import { RATE_CATCH_UP_MAX_MS } from '../../shared/flow-plan.js';
import { JOB_COLUMNS, NOW, repeat } from './common.js';

/**
 * A group hash over SQL expressions: the first 16 bytes of the SHA-256 of a type (its length in
 * bytes first) and a key.
 */
function groupHash(type: string, key: string): string {
  return `LEFT(UNHEX(SHA2(CONCAT(OCTET_LENGTH(${type}), ':', ${type}, ${key}), 256)), 16)`;
}

/**
 * A job's flow group over the columns of the row being written (`type`, `concurrency_key`,
 * `rate_key`), 32 bytes: the hash of its type concurrency group (type and concurrency key, a null
 * key as ''), then the hash of its type rate group (type and rate key). Two jobs share it exactly
 * when they share both groups, and each half names one group, so a read that knows which groups
 * are full or rate-blocked can tell a flow group's fate from the group alone.
 */
export const FLOW_GROUP = `CONCAT(${groupHash('type', "IFNULL(concurrency_key, '')")}, ${groupHash('type', "IFNULL(rate_key, '')")})`;

/**
 * 1 when the type `typeExpr` has a type limit row, else 0, reading `sdj_type_limits` under a
 * share lock of flow lock row 2: a type limit's appearance or removal (which locks that row
 * exclusively before re-marking the type's jobs) waits for the statement's transaction, so no
 * job written in flight misses it.
 */
export function typeLimitedSql(typeExpr: string): string {
  return `(SELECT EXISTS (SELECT 1 FROM sdj_type_limits l WHERE l.type = ${typeExpr}) FROM sdj_flow_locks WHERE id = 2 LOCK IN SHARE MODE)`;
}

/**
 * Takes the lock every limit change, queue pause and locked limited claim takes first (flow lock
 * row 1), moving its generation on: a limited claim that read the state before (see
 * {@link claimLimitedUpdateSql}) then finds it moved, and reads again under the lock.
 */
export const FLOW_LOCK = 'UPDATE sdj_flow_locks SET gen = gen + 1 WHERE id = 1';

/** Takes flow lock row 2 exclusively (a type limit appears or disappears; see {@link typeLimitedSql}). */
export const FLOW_LOCK_TYPE_LIMITS = 'SELECT id FROM sdj_flow_locks WHERE id = 2 FOR UPDATE';

/** The columns of a candidate row of {@link claimLimitedRead} after its kind (see there). */
const CANDIDATE = 'j.type, j.concurrency_key, j.rate_key, NULL, NULL, NULL, NULL, NULL, j.id, j.queue, j.priority, j.run_at';

/** The flow group column of a row of {@link claimLimitedRead}: set on `h` rows only. */
const NO_GROUP = 'NULL AS grp';

/** The columns of a state row of {@link claimLimitedRead} after its first nine. */
const STATE_REST = `NULL AS id, NULL AS queue, NULL AS priority, NULL AS run_at, ${NO_GROUP}`;

/**
 * The claim-order key of the job `f` as bytes: 2147483647 − priority in 10 digits, run_at + 10^15
 * in 20 digits, then the id. Keys compare as claim order (priority desc, run_at, id).
 */
const HEAD_KEY = "CAST(CONCAT(LPAD(2147483647 - f.priority, 10, '0'), LPAD(f.run_at + 1000000000000000, 20, '0'), f.id) AS BINARY)";

/**
 * A ready job of the flow group of row `g` (a queue and a flow group), in claim order, `limit`
 * saying which: its key ({@link HEAD_KEY}), or with `prefixed` its key preceded by the key's
 * length in bytes (4 digits). One ordered probe of `sdj_jobs_flow`, which holds all it reads.
 * Params: now.
 */
function groupProbe(g: string, limit: string, prefixed: boolean): string {
  const key = prefixed ? `CONCAT(LPAD(OCTET_LENGTH(f.id) + 30, 4, '0'), ${HEAD_KEY})` : HEAD_KEY;
  return (
    `(SELECT ${key} FROM sdj_jobs f FORCE INDEX (sdj_jobs_flow) ` +
    `WHERE f.flow_queue = ${g}.queue AND f.flow_group = ${g}.flow_group AND f.run_at <= ${NOW} ORDER BY f.priority DESC, f.run_at, f.id ${limit})`
  );
}

/**
 * Concurrency groups (their hash) of the types with a concurrency limit that are full: the
 * running rows through `sdj_jobs_prune`, bounded by the fleet's concurrency.
 */
const FULL_GROUPS =
  `SELECT ${groupHash('r.type', "IFNULL(r.concurrency_key, '')")} AS h FROM sdj_jobs r FORCE INDEX (sdj_jobs_prune) ` +
  "JOIN sdj_type_limits l ON l.type = r.type WHERE r.status = 'running' AND l.concurrency IS NOT NULL " +
  `GROUP BY ${groupHash('r.type', "IFNULL(r.concurrency_key, '')")}, l.concurrency HAVING COUNT(*) >= l.concurrency`;

/** Type rate groups (their hash) blocked now, with their tat. Params: now. */
const BLOCKED_GROUPS =
  `SELECT ${groupHash('st.name', 'st.rkey')} AS h, st.tat FROM sdj_rate_state st JOIN sdj_type_limits l ON l.type = st.name ` +
  `WHERE st.scope = 'type' AND l.rate_limit IS NOT NULL AND st.tat > ${NOW}`;

/**
 * The `h` part of {@link claimLimitedRead}. The groups of each requested queue not paused come
 * from a loose scan of `sdj_jobs_wake`; each gets one probe for its first ready job (a group
 * without one is dropped) and a kind: in a queue without a queue limit, `f` when its concurrency
 * group is full, else `r` when its rate group is blocked (tat), else `o` (open); every group of a
 * queue-limited queue is `o`. Kept, each with one row lookup (type, keys): the first `n` open
 * groups by first job (with its second ready job: one more probe), the first full group (it sets
 * `saturated` wherever the claim stops), and the first rate-blocked group and the one with the
 * smallest tat (`retryInMs`: exact when the claim takes fewer jobs than it asks for, else at most
 * the first one's wait). `run_at` carries the number of open groups of the queue. The derived
 * table `z` has a LIMIT so that it is materialized (its probe runs once per group).
 * Params: now (second probes), now (first probes), names[], now (blocked groups), n.
 */
const GROUP_HEADS =
  "SELECT 'h', j.type, j.concurrency_key, j.rate_key, x.kind = 'o', NULL, NULL, NULL, NULL, " +
  `CONCAT(LPAD(OCTET_LENGTH(x.hk), 4, '0'), x.hk, IF(x.kind = 'o', IFNULL(${groupProbe('x', 'LIMIT 1 OFFSET 1', true)}, ''), '')), ` +
  'j.queue, NULL, CAST(x.opened AS SIGNED), x.flow_group FROM (' +
  'SELECT y.queue, y.flow_group, y.hk, y.kind, y.tat, ROW_NUMBER() OVER (PARTITION BY y.queue, y.kind ORDER BY y.hk) AS rn, ' +
  "SUM(y.kind = 'o') OVER (PARTITION BY y.queue) AS opened, " +
  'ROW_NUMBER() OVER (PARTITION BY y.queue, y.kind ORDER BY y.tat, y.hk) AS rn_tat FROM (' +
  "SELECT z.queue, z.flow_group, z.hk, z.tat, CASE WHEN z.ql THEN 'o' WHEN z.full THEN 'f' WHEN z.tat IS NOT NULL THEN 'r' ELSE 'o' END AS kind FROM (" +
  `SELECT g.queue, g.flow_group, ${groupProbe('g', 'LIMIT 1', false)} AS hk, fu.h IS NOT NULL AS full, b.tat, ` +
  'EXISTS (SELECT 1 FROM sdj_queues s WHERE s.name = g.queue AND (s.concurrency IS NOT NULL OR s.rate_limit IS NOT NULL)) AS ql FROM (' +
  "SELECT w.queue, w.flow_group FROM sdj_jobs w FORCE INDEX (sdj_jobs_wake) WHERE w.status = 'pending' AND w.wake_at IS NULL " +
  'AND w.queue IN (?) AND w.limited = 1 GROUP BY w.status, w.wake_at, w.queue, w.limited, w.flow_group) g ' +
  `LEFT JOIN (${FULL_GROUPS}) fu ON fu.h = LEFT(g.flow_group, 16) LEFT JOIN (${BLOCKED_GROUPS}) b ON b.h = RIGHT(g.flow_group, 16) ` +
  'WHERE NOT EXISTS (SELECT 1 FROM sdj_queues p WHERE p.name = g.queue AND p.paused = 1) LIMIT 18446744073709551615) z WHERE z.hk IS NOT NULL) y) x ' +
  'JOIN sdj_jobs j ON j.id = SUBSTRING(x.hk, 31) ' +
  "WHERE (x.kind = 'o' AND x.rn <= ?) OR (x.kind = 'f' AND x.rn = 1) OR (x.kind = 'r' AND (x.rn = 1 OR x.rn_tat = 1))";

/** A statement and its values. */
export interface FlowStatement {
  sql: string;
  values: unknown[];
}

/**
 * The `h` part of {@link claimLimitedRead} for queues with few groups: every group with a ready
 * job, open or not (the plan tells), with its first two ready jobs, as {@link GROUP_HEADS} gives
 * an open group's; `run_at` is 0 (nothing left out). Less fixed work than the ranking.
 * Params: now (second probes), now (first probes), names[].
 */
const ALL_GROUP_HEADS =
  "SELECT 'h', j.type, j.concurrency_key, j.rate_key, 1, NULL, NULL, NULL, NULL, CONCAT(LPAD(OCTET_LENGTH(x.hk), 4, '0'), x.hk, IFNULL(x.next, '')), " +
  `j.queue, NULL, 0, x.flow_group FROM (SELECT g.queue, g.flow_group, ${groupProbe('g', 'LIMIT 1', false)} AS hk, ` +
  `${groupProbe('g', 'LIMIT 1 OFFSET 1', true)} AS next FROM (` +
  "SELECT w.queue, w.flow_group FROM sdj_jobs w FORCE INDEX (sdj_jobs_wake) WHERE w.status = 'pending' AND w.wake_at IS NULL " +
  'AND w.queue IN (?) AND w.limited = 1 GROUP BY w.status, w.wake_at, w.queue, w.limited, w.flow_group) g ' +
  'WHERE NOT EXISTS (SELECT 1 FROM sdj_queues p WHERE p.name = g.queue AND p.paused = 1)) x ' +
  'JOIN sdj_jobs j ON j.id = SUBSTRING(x.hk, 31)';

/**
 * Everything a limited claim decides from, in one statement (one snapshot: every part sees the
 * same committed claims): rows `{ kind, name, k1, k2, a, b, c, d, tat, id, queue, priority,
 * run_at, grp }` of kinds
 * - `n`: the database now (`a`) and the generation of flow lock row 1 (`b`);
 * - `q`: a requested queue's row: paused (`a`), concurrency (`b`), rate limit (`c`), period (`d`);
 * - `t`: a type limit row: updated_at (`a`), concurrency, rate limit, period;
 * - `c`: running jobs (`a`) per (type `name`, concurrency key `k1` with null as '', queue `k2`),
 *   exact bytes, of the types with a concurrency limit and the requested queues with one: the
 *   running rows through `sdj_jobs_prune` (status first), bounded by the fleet's concurrency;
 * - `s`: rate state newer than now − {@link RATE_CATCH_UP_MAX_MS} (`tat`; an older row constrains
 *   nothing, the plan's catch-up allowance being at most that) of the rate-limited types
 *   (`name`, `k1` the key) and of the requested queues (`k2` = 'queue');
 * - `h`: per requested queue not paused, flow groups with a ready job ({@link GROUP_HEADS}): the
 *   group's type and keys (`name`, `k1`, `k2`, read from its first job's row), `queue`, `grp`,
 *   1 when it is open (`a`), the number of open groups of the queue (`run_at`), and in `id` its
 *   first ready job, for an
 *   open group also its second (the second tells whether the group still has a job waiting once
 *   the first starts), each as its key's length in bytes (4 digits) then its key
 *   ({@link HEAD_KEY}). At most `groups` open groups per queue, the first by first job: with
 *   more, the read answers exactly for the claim-order prefix up to the last one kept. A group's
 *   backlog is never read, nor the second job of a full or blocked group. With `groups` null,
 *   every group, each with its first two ready jobs and 1 in `a` ({@link ALL_GROUP_HEADS});
 * - `z`: per requested queue with a queue limit and not paused, its first `limit` ready jobs
 *   without type limits in claim order (`sdj_jobs_claim`, range (queue, 'pending', 0)).
 * Candidate rows carry `id, queue, name` (type), `k1` / `k2` (the keys, as stored), `priority`,
 * `run_at`, and on `h` rows the flow group (`grp`).
 */
export function claimLimitedRead(now: number | null, queues: readonly { name: string; limit: number }[], groups: number | null): FlowStatement {
  const names = queues.map((q) => q.name);
  const values: unknown[] = [now, names, names, now, names, now, now, names];
  if (groups !== null) values.push(now, Math.floor(groups));
  for (const q of queues) values.push(q.name, now, q.name, Math.floor(q.limit));
  return { sql: claimLimitedReadSql(queues.length, groups !== null), values };
}

/** The parts `n`, `q`, `t`, `c`, `s` of {@link claimLimitedRead}. Params: now, names[], names[], now, names[]. */
const STATE_PARTS = [
  `SELECT 'n' AS kind, NULL AS name, NULL AS k1, NULL AS k2, ${NOW} AS a, (SELECT g.gen FROM sdj_flow_locks g WHERE g.id = 1) AS b, ` +
    `NULL AS c, NULL AS d, NULL AS tat, ${STATE_REST}`,
  "SELECT 'q', s.name, NULL, NULL, s.paused, s.concurrency, s.rate_limit, s.rate_period_ms, NULL, " + `${STATE_REST} FROM sdj_queues s WHERE s.name IN (?)`,
  `SELECT 't', l.type, NULL, NULL, l.updated_at, l.concurrency, l.rate_limit, l.rate_period_ms, NULL, ${STATE_REST} FROM sdj_type_limits l`,
  "SELECT 'c', CAST(r.type AS BINARY), CAST(IFNULL(r.concurrency_key, '') AS BINARY), CAST(r.queue AS BINARY), COUNT(*), NULL, NULL, NULL, NULL, " +
    `${STATE_REST} FROM sdj_jobs r FORCE INDEX (sdj_jobs_prune) WHERE r.status = 'running' AND (` +
    'r.type IN (SELECT l.type FROM sdj_type_limits l WHERE l.concurrency IS NOT NULL) OR ' +
    'r.queue IN (SELECT s.name FROM sdj_queues s WHERE s.name IN (?) AND s.concurrency IS NOT NULL)) ' +
    "GROUP BY CAST(r.type AS BINARY), CAST(IFNULL(r.concurrency_key, '') AS BINARY), CAST(r.queue AS BINARY)",
  `SELECT 's', st.name, st.rkey, st.scope, NULL, NULL, NULL, NULL, st.tat, ${STATE_REST} FROM sdj_rate_state st ` +
    `WHERE st.tat > ${NOW} - ${RATE_CATCH_UP_MAX_MS} AND ((st.scope = 'type' AND st.name IN (SELECT l.type FROM sdj_type_limits l WHERE l.rate_limit IS NOT NULL)) ` +
    "OR (st.scope = 'queue' AND st.name IN (?)))",
];

/** The state alone: the parts `n`, `q`, `t`, `c`, `s` of {@link claimLimitedRead}, no candidates. */
const STATE_SQL = STATE_PARTS.join(' UNION ALL ');

/**
 * The state a limited claim decides from, without candidates: the parts `n`, `q`, `t`, `c` and
 * `s` of {@link claimLimitedRead}, for a claim that holds its candidates already and read them
 * before the flow lock.
 */
export function claimLimitedStateRead(now: number | null, queues: readonly { name: string }[]): FlowStatement {
  const names = queues.map((q) => q.name);
  return { sql: STATE_SQL, values: [now, names, names, now, names] };
}

/** {@link claimLimitedRead}'s texts, built once per number of queues and form. */
const readSql = new Map<string, string>();

/** The text of {@link claimLimitedRead} for `n` queues, ranked or not (its values: see there). */
function claimLimitedReadSql(n: number, ranked: boolean): string {
  const known = readSql.get(`${n}:${ranked}`);
  if (known !== undefined) return known;
  const parts = [...STATE_PARTS, ranked ? GROUP_HEADS : ALL_GROUP_HEADS];
  for (let i = 0; i < n; i++) {
    parts.push(
      `(SELECT 'z', ${CANDIDATE}, NULL FROM sdj_jobs j FORCE INDEX (sdj_jobs_claim) ` +
        `WHERE j.queue = ? AND j.status = 'pending' AND j.limited = 0 AND j.run_at <= ${NOW} ` +
        'AND EXISTS (SELECT 1 FROM sdj_queues s WHERE s.name = ? AND s.paused = 0 AND (s.concurrency IS NOT NULL OR s.rate_limit IS NOT NULL)) ' +
        'ORDER BY j.priority DESC, j.run_at, j.id LIMIT ?)',
    );
  }
  const sql = parts.join(' UNION ALL ');
  readSql.set(`${n}:${ranked}`, sql);
  return sql;
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

/**
 * The claim of jobs planned from a read taken before the flow lock (`flow-ops.ts`), in one
 * statement: it takes flow lock row 1, and only if its generation is still `gen` (no claim, limit
 * change or pause committed since the read) moves the generation on, sets the jobs running as
 * `CLAIM_UPDATE` does, and stores the new tat of `rates` groups whose rows the read saw. Rows of
 * a multi-table UPDATE count once each, so it changed 1 + jobs + `rates` rows when it applied,
 * none when the generation moved (the row lock is waited for, then its latest version compared).
 * The jobs are held already (`CLAIM_LIMITED_LOCK`).
 * Params: ids[], scope, name, rkey per rate row, workerId, startedAt, heartbeatAt, leaseExpiresAt,
 * scope, name, rkey, tat per rate row, gen.
 */
export function claimLimitedUpdateSql(rates: number): string {
  const key = '(s.scope = ? AND s.name = ? AND s.rkey = ?)';
  const join = rates === 0 ? '' : ` JOIN sdj_rate_state s ON (${Array.from({ length: rates }, () => key).join(' OR ')})`;
  const tat = rates === 0 ? '' : `, s.tat = CASE ${Array.from({ length: rates }, () => `WHEN ${key.slice(1, -1)} THEN ?`).join(' ')} ELSE s.tat END`;
  return (
    `UPDATE sdj_flow_locks l JOIN sdj_jobs j FORCE INDEX (PRIMARY) ON j.id IN (?)${join} SET l.gen = l.gen + 1, ` +
    "j.status = 'running', j.attempt = j.attempt + 1, j.run_count = j.run_count + 1, j.locked_by = ?, j.started_at = ?, " +
    `j.heartbeat_at = ?, j.lease_expires_at = ?, j.wake_at = NULL, j.wait_signal = NULL${tat} ` +
    "WHERE l.id = 1 AND l.gen = ? AND j.status = 'pending'"
  );
}

/** Stores the rate state of `n` groups. Params per row: scope, name, rkey, tat. */
export function rateStateUpsertSql(n: number): string {
  return `INSERT INTO sdj_rate_state (scope, name, rkey, tat) VALUES ${repeat('(?, ?, ?, ?)', n)} ON DUPLICATE KEY UPDATE tat = VALUES(tat)`;
}

// ---------------------------------------------------------------------------- retention

/** Rows retention deletes per statement at most. */
export const FLOW_PRUNE_BATCH = 1_000;

/** Debounce locks older than a day (ms). */
export const DEBOUNCE_LOCK_TTL_MS = 86_400_000;

/** Rate state kept this long after its tat (ms): far past any claim's catch-up window, so a claim whose now was read a little before retention's never misses a row it needs. */
export const RATE_STATE_KEEP_MS = 60_000;

/**
 * Flow control's leftovers, locked, skipping rows in use: rate state whose tat is older than
 * now − {@link RATE_STATE_KEEP_MS} (kind `r`: `scope, name, rkey`; a scan of the table, one row
 * per rate group that started in the last minute or so; a claim holds the rows whose tat it
 * moves ahead) and debounce locks created before now − ttl (kind `d`: `name` the key; oldest
 * first through `sdj_debounce_locks_created`), at most `limit` each.
 * Params: now, limit, now, ttl ms, limit. Result: `{ kind, scope, name, rkey }[]`.
 */
export const FLOW_LEFTOVERS =
  `(SELECT 'r' AS kind, scope, name, rkey FROM sdj_rate_state WHERE tat < ${NOW} - ${RATE_STATE_KEEP_MS} LIMIT ? FOR UPDATE SKIP LOCKED) UNION ALL ` +
  "(SELECT 'd', NULL, lock_key, NULL FROM sdj_debounce_locks FORCE INDEX (sdj_debounce_locks_created) " +
  `WHERE created_at < ${NOW} - ? ORDER BY created_at LIMIT ? FOR UPDATE SKIP LOCKED)`;

/** Deletes rate state rows (locked by {@link FLOW_LEFTOVERS}). Params: [scope, name, rkey][]. */
export const RATE_STATE_DELETE_KEYS = 'DELETE FROM sdj_rate_state WHERE (scope, name, rkey) IN (?)';

/** Deletes debounce lock rows (locked by {@link FLOW_LEFTOVERS}). Params: keys[]. */
export const DEBOUNCE_LOCKS_DELETE = 'DELETE FROM sdj_debounce_locks WHERE lock_key IN (?)';
