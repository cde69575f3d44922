/**
 * PostgreSQL statements of job progress (`progress-ops.ts`, `Storage.jobProgressMany`).
 * @internal
 */
import { NOW_CTE } from './common.js';

/**
 * Fenced: stores the latest progress of many runs in one statement (value, message, and the
 * statement's now as its time), on the live partition (only running jobs report); changes
 * nothing else. One item per job. Params: $1 now, $2 job ids, $3 worker ids, $4 run counts,
 * $5 values (float8), $6 messages. Result: { id, at } of each run whose fence held.
 */
export const JOB_PROGRESS = `
WITH ${NOW_CTE}
UPDATE {s}.sdj_jobs_live j SET progress_value = r.value, progress_message = r.message, progress_at = n.t
FROM unnest($2::text[], $3::text[], $4::int[], $5::float8[], $6::text[]) AS r(job_id, worker_id, run_count, value, message), now n
WHERE j.id = ANY($2::text[]) AND j.id = r.job_id AND j.locked_by = r.worker_id AND j.run_count = r.run_count
  AND j.status = 'running'
RETURNING j.id, n.t AS at`;
