-- simple-durable-jobs: initial SQLite schema. All times are INTEGER milliseconds since the
-- Unix epoch (UTC); payloads are TEXT so they round-trip byte for byte.

CREATE TABLE sdj_jobs (
  id               TEXT    NOT NULL PRIMARY KEY,
  type             TEXT    NOT NULL,
  queue            TEXT    NOT NULL,
  status           TEXT    NOT NULL
    CHECK (status IN ('pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'paused')),
  priority         INTEGER NOT NULL DEFAULT 0,
  attempt          INTEGER NOT NULL DEFAULT 0,
  max_retries      INTEGER NOT NULL DEFAULT 0,
  run_count        INTEGER NOT NULL DEFAULT 0,
  args             TEXT,
  result           TEXT,
  meta             TEXT,
  last_error       TEXT,
  run_at           INTEGER NOT NULL,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  completed_at     INTEGER,
  timeout_ms       INTEGER,
  unique_key       TEXT,
  tenant           TEXT,
  parent_id        TEXT,
  fan_out_id       TEXT,
  fan_out_index    INTEGER,
  locked_by        TEXT,
  lease_expires_at INTEGER,
  heartbeat_at     INTEGER,
  wake_at          INTEGER,
  wait_signal      TEXT
);

-- Claim order within a queue, over pending jobs only.
CREATE INDEX sdj_jobs_claim ON sdj_jobs (queue, priority DESC, run_at, id) WHERE status = 'pending';
-- One non-terminal job per unique key; terminal jobs leave the index and free the key.
CREATE UNIQUE INDEX sdj_jobs_unique_key ON sdj_jobs (unique_key)
  WHERE unique_key IS NOT NULL AND status IN ('pending', 'running', 'waiting', 'paused');
-- Lease reaper.
CREATE INDEX sdj_jobs_lease ON sdj_jobs (lease_expires_at) WHERE status = 'running';
-- Timed wake-ups and the fan-out recovery sweep.
CREATE INDEX sdj_jobs_wake ON sdj_jobs (wake_at) WHERE status = 'waiting';
-- Subtree walks (cancel, retry).
CREATE INDEX sdj_jobs_parent ON sdj_jobs (parent_id) WHERE parent_id IS NOT NULL;
-- Fan-out children (sibling cancellation, results).
CREATE INDEX sdj_jobs_fan_out ON sdj_jobs (fan_out_id, fan_out_index) WHERE fan_out_id IS NOT NULL;
-- Counts of settled and paused jobs (pending, running and waiting jobs are counted on the
-- claim, lease and wake indexes). Not an index on every status: each status change would then
-- cost a delete and an insert in it; this one changes once per job, when it finishes.
CREATE INDEX sdj_jobs_done ON sdj_jobs (status, queue) WHERE status NOT IN ('pending', 'running', 'waiting');

CREATE TABLE sdj_steps (
  job_id     TEXT    NOT NULL,
  step_index INTEGER NOT NULL,
  step_name  TEXT    NOT NULL,
  status     TEXT    NOT NULL CHECK (status IN ('completed', 'failed', 'waiting')),
  output     TEXT,
  error      TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (job_id, step_index)
);

CREATE TABLE sdj_fan_outs (
  id          TEXT    NOT NULL PRIMARY KEY,
  parent_id   TEXT    NOT NULL,
  step_index  INTEGER NOT NULL,
  strategy    TEXT    NOT NULL CHECK (strategy IN ('fail-fast', 'collect-all', 'threshold')),
  threshold   REAL,
  total       INTEGER NOT NULL,
  succeeded   INTEGER NOT NULL DEFAULT 0,
  failed      INTEGER NOT NULL DEFAULT 0,
  cancelled   INTEGER NOT NULL DEFAULT 0,
  status      TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
  deadline_at INTEGER,
  created_at  INTEGER NOT NULL,
  decided_at  INTEGER
);

CREATE INDEX sdj_fan_outs_parent ON sdj_fan_outs (parent_id, step_index);

CREATE TABLE sdj_signals (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id      TEXT    NOT NULL,
  name        TEXT    NOT NULL,
  payload     TEXT,
  created_at  INTEGER NOT NULL,
  consumed_at INTEGER
);

CREATE INDEX sdj_signals_job_name ON sdj_signals (job_id, name, seq);

CREATE TABLE sdj_schedules (
  name        TEXT    NOT NULL PRIMARY KEY,
  spec        TEXT    NOT NULL,
  options     TEXT    NOT NULL,
  next_run_at INTEGER NOT NULL,
  last_run_at INTEGER,
  last_job_id TEXT,
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

CREATE INDEX sdj_schedules_due ON sdj_schedules (next_run_at);

CREATE TABLE sdj_queues (
  name       TEXT    NOT NULL PRIMARY KEY,
  paused     INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
  updated_at INTEGER NOT NULL
);
