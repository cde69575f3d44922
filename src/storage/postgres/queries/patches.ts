/**
 * PostgreSQL statements of `stepPatchSummary`: what runs stored for `ctx.patched`.
 * @internal
 */

/**
 * Per job type and patch id (step name `patched:<id>` at a negative step index), in one
 * statement (one snapshot): the earliest answer's time, how many jobs stored `true` and `false`
 * (all, and in flight), and how many in-flight jobs of the type (the live partition), claimed at
 * least once and created before the given instant (default that earliest answer), stored none. Reads every answer row (the
 * checkpoints table has no index on the step index alone: one pass over it) with its job by
 * primary key; then, per row of the result, the type's live jobs, each with a primary-key range
 * read of its answers.
 * Params: $1 type (null: every type), $2 step name `patched:<id>` (null: every patch), $3 limit,
 * $4 before (ms; null: each pair's earliest answer).
 * Result: `{ type, step_name, first_at, recorded_new, recorded_old, in_flight_new, in_flight_old, in_flight_predating }[]`.
 */
export const PATCH_SUMMARY = `
WITH m AS (
  SELECT j.type AS type, s.step_name AS step_name, MIN(s.created_at) AS first_at,
         COUNT(*) FILTER (WHERE s.output = 'true') AS recorded_new,
         COUNT(*) FILTER (WHERE s.output IS DISTINCT FROM 'true') AS recorded_old,
         COUNT(*) FILTER (WHERE s.output = 'true' AND j.status IN ('pending', 'running', 'waiting', 'paused')) AS in_flight_new,
         COUNT(*) FILTER (WHERE s.output IS DISTINCT FROM 'true' AND j.status IN ('pending', 'running', 'waiting', 'paused')) AS in_flight_old
  FROM {s}.sdj_steps s JOIN {s}.sdj_jobs j ON j.id = s.job_id
  WHERE s.step_index < 0 AND ($1::text IS NULL OR j.type = $1::text) AND ($2::text IS NULL OR s.step_name = $2::text)
  GROUP BY j.type, s.step_name
  ORDER BY j.type COLLATE "C", s.step_name COLLATE "C"
  LIMIT $3
)
SELECT m.type, m.step_name, m.first_at, m.recorded_new, m.recorded_old, m.in_flight_new, m.in_flight_old,
       (SELECT COUNT(*) FROM {s}.sdj_jobs_live p
        WHERE p.type = m.type AND p.run_count > 0 AND p.created_at < COALESCE($4::bigint, m.first_at)
          AND NOT EXISTS (SELECT 1 FROM {s}.sdj_steps a WHERE a.job_id = p.id AND a.step_index < 0 AND a.step_name = m.step_name)
       ) AS in_flight_predating
FROM m
ORDER BY m.type COLLATE "C", m.step_name COLLATE "C"`;
