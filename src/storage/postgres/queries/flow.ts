/**
 * PostgreSQL statements of the limited claim (`flow-ops.ts`, `Storage.jobClaimLimited`). A
 * limited claim holds no lock across round trips: it reads its candidates together with the
 * version of `sdj_flow_state` (one statement, one snapshot), plans with the shared
 * `planLimitedClaim` (shared/flow-plan.ts), and stores the plan with one statement that first
 * moves the version on from the one it read (compare and set), and writes nothing when the
 * version had moved. When the plan is plain (room for every job asked for, no rate or queue limit
 * in play: it starts the first jobs in claim order), the first read decides it and stores it
 * itself, in the same way (the only decisions made here; every other one is the shared plan's).
 * A claim of one queue first tries {@link FLOW_CLAIM_PLAIN_ONE}, a smaller statement that claims
 * only a plain plan and otherwise says whether the full read is needed.
 *
 * Why a claim whose version held is exact, as if it had held a lock from its read to its write:
 * everything that can make a plan start too much moves the version in the transaction that
 * makes it — a limited claim that starts a job or moves rate state (this file), a limit set or
 * deleted, which also re-marks the type's jobs (`limits.ts`). The ordinary claim never starts a
 * job a limit counts: it takes no limited job and no job of a queue with a queue limit (it reads
 * the queue row `FOR SHARE`, which a queue limit's write waits for), and every live job of a
 * type with a type limit is marked limited. Everything else only makes a plan cautious: a job
 * that finishes, fails, suspends, or is released or reclaimed frees its slot, and rate state
 * that retention deletes is more than a minute old (it means what no row means). A job
 * cancelled, paused, or replaced by a debounce since the read is left alone by the claim, which
 * takes a job only at the address it was read at (a changed row has another) and only while it
 * is pending, ready, in the queue and groups it was read with, in a queue not paused.
 *
 * The candidate reads cost what the jobs a claim can start cost, never a whole backlog:
 * - {@link FLOW_CANDIDATES}, the first: per queue its first `limit + 8` ready jobs in claim
 *   order (`sdj_jobs_limited_claim`, merged with `sdj_jobs_claim` in a queue with a queue
 *   limit), with their limits, their groups' running counts (type groups from
 *   `sdj_jobs_running`: running limited jobs, bounded by the fleet's slots) and rate state;
 * - when the plan does not fill a queue that read cut short (backlogs of full groups in front),
 *   {@link FLOW_CANDIDATES_DEEP}: the groups (queue, type, concurrency key, rate key) of the
 *   first `1024 + 32 × limit` ready jobs, each read up to its room and one job more from
 *   `sdj_jobs_limited` (of the groups already full only the first in claim order: it tells
 *   `saturated`); when that still falls short, the same with `$4`: every group of the queue,
 *   walked with a recursive skip-scan of `sdj_jobs_limited` (one probe per group), which is
 *   complete. A group's jobs after its first `room + 1` never matter to the plan: each is held
 *   back, by a limit or by the claim's size, for the reason the one before it was.
 *
 * Plans: the parameters reach the planner through materialized CTEs, so custom plans and the
 * generic plan estimate alike and PostgreSQL keeps the generic plan: the statements are not
 * planned on each claim. Every index choice holds without statistics (see the migration).
 * @internal
 */
import { NOW, NOW_CTE } from './common.js';
import { claimSet } from './run.js';

/** The columns of a candidate job (alias `j`). */
const JOB_COLS = 'j.id, j.ctid AS tid, j.type, j.priority, j.run_at, j.concurrency_key, j.rate_key, j.limited';

/** Claim order (alias `j`). */
const CLAIM_ORDER = 'j.priority DESC, j.run_at, j.id';

/** The key of a job's concurrency group within its type (alias `j`); null counts as ''. */
const CK = "coalesce(j.concurrency_key, '')";
/** The key of a job's rate group within its type (alias `j`). */
const RK = "coalesce(j.rate_key, '')";

