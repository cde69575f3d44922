-- simple-durable-jobs schema, version 4 (MySQL 8 / MariaDB >= 10.6): flow control. Fleet-wide
-- concurrency and rate limits per job type (keyed) and per queue, dedup windows for unique keys
-- (`uniqueFor`), and debounce. The model is in src/storage/flow-rows.ts.
-- Every change to `sdj_jobs` is online: plain and virtual columns are added in place without
-- rewriting rows, and the indexes are built in place while writes go on. (A STORED generated
-- column would copy the whole table with writes blocked, so none is added.) MySQL has no
-- `ADD COLUMN IF NOT EXISTS`: each ALTER TABLE runs only when what it adds is missing, which
-- keeps the migration safe to run again after an interruption (as in migration 2).

-- Job columns. `limited` is 1 when the job's type had a type limit row when it was inserted or
-- last re-marked; `concurrency_key` and `rate_key` name the job's groups (null counts as '');
-- a debounce replaces the pending job of its type holding `debounce_key`. `flow_group` names the
-- job's groups in 32 bytes: 16 of the SHA-256 of its type and concurrency key, then 16 of the
-- SHA-256 of its type and rate key (the type length-prefixed, a null key as ''), so a read that
-- knows the full and the rate-blocked groups tells each flow group's fate from its index entry.
-- It is set while the job is limited and NULL otherwise: the driver writes it in the statements
-- that set `limited` (insert, debounce, limit re-marks, retry).
SET @sdj_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = 'sdj_jobs' AND column_name = 'limited') = 0,
  'ALTER TABLE sdj_jobs ADD COLUMN concurrency_key VARCHAR(255) NULL, ADD COLUMN rate_key VARCHAR(255) NULL, ADD COLUMN limited TINYINT NOT NULL DEFAULT 0, ADD COLUMN debounce_key VARCHAR(255) NULL, ADD COLUMN flow_group BINARY(32) NULL',
  'SELECT 1');
PREPARE sdj_ddl FROM @sdj_ddl;
EXECUTE sdj_ddl;
DEALLOCATE PREPARE sdj_ddl;

-- Two virtual columns, computed (never stored) and indexed below:
-- - `flow_queue`: the queue of a pending limited job, else NULL;
-- - `debounce_active`: the (type, debounce key) of a pending job holding one, length-prefixed
--   bytes (exact: no trailing-space padding), else NULL.
-- Both are NULL for a job without limits or debounce whatever its status, so their index
-- entries never change when such a job is claimed or finished.
SET @sdj_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = 'sdj_jobs' AND column_name = 'flow_queue') = 0,
  'ALTER TABLE sdj_jobs ADD COLUMN flow_queue VARCHAR(255) GENERATED ALWAYS AS (IF(limited = 1 AND status = ''pending'', queue, NULL)) VIRTUAL, ADD COLUMN debounce_active VARBINARY(2048) GENERATED ALWAYS AS (IF(status = ''pending'' AND debounce_key IS NOT NULL, CAST(CONCAT(OCTET_LENGTH(type), '':'', type, debounce_key) AS BINARY), NULL)) VIRTUAL',
  'SELECT 1');
PREPARE sdj_ddl FROM @sdj_ddl;
EXECUTE sdj_ddl;
DEALLOCATE PREPARE sdj_ddl;

-- Indexes, in one ALTER TABLE (atomic: every index changes or none):
-- - `sdj_jobs_claim` gains `limited` after `status`: the ordinary claim reads the range
--   (queue, 'pending', 0) in the same order as before and never meets a limited job, so a
--   backlog held back by limits costs it nothing. No new index is maintained by its claims.
-- - `sdj_jobs_wake` (status, wake_at) gains (queue, limited, flow_group). A pending job never
--   has a wake time, so the range ('pending', NULL, queue, 1) lists a queue's pending limited
--   jobs by group: the limited claim finds the distinct groups of a queue with one probe per
--   group (MariaDB's loose index scan, "Using index for group-by", which it does only over plain
--   columns and indexes without descending parts, hence these plain columns here). The index
--   already changes at every claim and finish (its status); its entries just get wider. Reads of
--   waiting jobs by wake time keep their range.
-- - `sdj_jobs_flow` (flow_queue, flow_group, priority DESC, run_at, id): a group's pending
--   limited jobs in claim order, for the few the limited claim reads per group. Jobs without
--   limits all share the entry prefix (NULL, NULL), which claims and finishes do not move.
-- - `sdj_jobs_debounce`: the pending holders of a (type, debounce key). Not unique: a holder that
--   was claimed, and went back to pending (a retry, a release) after a later debounce inserted a
--   new job, holds the key too. Debounces of one key serialize on `sdj_debounce_locks` instead.
-- - `sdj_jobs_unique_key`: every job holding a unique key, so that an insert with `uniqueFor`
--   finds the finished holders of its key with one probe. The key of a job never changes, so
--   only inserts and deletes touch it (`unique_active` covers live jobs only).
-- Key lengths stay under InnoDB's 3072 bytes (utf8mb4: 4 bytes a character).
SET @sdj_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.statistics
    WHERE table_schema = DATABASE() AND table_name = 'sdj_jobs' AND index_name = 'sdj_jobs_flow') = 0,
  'ALTER TABLE sdj_jobs DROP INDEX sdj_jobs_claim, ADD INDEX sdj_jobs_claim (queue, status, limited, priority DESC, run_at, id), DROP INDEX sdj_jobs_wake, ADD INDEX sdj_jobs_wake (status, wake_at, queue, limited, flow_group), ADD INDEX sdj_jobs_flow (flow_queue, flow_group, priority DESC, run_at, id), ADD INDEX sdj_jobs_debounce (debounce_active), ADD INDEX sdj_jobs_unique_key (unique_key)',
  'SELECT 1');
