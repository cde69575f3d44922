-- simple-durable-jobs: flow control. Fleet-wide concurrency and rate limits per job type (keyed)
-- and per queue, dedup windows for unique keys (`uniqueFor`), and debounce. The model is in
-- src/storage/flow-rows.ts.

-- Job columns, added on the partitioned parent (every partition gets them; a constant default
-- is stored in the catalog, so no row is rewritten). `limited` is 1 when the job's type had a
-- type limit row when it was inserted or last re-marked (0/1, as in every driver);
-- `concurrency_key` and `rate_key` name the job's groups (null counts as ''); a debounce
-- replaces the pending job of its type holding `debounce_key`.
ALTER TABLE :SCHEMA.sdj_jobs
  ADD COLUMN concurrency_key text,
  ADD COLUMN rate_key text,
  ADD COLUMN limited smallint NOT NULL DEFAULT 0,
  ADD COLUMN debounce_key text;

-- The ordinary claim never takes a limited job: its index leaves them out, so a backlog of
-- limited jobs held back by their limits costs the ordinary claim nothing. Same columns, same
-- order: the claim statements keep their plan (they add `limited = 0`).
DROP INDEX :SCHEMA.sdj_jobs_claim;
CREATE INDEX sdj_jobs_claim ON :SCHEMA.sdj_jobs_live (queue, priority DESC, run_at, id)
  WHERE status = 'pending' AND limited = 0;

-- Pending limited jobs in claim order within a queue, for the limited claim's first read (its
-- first jobs in claim order; in a queue with a queue limit merged with the range of
-- `sdj_jobs_claim`). The last term of the predicate holds for every row (priority is an
-- integer); only the statements that read in claim order state it, so no other statement can
-- use this index: without statistics the planner could not tell that it serves a group's jobs
-- (below) far worse than `sdj_jobs_limited` does.
CREATE INDEX sdj_jobs_limited_claim ON :SCHEMA.sdj_jobs_live (queue, priority DESC, run_at, id)
  WHERE status = 'pending' AND limited = 1 AND priority > -2147483649;

-- Pending limited jobs by group: within a queue, one entry per job ordered by its groups
-- (type, concurrency key, rate key; null keys as '') and then claim order. When the first jobs
-- of a queue in claim order cannot fill a limited claim (backlogs of full or rate-blocked groups
-- in front of them), the claim reads the first jobs of each group it met (one probe each), or
-- walks the distinct groups of the queue, so no group's backlog is read.
CREATE INDEX sdj_jobs_limited ON :SCHEMA.sdj_jobs_live
  (queue, type, (coalesce(concurrency_key, '')), (coalesce(rate_key, '')), priority DESC, run_at, id)
  WHERE status = 'pending' AND limited = 1;

-- Running limited jobs by concurrency group, for the limited claim's running counts (one
-- entry per running limited job: bounded by the fleet's slots). Its predicate is on the
-- status, so the planner's estimate of how few rows it holds does not depend on statistics;
-- `limited = 1` keeps it out of every statement that does not name it (the finish, heartbeat
-- and reclaim of running jobs look them up by id or lease).
CREATE INDEX sdj_jobs_running ON :SCHEMA.sdj_jobs_live (type, (coalesce(concurrency_key, '')))
  WHERE status = 'running' AND limited = 1;

-- Debounce: the pending jobs holding a (type, key), for the insert that replaces its holder.
-- Not unique: a holder that was claimed, and went back to pending (a retry, a release) after a
-- later debounce inserted a new job, holds the key too. Debounces of one key are serialized by a
-- transaction-level advisory lock instead (see `DEBOUNCE_LOCK`), so each sees the one before.
CREATE INDEX sdj_jobs_debounce ON :SCHEMA.sdj_jobs_live (type, debounce_key)
  WHERE status = 'pending' AND debounce_key IS NOT NULL;

-- Dedup windows: the finished jobs holding a unique key, newest completion last, so that an
-- insert with `uniqueFor` finds the latest finished holder of its key with one probe. Only
-- jobs with a key have entries.
CREATE INDEX sdj_jobs_history_unique_key ON :SCHEMA.sdj_jobs_history (unique_key, completed_at)
  WHERE unique_key IS NOT NULL;

-- Type limits, one row per limited type. Inserts read it to mark their jobs; the limited claim
-- reads it whole (one row per limited type).
CREATE TABLE :SCHEMA.sdj_type_limits (
  type           text    NOT NULL PRIMARY KEY,
  concurrency    integer,
  rate_limit     integer,
  rate_period_ms bigint,
  updated_at     bigint  NOT NULL
);

-- Queue limits live on the queue's row, next to the pause flag: the ordinary claim already reads
-- that row (FOR SHARE) and skips a queue with a limit as it skips a paused one, so a limit set
-- while a claim is in flight is ordered with it exactly as a pause is.
ALTER TABLE :SCHEMA.sdj_queues
  ADD COLUMN concurrency integer,
  ADD COLUMN rate_limit integer,
  ADD COLUMN rate_period_ms bigint;

-- Rate state per rate group (GCRA): the theoretical arrival time in fractional ms. `scope` is
-- 'type' (name: the type, rkey: the rate key or '') or 'queue' (name: the queue, rkey: '').
-- Only `tat` changes, and it is not indexed: with free space left on each page, the claim's
-- upsert is a HOT update. A row whose tat is older than a second means what no row means;
-- retention deletes those older than a minute.
CREATE TABLE :SCHEMA.sdj_rate_state (
  scope text             NOT NULL,
  name  text             NOT NULL,
  rkey  text             NOT NULL,
  tat   double precision NOT NULL,
  PRIMARY KEY (scope, name, rkey)
) WITH (fillfactor = 70);

-- The version of everything a limited claim decides on: one row, bumped by every limited claim
-- that starts a job or moves rate state, and by every change of a limit (in the same
-- transaction). A limited claim reads it with its candidates and stores its decision only if
-- the version is still the one it read (see src/storage/postgres/queries/flow.ts).
CREATE TABLE :SCHEMA.sdj_flow_state (
  id      integer NOT NULL PRIMARY KEY CHECK (id = 1),
  version bigint  NOT NULL
) WITH (fillfactor = 10);
INSERT INTO :SCHEMA.sdj_flow_state (id, version) VALUES (1, 0);

ANALYZE :SCHEMA.sdj_jobs_live;
