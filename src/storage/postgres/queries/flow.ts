/**
 * PostgreSQL statements of the limited claim (`flow-ops.ts`, `Storage.jobClaimLimited`): the
 * candidate read and the claim with its rate-state write. Both run inside the transaction that
 * holds the schema's flow lock (`flowBegin`), each in its own snapshot taken after the lock, so
 * they see every earlier limited claim's commit. The decision between them is the shared
 * `planLimitedClaim` (shared/flow-plan.ts); nothing here decides what to claim.
 *
 * The candidate read costs what the groups with ready jobs cost, never a backlog:
 * - running counts come from the running rows (`sdj_jobs_lease`, one entry per running job:
 *   bounded by the fleet's concurrency), grouped once;
 * - the groups of a queue's limited jobs — distinct (type, concurrency key, rate key) — are
 *   walked with a recursive skip-scan of `sdj_jobs_limited` (one probe per group);
 * - per group with room (not full, not rate-blocked) its first jobs in claim order, at most its
 *   room (one when a rate limit applies), and one more: the job that reports the group full or
 *   blocked once the plan has filled it (`saturated`, `retryInMs`); per group that is full or
 *   blocked already, its first ready job only, of which one per queue is returned (one full, and
 *   the blocked one that starts soonest);
 * - per queue at most `limit` jobs of the groups with room, in claim order, and the next job of
 *   each group among them.
 * A queue with a queue limit also reads its jobs without type limits from `sdj_jobs_claim`; a
 * queue whose concurrency limit is full reads one job only (to report it).
 * @internal
 */
import { NOW, NOW_CTE } from './common.js';
import { claimSet } from './run.js';

/**
 * The first statement of a limited claim, sent as one simple query (one round trip): BEGIN at
 * READ COMMITTED (each later statement takes a new snapshot), JIT off for the transaction (the
 * skip-scan's estimates would make every call compile), then the flow lock — a transaction-level
 * advisory lock on `key`, a constant derived from the schema name (see `flowLockKey`), inlined
 * because a simple query takes no parameters (it is an integer this driver computes).
 */
export function flowBegin(key: string): string {
  if (!/^-?\d{1,19}$/.test(key)) throw new Error(`flow lock key must be an integer, got ${key}`);
  return `BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL jit = off; SELECT pg_advisory_xact_lock(${key}::bigint)`;
}

/** The columns a candidate row carries (alias `j`). */
const CAND_COLS = 'j.id, j.type, j.priority, j.run_at, j.concurrency_key, j.rate_key';

/** The key of a job's concurrency group within its type (alias `j`); null counts as ''. */
const CK = "coalesce(j.concurrency_key, '')";
/** The key of a job's rate group within its type (alias `j`). */
const RK = "coalesce(j.rate_key, '')";

/** A group's first job in `sdj_jobs_limited` order, with the group's keys (alias `j`). */
const GRP_COLS = `j.type, ${CK} AS ck, ${RK} AS rk, j.id, j.priority, j.run_at, j.concurrency_key, j.rate_key`;

/** The order of `sdj_jobs_limited` after its queue column (alias `j`). */
const GRP_ORDER = `j.type, ${CK}, ${RK}, j.priority DESC, j.run_at, j.id`;

/** Ready pending jobs (alias `j`) of the queue `queue` with the `limited` mark `mark`. */
function ready(queue: string, mark: 0 | 1): string {
  return `j.status = 'pending' AND j.limited = ${mark} AND j.queue = ${queue} AND j.run_at <= ${NOW}`;
}

/**
 * The candidates of a limited claim, with what the plan needs to know about each: its type
 * limit (`t_*`), its queue limit (`q_*`), the running counts of its concurrency groups (`run_t`,
 * `run_q`) and the stored tat of its rate groups (`tat_t`, `tat_q`, only where a rate limit
 * applies), and the statement's now. Paused queues are left out; queue rows are read `FOR SHARE`
 * (a pause or a limit change waits for the claim, as with `jobClaim`).
 * Params: $1 now, $2 queue names, $3 limits (distinct names). Result: candidate rows (any order).
 */