/** The order of `sdj_jobs_limited` after its queue column (alias `j`). */
const GRP_ORDER = `j.type, ${CK}, ${RK}, ${CLAIM_ORDER}`;

/** Ready pending jobs (alias `j`) of queue `queue` (an expression) with the mark `mark`. */
function ready(queue: string, mark: 0 | 1): string {
  return `j.status = 'pending' AND j.queue = ${queue} AND j.limited = ${mark} AND j.run_at <= ${NOW}`;
}

/**
 * The term of `sdj_jobs_limited_claim`'s predicate that holds for every row (alias `j`): the reads
 * in claim order state it, so that they alone can use that index.
 */
const LIMITED_CLAIM_MARK = 'j.priority > -2147483649';

/**
 * The first `n` ready jobs of the queue `q` (a queue row) in claim order, with their position
 * (`pos`, from 1): its limited jobs (`sdj_jobs_limited_claim`), merged with its other jobs
 * (`sdj_jobs_claim`) when it has a queue limit.
 */
function prefix(n: string): string {
  return `SELECT x.*, row_number() OVER (ORDER BY x.priority DESC, x.run_at, x.id) AS pos FROM (
      (SELECT ${JOB_COLS} FROM {s}.sdj_jobs_live j WHERE ${ready('q.name', 1)} AND ${LIMITED_CLAIM_MARK}
        ORDER BY ${CLAIM_ORDER} LIMIT ${n})
      UNION ALL
      (SELECT ${JOB_COLS} FROM {s}.sdj_jobs_live j WHERE ${ready('q.name', 0)} AND q.q_limited ORDER BY ${CLAIM_ORDER} LIMIT ${n})
      ORDER BY priority DESC, run_at, id
      LIMIT ${n}
    ) x`;
}

/** The CTEs both candidate reads start with: now, the parameters, type limits and the queues. */
const HEAD = `${NOW_CTE},
p AS MATERIALIZED (SELECT $2::text[] AS names, $3::int[] AS lims, $4::boolean AS walk),
tl AS MATERIALIZED (SELECT type, concurrency, rate_limit, rate_period_ms, updated_at FROM {s}.sdj_type_limits),
qx AS MATERIALIZED (
  SELECT q.name, q.lim, p.walk, ql.concurrency AS q_conc, ql.rate_limit AS q_rate, ql.rate_period_ms AS q_period,
    ql.updated_at AS q_upd, (ql.concurrency IS NOT NULL OR ql.rate_limit IS NOT NULL) AS q_limited,
    coalesce((SELECT count(*) FROM {s}.sdj_jobs_live r
      WHERE r.queue = q.name AND r.lease_expires_at IS NOT NULL AND r.status = 'running' AND ql.concurrency IS NOT NULL), 0) AS run_q,
    (SELECT s.tat FROM {s}.sdj_rate_state s
      WHERE s.scope = 'queue' AND s.name = q.name AND s.rkey = '' AND ql.rate_limit IS NOT NULL) AS tat_q
  FROM p CROSS JOIN LATERAL unnest(p.names, p.lims) AS q(name, lim)
  LEFT JOIN {s}.sdj_queues ql ON ql.name = q.name
  WHERE NOT coalesce(ql.paused, false) AND q.lim >= 1
),
qy AS MATERIALIZED (
  SELECT qx.*, qx.q_conc - qx.run_q AS q_room, coalesce(qx.q_conc <= qx.run_q, false) AS q_full,
    CASE WHEN qx.q_rate IS NOT NULL THEN CASE WHEN qx.tat_q > ${NOW} THEN 0 ELSE 1 END END AS q_gate
  FROM qx
)`;

