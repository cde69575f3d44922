-- simple-durable-jobs schema, version 6 (MySQL 8 / MariaDB >= 10.6): fleet events
-- (`queue.events({ fleet: true })`). A bounded change feed of the job events every process relays
-- while some subscriber listens, the feed's head counter, and the subscribers' presence rows.
-- Every statement is safe to run again after an interruption (DDL is not transactional here).

-- The change feed. `id` is the feed position: dense and increasing in commit order. An append
-- takes its ids by updating the one `sdj_event_head` row first in its transaction, so appends
-- serialize on that row lock until they commit and a reader never sees id N + 1 before id N: a
-- reader that has seen every id up to N and then reads N + k knows that k - 1 events were pruned
-- before it read them. `at` is when the event was stored (ms, database clock); `payload` is the
-- event as JSON text. Pruned by age (through `sdj_events_at`) and by count (an id range).
CREATE TABLE IF NOT EXISTS sdj_events (
  id BIGINT NOT NULL,
  at BIGINT NOT NULL,
  type VARCHAR(64) NOT NULL,
  job_id VARCHAR(255) NULL,
  origin VARCHAR(255) NOT NULL,
  payload LONGTEXT NOT NULL,
  PRIMARY KEY (id),
  KEY sdj_events_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The newest id ever given to an event (0: none yet). One row; it survives pruning, so ids are
-- never given twice.
CREATE TABLE IF NOT EXISTS sdj_event_head (
  singleton INT NOT NULL,
  last_id BIGINT NOT NULL,
  PRIMARY KEY (singleton)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO sdj_event_head (singleton, last_id) VALUES (1, 0);

-- One row per listening fleet subscriber, renewed by its beat; relays write only while a row
-- whose expiry has not passed exists. Expired rows are deleted by the next beat of any subscriber.
CREATE TABLE IF NOT EXISTS sdj_event_subscribers (
  id VARCHAR(255) NOT NULL,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY sdj_event_subscribers_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