export const FLOW_CANDIDATES = `
WITH RECURSIVE ${NOW_CTE},
ql AS MATERIALIZED (
  SELECT name, paused, concurrency, rate_limit, rate_period_ms, updated_at FROM {s}.sdj_queues
  WHERE name = ANY($2::text[]) ORDER BY name FOR SHARE
),
tl AS MATERIALIZED (SELECT type, concurrency, rate_limit, rate_period_ms, updated_at FROM {s}.sdj_type_limits),
run AS MATERIALIZED (
  SELECT r.type, coalesce(r.concurrency_key, '') AS ck, r.queue FROM {s}.sdj_jobs_live r
  WHERE r.lease_expires_at IS NOT NULL AND r.status = 'running'
    AND (r.type IN (SELECT type FROM tl WHERE concurrency IS NOT NULL)
      OR r.queue IN (SELECT name FROM ql WHERE concurrency IS NOT NULL))
),
rt AS MATERIALIZED (
  SELECT coalesce(jsonb_object_agg(t.type, t.m), '{}') AS m
  FROM (SELECT x.type, jsonb_object_agg(x.ck, x.n) AS m FROM (SELECT type, ck, count(*) AS n FROM run GROUP BY type, ck) x GROUP BY x.type) t
),
qx AS MATERIALIZED (
  SELECT q.name, q.lim, ql.concurrency AS q_conc, ql.rate_limit AS q_rate, ql.rate_period_ms AS q_period,
    ql.updated_at AS q_upd, (ql.concurrency IS NOT NULL OR ql.rate_limit IS NOT NULL) AS q_limited,
    coalesce(c.n, 0) AS run_q, s.tat AS tat_q,
    (ql.concurrency IS NOT NULL AND coalesce(c.n, 0) >= ql.concurrency) AS q_full,
    greatest(coalesce(s.tat - ${NOW}, 0), 0) AS q_wait
  FROM unnest($2::text[], $3::int[]) AS q(name, lim)
  LEFT JOIN ql ON ql.name = q.name
  LEFT JOIN (SELECT queue, count(*) AS n FROM run GROUP BY queue) c ON c.queue = q.name
  LEFT JOIN {s}.sdj_rate_state s ON s.scope = 'queue' AND s.name = q.name AND s.rkey = '' AND ql.rate_limit IS NOT NULL
  WHERE NOT coalesce(ql.paused, false)
),
grp AS (
  SELECT q.name AS queue, h.* FROM qx q
  CROSS JOIN LATERAL (
    SELECT ${GRP_COLS} FROM {s}.sdj_jobs_live j
    WHERE j.status = 'pending' AND j.limited = 1 AND j.queue = q.name
    ORDER BY ${GRP_ORDER}
    LIMIT 1
  ) h
  WHERE NOT q.q_full
  UNION ALL
  SELECT g.queue, h.* FROM grp g
  CROSS JOIN LATERAL (
    SELECT ${GRP_COLS} FROM {s}.sdj_jobs_live j
    WHERE j.status = 'pending' AND j.limited = 1 AND j.queue = g.queue AND (j.type, ${CK}, ${RK}) > (g.type, g.ck, g.rk)
    ORDER BY ${GRP_ORDER}
    LIMIT 1
  ) h
),
gx AS MATERIALIZED (
  SELECT x.*, least(x.lim, x.t_conc - x.run_t, CASE WHEN x.t_rate IS NOT NULL THEN 1 END,
      x.q_conc - x.run_q, CASE WHEN x.q_rate IS NOT NULL THEN 1 END) AS k
  FROM (
    SELECT g.*, q.lim, q.q_conc, q.q_rate, q.run_q, tl.concurrency AS t_conc, tl.rate_limit AS t_rate,
      coalesce(((SELECT m FROM rt) -> g.type ->> g.ck)::bigint, 0) AS run_t,
      greatest(coalesce(s.tat - ${NOW}, 0), q.q_wait) AS wait
    FROM grp g
    JOIN qx q ON q.name = g.queue
    LEFT JOIN tl ON tl.type = g.type
    LEFT JOIN {s}.sdj_rate_state s ON s.scope = 'type' AND s.name = g.type AND s.rkey = g.rk AND tl.rate_limit IS NOT NULL
  ) x
),
cand AS MATERIALIZED (
  SELECT g.queue, g.type AS gt, g.ck AS gck, g.rk AS grk, false AS full, 0::double precision AS wait, g.k, h.* FROM gx g
  CROSS JOIN LATERAL (
    SELECT ${CAND_COLS} FROM {s}.sdj_jobs_live j
    WHERE ${ready('g.queue', 1)} AND j.type = g.type AND ${CK} = g.ck AND ${RK} = g.rk
    ORDER BY j.priority DESC, j.run_at, j.id
    LIMIT g.k + 1
  ) h
  WHERE NOT (g.t_conc IS NOT NULL AND g.run_t >= g.t_conc) AND g.wait <= 0
  UNION ALL
  SELECT g.queue, g.type, g.ck, g.rk, g.t_conc IS NOT NULL AND g.run_t >= g.t_conc, g.wait, 0,
    g.id, g.type, g.priority, g.run_at, g.concurrency_key, g.rate_key
  FROM gx g
  WHERE ((g.t_conc IS NOT NULL AND g.run_t >= g.t_conc) OR g.wait > 0) AND g.run_at <= ${NOW}
  UNION ALL
  SELECT q.name, NULL, NULL, NULL, q.q_full, q.q_wait, q.k, h.* FROM (
    SELECT qx.*, least(qx.lim, qx.q_conc - qx.run_q, CASE WHEN qx.q_rate IS NOT NULL THEN 1 END) AS k FROM qx
    WHERE qx.q_limited
  ) q
  CROSS JOIN LATERAL (
    SELECT ${CAND_COLS} FROM {s}.sdj_jobs_live j
    WHERE ${ready('q.name', 0)}
    ORDER BY j.priority DESC, j.run_at, j.id
    LIMIT CASE WHEN q.q_full OR q.q_wait > 0 THEN 1 ELSE q.k + 1 END
  ) h
  UNION ALL
  SELECT q.name, NULL, NULL, NULL, true, 0, 0, h.* FROM qx q
  CROSS JOIN LATERAL (
    SELECT ${CAND_COLS} FROM {s}.sdj_jobs_live j WHERE ${ready('q.name', 1)} ORDER BY ${GRP_ORDER} LIMIT 1
  ) h
  WHERE q.q_full
),
cr AS MATERIALIZED (
  SELECT c.*, NOT c.full AND c.wait <= 0 AS ok,
    row_number() OVER (PARTITION BY c.queue, c.gt, c.gck, c.grk ORDER BY c.priority DESC, c.run_at, c.id) AS gi
  FROM cand c
),
okc AS MATERIALIZED (
  SELECT x.* FROM (
    SELECT cr.*, row_number() OVER (PARTITION BY cr.queue ORDER BY cr.priority DESC, cr.run_at, cr.id) AS rn
    FROM cr WHERE cr.ok AND cr.gi <= cr.k
  ) x
  JOIN qx q ON q.name = x.queue
  WHERE x.rn <= q.lim
),
picked AS (
  SELECT id, queue, type, priority, run_at, concurrency_key, rate_key FROM okc
  UNION ALL
  SELECT c.id, c.queue, c.type, c.priority, c.run_at, c.concurrency_key, c.rate_key FROM cr c
  WHERE c.ok AND c.gi = c.k + 1 AND EXISTS (
    SELECT 1 FROM okc o WHERE o.queue = c.queue AND o.gt IS NOT DISTINCT FROM c.gt AND o.gck IS NOT DISTINCT FROM c.gck
      AND o.grk IS NOT DISTINCT FROM c.grk)
  UNION ALL
  SELECT * FROM (
    SELECT DISTINCT ON (c.queue) c.id, c.queue, c.type, c.priority, c.run_at, c.concurrency_key, c.rate_key
    FROM cr c WHERE c.full ORDER BY c.queue, c.priority DESC, c.run_at, c.id
  ) f
  UNION ALL
  SELECT * FROM (
    SELECT DISTINCT ON (c.queue) c.id, c.queue, c.type, c.priority, c.run_at, c.concurrency_key, c.rate_key
    FROM cr c WHERE NOT c.full AND c.wait > 0 ORDER BY c.queue, c.wait, c.priority DESC, c.run_at, c.id
  ) b
)
SELECT p.*, ${NOW} AS now,
  tl.concurrency AS t_conc, tl.rate_limit AS t_rate, tl.rate_period_ms AS t_period, tl.updated_at AS t_upd,
  q.q_conc, q.q_rate, q.q_period, q.q_upd, q.run_q, q.tat_q,
  coalesce(((SELECT m FROM rt) -> p.type ->> coalesce(p.concurrency_key, ''))::bigint, 0) AS run_t, s.tat AS tat_t
FROM picked p
JOIN qx q ON q.name = p.queue
LEFT JOIN tl ON tl.type = p.type
LEFT JOIN {s}.sdj_rate_state s ON s.scope = 'type' AND s.name = p.type AND s.rkey = coalesce(p.rate_key, '') AND tl.rate_limit IS NOT NULL`;

/**
 * Claims the planned jobs exactly as `jobClaim` does (`claimSet`), each still pending and ready
 * (a job cancelled, paused or pushed back by a debounce since the read is left), and stores the
 * rate state the plan moved. Params: $1 now (the read's), $2 ids, $3 worker id, $4 lease ms,
 * $5 scopes, $6 names, $7 keys, $8 tats (rate-state rows). Result: the claimed rows (any order).
 */
export const FLOW_CLAIM = `
WITH ${NOW_CTE},
rs AS (
  INSERT INTO {s}.sdj_rate_state (scope, name, rkey, tat)
  SELECT * FROM unnest($5::text[], $6::text[], $7::text[], $8::double precision[]) ORDER BY 1, 2, 3
  ON CONFLICT (scope, name, rkey) DO UPDATE SET tat = EXCLUDED.tat
)
UPDATE {s}.sdj_jobs_live j
SET ${claimSet('$3', '$4')}
WHERE j.id = ANY($2::text[]) AND j.status = 'pending' AND j.run_at <= ${NOW}
RETURNING j.*`;
