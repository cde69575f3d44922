-- simple-durable-jobs schema, version 5 (MySQL 8 / MariaDB >= 10.6): job progress
-- (`ctx.progress`). The latest progress a run reported, in three nullable columns (all NULL until
-- the first report): the value (a fraction from 0 to 1), the message, and when it was stored (ms,
-- storage clock). A report writes all three at once, fenced by the run like every write to a
-- claimed job; the columns stay on the row when the job finishes or runs again, until a later
-- report replaces them. Nullable columns are added in place, without rewriting rows. MySQL has no
-- `ADD COLUMN IF NOT EXISTS`: the ALTER TABLE runs only when the columns are missing, which keeps
-- the migration safe to run again after an interruption (as in migrations 2 and 4).
SET @sdj_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = 'sdj_jobs' AND column_name = 'progress_at') = 0,
  'ALTER TABLE sdj_jobs ADD COLUMN progress_value DOUBLE NULL, ADD COLUMN progress_message TEXT NULL, ADD COLUMN progress_at BIGINT NULL',
  'SELECT 1');
PREPARE sdj_ddl FROM @sdj_ddl;
EXECUTE sdj_ddl;
DEALLOCATE PREPARE sdj_ddl;