/**
 * What a candidate read returns, as one JSON column `read` (one value: one parse on the client,
 * whatever the number of candidates; the first read's claimed rows carry it as null), from the
 * CTEs `jobs` (the candidates: queue, pos and job columns), `rc` ({@link GROUPS}) and `cut` (the
 * queues read, with `trunc`): an array of
 * - the statement's `now`, and the flow-state `version` (as this statement's snapshot shows it,
 *   as text: a bigint);
 * - `jobs`: [queue, id, tid (the physical address of the row read), type, priority, run_at,
 *   concurrency_key, rate_key, limited] per candidate;
 * - `types`: [type, concurrency, rate_limit, rate_period_ms, updated_at] per candidate's type that
 *   has a type limit;
 * - `counts`: [type, key, running] per concurrency group of a candidate under a type concurrency
 *   limit;
 * - `tats`: [type, key, tat] per rate group of a candidate under a type rate limit that has state
 *   (whatever the candidate's `limited` mark, as `types` and `counts`);
 * - `queues`: [name, concurrency, rate_limit, rate_period_ms, updated_at, running, tat, trunc]
 *   per queue read (not paused); `trunc`: its candidates were cut short.
 * The lists are null when empty. Computed only when `when` holds (an SQL condition; null otherwise).
 */
function result(when: string): string {
  return `CASE WHEN ${when} THEN json_build_array(${NOW}, (SELECT f.version::text FROM {s}.sdj_flow_state f WHERE f.id = 1),
  (SELECT json_agg(json_build_array(j.queue, j.id, j.tid::text, j.type, j.priority, j.run_at, j.concurrency_key, j.rate_key, j.limited))
    FROM jobs j),
  (SELECT json_agg(json_build_array(tl.type, tl.concurrency, tl.rate_limit, tl.rate_period_ms, tl.updated_at))
    FROM tl WHERE tl.type IN (SELECT g.type FROM rc g)),
  (SELECT json_agg(json_build_array(c.type, c.ck, c.n)) FROM rc c WHERE c.conc IS NOT NULL),
  (SELECT json_agg(json_build_array(s.name, s.rkey, s.tat))
    FROM (SELECT DISTINCT j.type, coalesce(j.rate_key, '') AS rk FROM jobs j) r
    JOIN tl ON tl.type = r.type AND tl.rate_limit IS NOT NULL
    JOIN {s}.sdj_rate_state s ON s.scope = 'type' AND s.name = r.type AND s.rkey = r.rk),
  (SELECT json_agg(json_build_array(q.name, q.q_conc, q.q_rate, q.q_period, q.q_upd, q.run_q, q.tat_q, q.trunc))
    FROM cut q)) END AS read`;
}

/**
 * A CTE `rc`: per concurrency group (type, ck) of the candidates (`jobs` with `pos`) whose type
 * has a type limit, whatever their `limited` mark (a candidate of such a type never reaches the
 * plan without its type's limits, running count and rate state: the plan gates it by them),
 * its type's limits (`conc`, `rate`), how many of its candidates are among the first `limit` of
 * their queue (`first_n`), and, under a concurrency limit, its running count (`n`, from
 * `sdj_jobs_running`, one range per group).
 */
const GROUPS = `rc AS MATERIALIZED (
  SELECT g.type, g.ck, g.first_n, tl.concurrency AS conc, tl.rate_limit AS rate,
    CASE WHEN tl.concurrency IS NOT NULL THEN (SELECT count(*) FROM {s}.sdj_jobs_live r
      WHERE r.status = 'running' AND r.limited = 1 AND r.type = g.type AND coalesce(r.concurrency_key, '') = g.ck) END AS n
  FROM (
    SELECT x.type, coalesce(x.concurrency_key, '') AS ck, count(*) FILTER (WHERE x.pos <= q.lim) AS first_n
    FROM jobs x JOIN qy q ON q.name = x.queue GROUP BY 1, 2
  ) g
  JOIN tl ON tl.type = g.type
)`;

/** How many jobs past its limit the first candidate read takes of a queue. */
export const FIRST_READ_EXTRA = 8;

