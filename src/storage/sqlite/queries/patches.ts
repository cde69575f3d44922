/**
 * SQLite statements of `stepPatchSummary`: what runs stored for `ctx.patched`. Values are always
 * bound parameters.
 * @internal
 */

/** Statuses of a job in flight. */
const IN_FLIGHT = "('pending', 'running', 'waiting', 'paused')";

/**
 * Per job type and patch id (step name `patched:<id>` at a negative step index), in one
 * statement (one snapshot): the earliest answer's time, how many jobs stored `true` and `false`
 * (all, and in flight), and how many in-flight jobs of the type, claimed at least once and
 * created before the given instant (default that earliest answer), stored none. Reads every answer row (the checkpoints
 * table has no index on the step index alone: one pass over it) with its job by primary key;
 * then, per row of the result, the type's in-flight jobs, each with a primary-key range read of
 * its answers.
 * Params: @type (null: every type), @step (`patched:<id>`, null: every patch), @limit, @before
 * (ms; null: each pair's earliest answer).
 * Result: `{ type, step_name, first_at, recorded_new, recorded_old, in_flight_new, in_flight_old, in_flight_predating }[]`.
 */
export const PATCH_SUMMARY = `
WITH m AS (
  SELECT j.type AS type, s.step_name AS step_name, MIN(s.created_at) AS first_at,
         SUM(CASE WHEN s.output = 'true' THEN 1 ELSE 0 END) AS recorded_new,
         SUM(CASE WHEN s.output = 'true' THEN 0 ELSE 1 END) AS recorded_old,
         SUM(CASE WHEN s.output = 'true' AND j.status IN ${IN_FLIGHT} THEN 1 ELSE 0 END) AS in_flight_new,
         SUM(CASE WHEN s.output <> 'true' AND j.status IN ${IN_FLIGHT} THEN 1 ELSE 0 END) AS in_flight_old
  FROM sdj_steps s JOIN sdj_jobs j ON j.id = s.job_id
  WHERE s.step_index < 0 AND (@type IS NULL OR j.type = @type) AND (@step IS NULL OR s.step_name = @step)
  GROUP BY j.type, s.step_name
  ORDER BY j.type, s.step_name
  LIMIT @limit
)
SELECT m.type, m.step_name, m.first_at, m.recorded_new, m.recorded_old, m.in_flight_new, m.in_flight_old,
       (SELECT COUNT(*) FROM sdj_jobs p
        WHERE p.type = m.type AND p.status IN ${IN_FLIGHT} AND p.run_count > 0 AND p.created_at < COALESCE(@before, m.first_at)
          AND NOT EXISTS (SELECT 1 FROM sdj_steps a WHERE a.job_id = p.id AND a.step_index < 0 AND a.step_name = m.step_name)
       ) AS in_flight_predating
FROM m
ORDER BY m.type, m.step_name`;
