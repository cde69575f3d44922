-- simple-durable-jobs schema, version 3 (MySQL 8 / MariaDB >= 10.6): the operator tools.
-- A registry of running workers. One row per worker, refreshed by its heartbeat; a row whose
-- expiry has passed is no longer listed, and the next beat of any worker deletes it (through
-- `sdj_workers_expires`). `queues` is a JSON array of names (text, like every payload).
-- No index is added to `sdj_jobs`: MySQL/MariaDB have no partial indexes, and every index
-- holding `status` changes its entry at each claim and each finish. Listings walk the primary
-- key (or `sdj_jobs_parent`) in id order, so a listing of a rare status reads the rows between
-- its matches; the queue summary reads one range of `sdj_jobs_wake` (status, wake_at) per live
-- or failed status, which never reaches completed or cancelled rows.
CREATE TABLE IF NOT EXISTS sdj_workers (
  id VARCHAR(255) NOT NULL,
  name TEXT NOT NULL,
  host TEXT NOT NULL,
  pid BIGINT NOT NULL,
  queues LONGTEXT NOT NULL,
  running INT NOT NULL,
  started_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY sdj_workers_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
