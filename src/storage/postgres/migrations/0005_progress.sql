-- simple-durable-jobs: job progress (`ctx.progress`). The latest progress a run reported, in three
-- nullable columns (all NULL until the first report): the value (a fraction from 0 to 1), the
-- message, and when it was stored (ms, storage clock). A report writes all three at once, fenced
-- by the run like every write to a claimed job, on the live partition (only running jobs report).
--
-- Added on the partitioned parent, so both partitions get them (a nullable column without a
-- default rewrites no row). Every statement that moves a job between the partitions names the
-- columns of `JOB_COLUMN_NAMES` (queries/common.ts), which lists these too: a finished job takes
-- its last progress into history, and a retried one brings it back.
ALTER TABLE :SCHEMA.sdj_jobs
  ADD COLUMN progress_value double precision,
  ADD COLUMN progress_message text,
  ADD COLUMN progress_at bigint;