PREPARE sdj_ddl FROM @sdj_ddl;
EXECUTE sdj_ddl;
DEALLOCATE PREPARE sdj_ddl;

-- Queue limits live on the queue's row, next to the pause flag: the ordinary claim already reads
-- that row (share-locked) and skips a queue with a limit as it skips a paused one, so a limit set
-- while a claim is in flight is ordered with it exactly as a pause is.
SET @sdj_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = 'sdj_queues' AND column_name = 'concurrency') = 0,
  'ALTER TABLE sdj_queues ADD COLUMN concurrency INT NULL, ADD COLUMN rate_limit INT NULL, ADD COLUMN rate_period_ms BIGINT NULL',
  'SELECT 1');
PREPARE sdj_ddl FROM @sdj_ddl;
EXECUTE sdj_ddl;
DEALLOCATE PREPARE sdj_ddl;

-- Type limits, one row per limited type. Inserts read it to mark their jobs; the limited claim
-- reads it whole. The name is binary so that names differing only by trailing spaces stay apart.
CREATE TABLE IF NOT EXISTS sdj_type_limits (
  type VARBINARY(1020) NOT NULL,
  concurrency INT NULL,
  rate_limit INT NULL,
  rate_period_ms BIGINT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Rate state per rate group (GCRA): the theoretical arrival time in fractional ms. `scope` is
-- 'type' (name: the type, rkey: the rate key or '') or 'queue' (name: the queue, rkey: '').
-- A row whose tat is older than now minus the catch-up allowance (at most a second) means what
-- no row means; retention deletes rows a minute past their tat (a scan of this small table: an
-- index on `tat` would change at every start).
CREATE TABLE IF NOT EXISTS sdj_rate_state (
  scope VARCHAR(8) CHARACTER SET ascii NOT NULL,
  name VARBINARY(1020) NOT NULL,
  rkey VARBINARY(1020) NOT NULL,
  tat DOUBLE NOT NULL,
  PRIMARY KEY (scope, name, rkey)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Row locks of flow control. Row 1 serializes limited claims with each other and with limit
-- changes and queue pauses: each of those locks it (an UPDATE) and moves its generation `gen` on.
-- A limited claim reads the state with the generation before taking the lock, then takes the
-- lock and claims in one statement only if the generation is still the one it read (otherwise it
-- reads again under the lock), so the counts it decided on are exact until it commits. Row 2:
-- every job insert share-locks it while reading `sdj_type_limits`, and a type limit's appearance
-- or removal locks it exclusively before re-marking the type's jobs, so no insert in flight can
-- miss the change.
CREATE TABLE IF NOT EXISTS sdj_flow_locks (
  id TINYINT NOT NULL,
  gen BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
) ENGINE=InnoDB;

INSERT IGNORE INTO sdj_flow_locks (id) VALUES (1), (2);

-- Debounce locks: one row per (type, debounce key) hash, locked by each debounce of that key
-- until its transaction ends (inserted on first use), so that two debounces of one key run one
-- after the other and exactly one pending job holds it. Retention deletes rows older than a day
-- (through `sdj_debounce_locks_created`), skipping rows in use; the next debounce of such a key
-- inserts its row again.
CREATE TABLE IF NOT EXISTS sdj_debounce_locks (
  lock_key BINARY(32) NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (lock_key),
  KEY sdj_debounce_locks_created (created_at)
) ENGINE=InnoDB;