/**
 * True (alias `fast`) when the plan of the first read is plain: no queue read has a queue limit,
 * no candidate's type a rate limit, and every concurrency group has room for all of its
 * candidates among the first `limit` of each queue. The plan then starts exactly those, reports
 * no wait and is not `saturated` (a job after a queue's first `limit` comes after the claim is
 * full), and the statement stores it itself.
 */
const FAST = `fast AS MATERIALIZED (
  SELECT EXISTS (SELECT 1 FROM jobs)
    AND NOT EXISTS (SELECT 1 FROM qy q WHERE q.q_limited)
    AND NOT EXISTS (SELECT 1 FROM rc WHERE rc.rate IS NOT NULL OR rc.first_n > rc.conc - rc.n) AS ok
)`;

/**
 * The condition a first read's own claim puts on each job row it updates (alias `j`): the job is
 * still one of the candidates `jobs` (its id, queue, type and keys as read), pending and ready.
 * The rows are updated at the addresses read; a row changed while the claim waited for its lock
 * has moved on to a new version, which PostgreSQL checks against every condition that is not the
 * scan's own (servers before the minor releases that made a TID scan check its address again
 * would otherwise update that new version whatever it holds). A hashed sub-select, not a join:
 * the update keeps no joined rows.
 */
function readAsIs(): string {
  return `j.status = 'pending' AND j.run_at <= ${NOW}
    AND coalesce((j.id, j.queue, j.type, ${CK}, ${RK}) IN (SELECT x.id, x.queue, x.type, coalesce(x.concurrency_key, ''), coalesce(x.rate_key, '') FROM jobs x), false)`;
}

/**
 * The first candidate read of a limited claim, which also claims when its plan is plain
 * ({@link FAST}): per queue its first `limit + 8` ready jobs in claim order, with what the plan
 * needs of them (see {@link result}); a queue that returned them all was cut short (unless its
 * queue concurrency limit is full: the plan starts nothing there, whatever follows). Paused
 * queues are left out. When the plan is plain, the statement moves the flow-state version on
 * from the one its snapshot shows (compare and set, as {@link FLOW_CLAIM}: after waiting for the
 * row, it finds the version moved when anyone stored a claim or a limit since its snapshot) and,
 * if it could, claims each queue's first `limit` jobs (at the addresses its snapshot shows them
 * at, in queues not paused, the queue rows read `FOR SHARE`), as `jobClaim` does. Params: $1 now,
 * $2 queue names (distinct), $3 their limits (>= 1), $4 unused, $5 worker id, $6 lease ms.
 * Result: { won: true when it claimed, else false; fast: the plan was plain; read: null when it
 * claimed, else {@link result} } with, when it claimed, the claimed rows' columns (one row each,
 * null when none).
 */
export const FLOW_CANDIDATES = `
WITH ${HEAD},
jobs AS MATERIALIZED (
  SELECT q.name AS queue, h.* FROM qy q CROSS JOIN LATERAL (${prefix(`q.lim + ${FIRST_READ_EXTRA}`)}) h
),
${GROUPS},
cut AS (
  SELECT q.*, NOT q.q_full AND (SELECT count(*) FROM jobs j WHERE j.queue = q.name) >= q.lim + ${FIRST_READ_EXTRA} AS trunc FROM qy q
),
${FAST},
fs AS MATERIALIZED (SELECT f.version FROM {s}.sdj_flow_state f WHERE f.id = 1),
v AS (
  UPDATE {s}.sdj_flow_state f SET version = f.version + 1
  WHERE f.id = 1 AND f.version = (SELECT version FROM fs) AND (SELECT ok FROM fast)
  RETURNING f.version
),
ql AS MATERIALIZED (
  SELECT q.name, q.paused FROM {s}.sdj_queues q
  WHERE q.name IN (SELECT name FROM qy) AND EXISTS (SELECT 1 FROM v)
  ORDER BY q.name
  FOR SHARE OF q
),
upd AS (
  UPDATE {s}.sdj_jobs_live j
  SET ${claimSet('$5', '$6')}
  WHERE j.ctid = ANY(ARRAY(SELECT x.tid FROM jobs x JOIN qy q ON q.name = x.queue WHERE x.pos <= q.lim AND EXISTS (SELECT 1 FROM v)))
    AND ${readAsIs()}
    AND NOT EXISTS (SELECT 1 FROM ql WHERE ql.name = j.queue AND ql.paused)
  RETURNING j.*
)
SELECT w.version IS NOT NULL AS won, f.ok AS fast, ${result('w.version IS NULL')}, u.*
FROM fast f
LEFT JOIN (SELECT version FROM v) w ON true
LEFT JOIN upd u ON true`;

