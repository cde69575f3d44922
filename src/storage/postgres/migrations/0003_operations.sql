-- simple-durable-jobs: the operator tools. A registry of running workers, and an index that
-- lists failed and cancelled jobs newest first and counts failed jobs per queue without reading
-- completed ones.

-- One row per running worker, refreshed by its heartbeat; a row whose expiry has passed is
-- no longer listed, and the next beat of any worker deletes it. `queues` is a JSON array of
-- names (text, like every payload).
CREATE TABLE :SCHEMA.sdj_workers (
  id           text    NOT NULL PRIMARY KEY,
  name         text    NOT NULL,
  host         text    NOT NULL,
  pid          bigint  NOT NULL,
  queues       text    NOT NULL,
  running      integer NOT NULL,
  started_at   bigint  NOT NULL,
  last_seen_at bigint  NOT NULL,
  expires_at   bigint  NOT NULL
);
CREATE INDEX sdj_workers_expires ON :SCHEMA.sdj_workers (expires_at);

-- Failed and cancelled jobs in id (creation) order, carrying their status and queue: a
-- listing of failed jobs walks it newest first instead of every finished row, and the queue
-- summary counts failed jobs per queue from it alone (an index-only scan once vacuum has
-- marked the pages visible). A job that completes never enters it, and neither does a claim;
-- a job that fails or is cancelled adds one entry.
CREATE INDEX sdj_jobs_history_failed ON :SCHEMA.sdj_jobs_history (id) INCLUDE (status, queue)
  WHERE status IN ('failed', 'cancelled');
