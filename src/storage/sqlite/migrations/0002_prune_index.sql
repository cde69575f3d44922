-- simple-durable-jobs: retention. Finished root jobs (no parent) by status and completion time,
-- the only rows `jobPrune` looks for. Partial: a row enters it when a root job finishes and
-- leaves it when the job is pruned or retried; children and live jobs are never in it, so the
-- claim, heartbeat and reclaim statements do no work on it (they only evaluate its condition).
CREATE INDEX sdj_jobs_prune ON sdj_jobs (status, completed_at) WHERE parent_id IS NULL AND completed_at IS NOT NULL;