/**
 * The limited claim of one queue when its plan may be plain, in one small statement (the claim
 * of a limit that does not bind, on the hot path): the queue's first `$3` ready limited jobs in
 * claim order and, per concurrency group among them under a type limit, its running count. The
 * plan is plain when the queue is not paused and has no queue limit, no candidate's type has a
 * rate limit, and every group has room for all of its candidates; the statement then stores it
 * itself exactly as {@link FLOW_CANDIDATES} does (compare and set on the flow-state version its
 * snapshot shows, then the queue row `FOR SHARE`, then the jobs at the addresses read). It
 * claims nothing otherwise, and says why (`plan`):
 * - `plain`: the plan was plain; `won` tells whether the version held (claimed) or had moved;
 * - `empty`: nothing to claim (no ready limited job in a queue without a queue limit, or the
 *   queue is paused): what the full read would find;
 * - `read`: a queue limit, a rate limit or a group without room for its candidates is in play:
 *   the full read ({@link FLOW_CANDIDATES}) plans it.
 * Params: $1 now, $2 queue name, $3 limit (>= 1), $4 worker id, $5 lease ms. Result: { plan,
 * won } with, when it claimed, the claimed rows' columns (one row each; null when none).
 */
export const FLOW_CLAIM_PLAIN_ONE = `
WITH ${NOW_CTE},
p AS MATERIALIZED (SELECT $2::text AS name, $3::int AS lim),
jobs AS MATERIALIZED (
  SELECT h.* FROM p CROSS JOIN LATERAL (
    SELECT j.ctid AS tid, j.id, j.queue, j.type, ${CK} AS ck, j.concurrency_key, j.rate_key FROM {s}.sdj_jobs_live j
    WHERE ${ready('p.name', 1)} AND ${LIMITED_CLAIM_MARK}
    ORDER BY ${CLAIM_ORDER}
    LIMIT p.lim
  ) h
),
qr AS MATERIALIZED (
  SELECT q.paused, (q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL) AS limited FROM {s}.sdj_queues q WHERE q.name = (SELECT name FROM p)
),
rc AS MATERIALIZED (
  SELECT g.k, tl.concurrency AS conc, tl.rate_limit AS rate,
    CASE WHEN tl.concurrency IS NOT NULL THEN (SELECT count(*) FROM {s}.sdj_jobs_live r
      WHERE r.status = 'running' AND r.limited = 1 AND r.type = g.type AND coalesce(r.concurrency_key, '') = g.ck) END AS n
  FROM (SELECT x.type, x.ck, count(*) AS k FROM jobs x GROUP BY 1, 2) g
  JOIN {s}.sdj_type_limits tl ON tl.type = g.type
),
pl AS MATERIALIZED (
  SELECT CASE
    WHEN EXISTS (SELECT 1 FROM qr WHERE qr.paused) THEN 'empty'
    WHEN EXISTS (SELECT 1 FROM qr WHERE qr.limited) THEN 'read'
    WHEN NOT EXISTS (SELECT 1 FROM jobs) THEN 'empty'
    WHEN EXISTS (SELECT 1 FROM rc WHERE rc.rate IS NOT NULL OR rc.k > rc.conc - rc.n) THEN 'read'
    ELSE 'plain' END AS plan
),
fs AS MATERIALIZED (SELECT f.version FROM {s}.sdj_flow_state f WHERE f.id = 1),
v AS (
  UPDATE {s}.sdj_flow_state f SET version = f.version + 1
  WHERE f.id = 1 AND f.version = (SELECT version FROM fs) AND (SELECT plan FROM pl) = 'plain'
  RETURNING f.version
),
ql AS MATERIALIZED (
  SELECT q.paused FROM {s}.sdj_queues q
  WHERE q.name = (SELECT name FROM p) AND EXISTS (SELECT 1 FROM v)
  FOR SHARE OF q
),
upd AS (
  UPDATE {s}.sdj_jobs_live j
  SET ${claimSet('$4', '$5')}
  WHERE j.ctid = ANY(ARRAY(SELECT x.tid FROM jobs x WHERE EXISTS (SELECT 1 FROM v)))
    AND ${readAsIs()}
    AND NOT EXISTS (SELECT 1 FROM ql WHERE ql.paused)
  RETURNING j.*
)
SELECT l.plan, w.version IS NOT NULL AS won, u.*
FROM pl l
LEFT JOIN (SELECT version FROM v) w ON true
LEFT JOIN upd u ON true`;

