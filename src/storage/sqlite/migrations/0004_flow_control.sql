-- simple-durable-jobs: flow control. Fleet-wide concurrency and rate limits per job type (keyed)
-- and per queue, dedup windows for unique keys (`uniqueFor`), and debounce. The model is in
-- src/storage/flow-rows.ts.

-- Job columns. Adding a column with a constant default rewrites no row. `limited` is 1 when the
-- job's type had a type limit row when it was inserted or last re-marked; `concurrency_key` and
-- `rate_key` name the job's groups within its type, as given (null counts as ''); a debounce
-- replaces the pending job of its type holding `debounce_key`.
ALTER TABLE sdj_jobs ADD COLUMN concurrency_key TEXT;
ALTER TABLE sdj_jobs ADD COLUMN rate_key TEXT;
ALTER TABLE sdj_jobs ADD COLUMN limited INTEGER NOT NULL DEFAULT 0 CHECK (limited IN (0, 1));
ALTER TABLE sdj_jobs ADD COLUMN debounce_key TEXT;
-- The group keys with null read as '' (computed, never stored): the limited index orders by
-- them, and SQLite seeks an index by a row value, e.g. (type, concurrency_group, rate_group) >
-- (?, ?, ?), only over plain columns, not over expressions such as coalesce(concurrency_key, '').
ALTER TABLE sdj_jobs ADD COLUMN concurrency_group TEXT GENERATED ALWAYS AS (coalesce(concurrency_key, '')) VIRTUAL;
ALTER TABLE sdj_jobs ADD COLUMN rate_group TEXT GENERATED ALWAYS AS (coalesce(rate_key, '')) VIRTUAL;

-- The ordinary claim never takes a limited job: its index leaves them out, so a backlog of
-- limited jobs held back by their limits costs the ordinary claim nothing, and a limited job is
-- in one claim index only. Same columns, same order: the claim keeps its plan (it adds
-- `limited = 0`).
DROP INDEX sdj_jobs_claim;
CREATE INDEX sdj_jobs_claim ON sdj_jobs (queue, priority DESC, run_at, id) WHERE status = 'pending' AND limited = 0;

-- Ready limited jobs by group, for the limited claim: within a queue, the jobs of each group
-- (type, concurrency key, rate key) together, each group in claim order. The claim walks the
-- distinct groups of a queue (one seek each, a row-value range) and reads the first jobs of
-- the groups that have room, so a full or rate-blocked group's backlog is never read. Only
-- limited pending jobs have entries: jobs without limits never touch it.
CREATE INDEX sdj_jobs_limited ON sdj_jobs (queue, type, concurrency_group, rate_group, priority DESC, run_at, id)
  WHERE status = 'pending' AND limited = 1;

-- Debounce: the pending jobs holding a (type, key), for the insert that replaces its holder. Not
-- unique: a holder that was claimed, and went back to pending (a retry, a release) after a later
-- debounce inserted a new job, holds the key too. Debounces of one key need no lock of their own:
-- every write holds the file's write lock, so each debounce sees the one before.
CREATE INDEX sdj_jobs_debounce ON sdj_jobs (type, debounce_key) WHERE status = 'pending' AND debounce_key IS NOT NULL;

-- Dedup windows: the finished jobs holding a unique key, by completion, so that an insert with
-- `uniqueFor` finds the latest finished holder of its key with one seek. A job enters it once,
-- when it finishes (only jobs with a key), and leaves it when retried or pruned.
CREATE INDEX sdj_jobs_unique_done ON sdj_jobs (unique_key, completed_at)
  WHERE unique_key IS NOT NULL AND status IN ('completed', 'failed', 'cancelled');

-- Type limits, one row per limited type. Inserts read it to mark their jobs; the limited claim
-- reads it whole (one row per limited type).
CREATE TABLE sdj_type_limits (
  type           TEXT    NOT NULL PRIMARY KEY,
  concurrency    INTEGER,
  rate_limit     INTEGER,
  rate_period_ms INTEGER,
  updated_at     INTEGER NOT NULL
);

-- Queue limits live on the queue's row, next to the pause flag: the ordinary claim already reads
-- that row and skips a queue with a limit as it skips a paused one.
ALTER TABLE sdj_queues ADD COLUMN concurrency INTEGER;
ALTER TABLE sdj_queues ADD COLUMN rate_limit INTEGER;
ALTER TABLE sdj_queues ADD COLUMN rate_period_ms INTEGER;

-- Rate state per rate group (GCRA): the theoretical arrival time in fractional ms. `scope` is
-- 'type' (name: the type, rkey: the rate key or '') or 'queue' (name: the queue, rkey: '').
-- Keyed by its primary key alone (no rowid): the claim reads a limit's rows as one range and
-- upserts them. A row whose tat is more than a second old means what no row means (a late start
-- catches up by at most a second); retention deletes those a minute old.
CREATE TABLE sdj_rate_state (
  scope TEXT NOT NULL,
  name  TEXT NOT NULL,
  rkey  TEXT NOT NULL,
  tat   REAL NOT NULL,
  PRIMARY KEY (scope, name, rkey)
) WITHOUT ROWID;
