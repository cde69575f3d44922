-- simple-durable-jobs: fleet events (`queue.events({ fleet: true })`). A bounded change feed of
-- the job events every process relays while some subscriber listens, the feed's head counter,
-- and the subscribers' presence rows.

-- The change feed. `id` is the feed position: dense and increasing in commit order (appends take
-- their ids from `sdj_event_head` inside their write transaction), so a reader that has seen
-- every id up to N and then reads N + k knows that k - 1 events were pruned before it read them.
-- `at` is when the event was stored (ms, storage clock); `payload` is the event as JSON text.
-- Pruned by age (through `sdj_events_at`) and by count (an id range).
CREATE TABLE sdj_events (
  id      INTEGER NOT NULL PRIMARY KEY,
  at      INTEGER NOT NULL,
  type    TEXT    NOT NULL,
  job_id  TEXT,
  origin  TEXT    NOT NULL,
  payload TEXT    NOT NULL
);
CREATE INDEX sdj_events_at ON sdj_events (at);

-- The newest id ever given to an event (0: none yet). One row; it survives pruning, so ids are
-- never given twice.
CREATE TABLE sdj_event_head (
  singleton INTEGER NOT NULL PRIMARY KEY CHECK (singleton = 1),
  last_id   INTEGER NOT NULL
);
INSERT INTO sdj_event_head (singleton, last_id) VALUES (1, 0);

-- One row per listening fleet subscriber, renewed by its beat; relays write only while a row
-- whose expiry has not passed exists. Expired rows are deleted by the next beat of any subscriber.
CREATE TABLE sdj_event_subscribers (
  id         TEXT    NOT NULL PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sdj_event_subscribers_expires ON sdj_event_subscribers (expires_at);