/** Which groups of the deep read are read (alias `c`, a `gc` row): every open group, and of the full ones the first. */
const DEEP_PICK = '(NOT c.cfull OR c.first IS NULL OR c.first = f.first)';

/**
 * The deep candidate read (after the first fell short): per queue the groups (queue, type,
 * concurrency key, rate key; a queue limit's jobs without type limits form one group) of its
 * first `1024 + 32 × limit` ready jobs in claim order, or with `$4` every group of the queue
 * (walked in `sdj_jobs_limited`); of each group that has room its first `room + 1` ready jobs,
 * and of the groups whose concurrency group is full (the plan skips all their jobs) the first
 * job of the first one. A group's jobs are read as the range of `sdj_jobs_limited` from the
 * group's start, in index order, cut at `room + 1` jobs and kept while in the group: a range
 * with an order no other index gives, so its plan does not depend on statistics. A queue whose
 * groups came from a read cut short is `trunc`. Params: $1 now, $2 queue names (distinct),
 * $3 their limits (>= 1), $4 every group of each queue. Result: one row, the column of {@link result}.
 */
export const FLOW_CANDIDATES_DEEP = `
WITH RECURSIVE ${HEAD},
raw AS MATERIALIZED (
  SELECT q.name AS queue, h.* FROM qy q CROSS JOIN LATERAL (${prefix('1024 + 32 * q.lim')}) h
  WHERE q.q_full OR NOT q.walk
),
walked AS (
  SELECT q.name AS queue, h.* FROM qy q
  CROSS JOIN LATERAL (
    SELECT j.type, ${CK} AS ck, ${RK} AS rk FROM {s}.sdj_jobs_live j
    WHERE j.status = 'pending' AND j.limited = 1 AND j.queue = q.name
    ORDER BY ${GRP_ORDER}
    LIMIT 1
  ) h
  WHERE q.walk AND NOT q.q_full
  UNION ALL
  SELECT g.queue, h.* FROM walked g
  CROSS JOIN LATERAL (
    SELECT j.type, ${CK} AS ck, ${RK} AS rk FROM {s}.sdj_jobs_live j
    WHERE j.status = 'pending' AND j.limited = 1 AND j.queue = g.queue AND (j.type, ${CK}, ${RK}) > (g.type, g.ck, g.rk)
    ORDER BY ${GRP_ORDER}
    LIMIT 1
  ) h
),
grp AS MATERIALIZED (
  SELECT r.queue, r.limited, CASE WHEN r.limited = 1 THEN r.type END AS type,
    CASE WHEN r.limited = 1 THEN coalesce(r.concurrency_key, '') END AS ck,
    CASE WHEN r.limited = 1 THEN coalesce(r.rate_key, '') END AS rk, min(r.pos) AS first
  FROM raw r GROUP BY 1, 2, 3, 4, 5
  UNION ALL
  SELECT w.queue, 1, w.type, w.ck, w.rk, NULL FROM walked w
  UNION ALL
  SELECT q.name, 0, NULL, NULL, NULL, NULL FROM qy q WHERE q.walk AND NOT q.q_full AND q.q_limited
),
gc AS MATERIALIZED (
  SELECT g.*, coalesce(tl.concurrency <= rg.n, false) OR q.q_full AS cfull,
    greatest(least(q.lim, tl.concurrency - coalesce(rg.n, 0),
      CASE WHEN tl.rate_limit IS NOT NULL THEN CASE WHEN s.tat > ${NOW} THEN 0 ELSE 1 END END, q.q_room, q.q_gate), 0) AS room
  FROM grp g
  JOIN qy q ON q.name = g.queue
  LEFT JOIN tl ON g.limited = 1 AND tl.type = g.type
  LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM {s}.sdj_jobs_live r
    WHERE r.status = 'running' AND r.limited = 1 AND r.type = g.type AND coalesce(r.concurrency_key, '') = g.ck AND tl.concurrency IS NOT NULL
  ) rg ON true
  LEFT JOIN LATERAL (
    SELECT s.tat FROM {s}.sdj_rate_state s WHERE s.scope = 'type' AND s.name = g.type AND s.rkey = g.rk AND tl.rate_limit IS NOT NULL
  ) s ON true
),
fc AS MATERIALIZED (SELECT c.queue, min(c.first) AS first FROM gc c WHERE c.cfull GROUP BY c.queue),
jobs AS MATERIALIZED (
  SELECT c.queue, h.*, 0 AS pos FROM gc c LEFT JOIN fc f ON f.queue = c.queue
  CROSS JOIN LATERAL (
    SELECT ${JOB_COLS} FROM {s}.sdj_jobs_live j
    WHERE ${ready('c.queue', 1)} AND c.limited = 1 AND (j.type, ${CK}, ${RK}) >= (c.type, c.ck, c.rk)
    ORDER BY ${GRP_ORDER}
    LIMIT c.room + 1
  ) h
  WHERE ${DEEP_PICK} AND h.type = c.type AND coalesce(h.concurrency_key, '') = c.ck AND coalesce(h.rate_key, '') = c.rk
  UNION ALL
  SELECT c.queue, h.*, 0 FROM gc c LEFT JOIN fc f ON f.queue = c.queue
  CROSS JOIN LATERAL (
    SELECT ${JOB_COLS} FROM {s}.sdj_jobs_live j WHERE ${ready('c.queue', 0)} AND c.limited = 0
    ORDER BY ${CLAIM_ORDER}
    LIMIT c.room + 1
  ) h
  WHERE ${DEEP_PICK}
),
${GROUPS},
cut AS (
  SELECT q.*, NOT q.q_full AND coalesce((SELECT max(r.pos) FROM raw r WHERE r.queue = q.name) >= 1024 + 32 * q.lim, false) AS trunc
  FROM qy q
)
SELECT ${result('true')}`;

