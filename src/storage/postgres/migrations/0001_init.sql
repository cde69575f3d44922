-- simple-durable-jobs: initial PostgreSQL schema. `:SCHEMA` is replaced by the quoted schema
-- name by the migrator. All times are BIGINT milliseconds since the Unix epoch (UTC); payloads
-- are TEXT (never jsonb) so they round-trip byte for byte.

CREATE TABLE :SCHEMA.sdj_jobs (
  id               text    NOT NULL PRIMARY KEY,
  type             text    NOT NULL,
  queue            text    NOT NULL,
  status           text    NOT NULL
    CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'paused')),
  priority         integer NOT NULL DEFAULT 0,
  attempt          integer NOT NULL DEFAULT 0,
  max_retries      integer NOT NULL DEFAULT 0,
  run_count        integer NOT NULL DEFAULT 0,
  args             text,
  result           text,
  meta             text,
  last_error       text,
  run_at           bigint  NOT NULL,
  created_at       bigint  NOT NULL,
  started_at       bigint,
  completed_at     bigint,
  timeout_ms       bigint,
  unique_key       text,
  tenant           text,
  parent_id        text,
  fan_out_id       text,
  fan_out_index    integer,
  locked_by        text,
  lease_expires_at bigint,
  heartbeat_at     bigint,
  wake_at          bigint,
  wait_signal      text
)
-- A job row is written three times (insert, claim, finish). Status changes are never HOT
-- updates (status and the lease are indexed), but free space on the page keeps the new row
-- version next to the old one, and frequent autovacuum keeps the dead versions (and the dead
-- entries at the head of the claim index) from piling up under a steady load.
WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.05,
      autovacuum_analyze_scale_factor = 0.05);

-- Claim order within a queue, over pending jobs only. No other index may lead with queue or
-- status for pending rows: before the first ANALYZE the planner could pick it and sort the
-- whole backlog on every claim.
CREATE INDEX sdj_jobs_claim ON :SCHEMA.sdj_jobs (queue, priority DESC, run_at, id) WHERE status = 'pending';
-- One non-terminal job per unique key; terminal jobs leave the index and free the key.
CREATE UNIQUE INDEX sdj_jobs_unique_key ON :SCHEMA.sdj_jobs (unique_key)
  WHERE unique_key IS NOT NULL AND status IN ('pending', 'running', 'waiting', 'paused');
-- Lease reaper. Only running jobs hold a lease; the predicate is on the lease, not the status,
-- so id-driven updates of running jobs are not tempted into a BitmapAnd over every running job.
CREATE INDEX sdj_jobs_lease ON :SCHEMA.sdj_jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
-- Timed wake-ups and the fan-out recovery sweep.
CREATE INDEX sdj_jobs_wake ON :SCHEMA.sdj_jobs (wake_at) WHERE status = 'waiting';
-- Subtree walks (cancel, retry).
CREATE INDEX sdj_jobs_parent ON :SCHEMA.sdj_jobs (parent_id) WHERE parent_id IS NOT NULL;
-- Fan-out children (sibling cancellation, results).
CREATE INDEX sdj_jobs_fan_out ON :SCHEMA.sdj_jobs (fan_out_id, fan_out_index) WHERE fan_out_id IS NOT NULL;
-- No index for listings (created_at): every extra index costs two more index insertions per
-- job (claim and finish are not HOT updates). `jobList` is an operator tool; it sorts the
-- filtered rows.

CREATE TABLE :SCHEMA.sdj_steps (
  job_id     text    NOT NULL,
  step_index integer NOT NULL,
  step_name  text    NOT NULL,
  status     text    NOT NULL CHECK (status IN ('completed', 'failed', 'waiting')),
  output     text,
  error      text,
  created_at bigint  NOT NULL,
  PRIMARY KEY (job_id, step_index)
);

CREATE TABLE :SCHEMA.sdj_fan_outs (
  id          text             NOT NULL PRIMARY KEY,
  parent_id   text             NOT NULL,
  step_index  integer          NOT NULL,
  strategy    text             NOT NULL CHECK (strategy IN ('fail-fast', 'collect-all', 'threshold')),
  threshold   double precision,
  total       integer          NOT NULL,
  succeeded   integer          NOT NULL DEFAULT 0,
  failed      integer          NOT NULL DEFAULT 0,
  cancelled   integer          NOT NULL DEFAULT 0,
  status      text             NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  deadline_at bigint,
  created_at  bigint           NOT NULL,
  decided_at  bigint
);

CREATE INDEX sdj_fan_outs_parent ON :SCHEMA.sdj_fan_outs (parent_id, step_index);

CREATE TABLE :SCHEMA.sdj_signals (
  seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id      text   NOT NULL,
  name        text   NOT NULL,
  payload     text,
  created_at  bigint NOT NULL,
  consumed_at bigint
);

CREATE INDEX sdj_signals_job_name ON :SCHEMA.sdj_signals (job_id, name, seq);

CREATE TABLE :SCHEMA.sdj_schedules (
  name        text   NOT NULL PRIMARY KEY,
  spec        text   NOT NULL,
  options     text   NOT NULL,
  next_run_at bigint NOT NULL,
  last_run_at bigint,
  last_job_id text,
  created_at  bigint NOT NULL,
  updated_at  bigint NOT NULL
);

CREATE INDEX sdj_schedules_due ON :SCHEMA.sdj_schedules (next_run_at);

CREATE TABLE :SCHEMA.sdj_queues (
  name       text    NOT NULL PRIMARY KEY,
  paused     boolean NOT NULL DEFAULT false,
  updated_at bigint  NOT NULL
);
