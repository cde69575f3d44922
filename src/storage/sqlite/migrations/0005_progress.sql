-- simple-durable-jobs: job progress (`ctx.progress`). The latest progress a run reported, in three
-- nullable columns (all NULL until the first report): the value (a fraction from 0 to 1), the
-- message, and when it was stored (ms, storage clock). A report writes all three at once, fenced
-- by the run like every write to a claimed job; the columns stay on the row when the job
-- finishes or runs again, until a later report replaces them. Adding a nullable column rewrites
-- no row.
ALTER TABLE sdj_jobs ADD COLUMN progress_value REAL;
ALTER TABLE sdj_jobs ADD COLUMN progress_message TEXT;
ALTER TABLE sdj_jobs ADD COLUMN progress_at INTEGER;