/**
 * Stores a plan if the flow-state version is still `$2` (the candidate read's): moves the
 * version on, reads the planned jobs' queue rows `FOR SHARE` (a pause in flight waits for the
 * claim, and a pause committed before it is seen), stores the rate state the plan moved, and
 * claims the planned jobs exactly as `jobClaim` does (`claimSet`). A stored tat never moves
 * back (`greatest`): a plan whose version held read the stored tat and only moves it on, so this
 * changes nothing then, and keeps a group's spacing should the row have moved on since the read
 * by any other way (a tat moved back lets the group start early). Each job is updated at the
 * physical address the read found it at, only while the row there is that job, pending, ready,
 * in the queue and groups it was read with, in a queue not paused: a row changed since the read
 * has another address (a change committed before this statement leaves the address dead; one
 * committed while it waits makes it recheck the new version, which is not at the address), so
 * a job cancelled, paused, claimed or replaced by a debounce meanwhile is left. The version row
 * is locked first, before any queue or job row (the lock order of every writer of it). A claim
 * that waited for the version row sees the version as the holder left it. Params: $1 now (the
 * read's), $2 version, $3 ids, $4 their queues, $5 concurrency keys, $6 rate keys, $7 worker id,
 * $8 lease ms, $9 scopes, $10 names, $11 keys, $12 tats (rate-state rows), $13 the jobs'
 * addresses. Result: { won: true, or false when the version had moved } and the claimed rows'
 * columns (null when none), one row at least.
 */
