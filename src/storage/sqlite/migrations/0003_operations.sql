-- simple-durable-jobs: the operator tools. A registry of running workers, and an index that
-- lists failed and cancelled jobs newest first.

-- One row per running worker, refreshed by its heartbeat; a row whose expiry has passed is no
-- longer listed, and the next beat of any worker deletes it (through `sdj_workers_expires`).
-- `queues` is a JSON array of names (text, like every payload).
CREATE TABLE sdj_workers (
  id           TEXT    NOT NULL PRIMARY KEY,
  name         TEXT    NOT NULL,
  host         TEXT    NOT NULL,
  pid          INTEGER NOT NULL,
  queues       TEXT    NOT NULL,
  running      INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL
);
CREATE INDEX sdj_workers_expires ON sdj_workers (expires_at);

-- Failed and cancelled jobs by status, then id (creation order): a listing of failed jobs walks
-- it newest first instead of every finished row. Partial: a job enters it once, when it fails
-- or is cancelled, and leaves it when retried or deleted; claims and completions never touch it
-- (they only evaluate its condition).
CREATE INDEX sdj_jobs_failed ON sdj_jobs (status, id) WHERE status IN ('failed', 'cancelled');