export const FLOW_CLAIM = `
WITH ${NOW_CTE},
p AS MATERIALIZED (
  SELECT $2::bigint AS version, $3::text[] AS ids, $4::text[] AS queues, $5::text[] AS cks, $6::text[] AS rks,
    $9::text[] AS scopes, $10::text[] AS names, $11::text[] AS rkeys, $12::double precision[] AS tats, $13::tid[] AS tids
),
v AS (
  UPDATE {s}.sdj_flow_state f SET version = f.version + 1
  FROM p WHERE f.id = 1 AND f.version = p.version
  RETURNING f.version
),
ql AS MATERIALIZED (
  SELECT q.name, q.paused FROM {s}.sdj_queues q, p
  WHERE q.name = ANY(p.queues) AND EXISTS (SELECT 1 FROM v)
  ORDER BY q.name
  FOR SHARE OF q
),
rs AS (
  INSERT INTO {s}.sdj_rate_state AS s (scope, name, rkey, tat)
  SELECT u.scope, u.name, u.rkey, u.tat FROM p CROSS JOIN LATERAL unnest(p.scopes, p.names, p.rkeys, p.tats) AS u(scope, name, rkey, tat)
  WHERE EXISTS (SELECT 1 FROM v)
  ORDER BY 1, 2, 3
  ON CONFLICT (scope, name, rkey) DO UPDATE SET tat = greatest(s.tat, EXCLUDED.tat)
),
upd AS (
  UPDATE {s}.sdj_jobs_live j
  SET ${claimSet('$7', '$8')}
  WHERE j.ctid = ANY((SELECT p.tids FROM p)::tid[]) AND j.status = 'pending' AND j.run_at <= ${NOW}
    AND EXISTS (SELECT 1 FROM v)
    AND EXISTS (
      SELECT 1 FROM p CROSS JOIN LATERAL (SELECT array_position(p.tids, j.ctid) AS k) w
      WHERE p.ids[w.k] = j.id AND p.queues[w.k] = j.queue AND p.cks[w.k] IS NOT DISTINCT FROM j.concurrency_key
        AND p.rks[w.k] IS NOT DISTINCT FROM j.rate_key)
    AND NOT EXISTS (SELECT 1 FROM ql WHERE ql.name = j.queue AND ql.paused)
  RETURNING j.*
)
SELECT v.version IS NOT NULL AS won, u.* FROM (SELECT 1) o LEFT JOIN v ON true LEFT JOIN upd u ON true`;

/**
 * The flow-state row locked for the rest of a transaction (the limited claim's fallback after
 * losing its compare-and-set several times in a row): moves the version on, so every claim
 * that read before waits, then finds it moved. Sent as one simple query with BEGIN (one round
 * trip). Params: none.
 */
export const FLOW_BEGIN_LOCKED = 'BEGIN ISOLATION LEVEL READ COMMITTED; UPDATE {s}.sdj_flow_state SET version = version + 1 WHERE id = 1';

/**
 * A CTE `fb` that moves the flow-state version on (every change of a limit carries it, and
 * references it from its other parts, so the version row is locked first).
 */
export const FLOW_BUMP_CTE = 'fb AS (UPDATE {s}.sdj_flow_state SET version = version + 1 WHERE id = 1 RETURNING version)';
