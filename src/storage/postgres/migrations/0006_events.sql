-- simple-durable-jobs: fleet events (`queue.events({ fleet: true })`). A bounded change feed of
-- the job events every process relays while some subscriber listens, the feed's head counter,
-- and the subscribers' presence rows.

-- The change feed. `id` is the feed position: dense and increasing in commit order. An append
-- takes its ids by updating the one `sdj_event_head` row in the same statement, so appends
-- serialize on that row until they commit and a reader never sees id N + 1 before id N: a reader
-- that has seen every id up to N and then reads N + k knows that k - 1 events were pruned before
-- it read them. `at` is when the event was stored (ms, database clock); `payload` is the event as
-- JSON text (text, not jsonb: an escaped NUL is kept as written). Pruned by age (through
-- `sdj_events_at`) and by count (an id range).
CREATE TABLE :SCHEMA.sdj_events (
  id      bigint NOT NULL PRIMARY KEY,
  at      bigint NOT NULL,
  type    text   NOT NULL,
  job_id  text,
  origin  text   NOT NULL,
  payload text   NOT NULL
);
CREATE INDEX sdj_events_at ON :SCHEMA.sdj_events (at);

-- The newest id ever given to an event (0: none yet). One row; it survives pruning, so ids are
-- never given twice.
CREATE TABLE :SCHEMA.sdj_event_head (
  singleton integer NOT NULL PRIMARY KEY CHECK (singleton = 1),
  last_id   bigint  NOT NULL
);
INSERT INTO :SCHEMA.sdj_event_head (singleton, last_id) VALUES (1, 0);

-- One row per listening fleet subscriber, renewed by its beat; relays write only while a row
-- whose expiry has not passed exists. Expired rows are deleted by the next beat of any subscriber.
CREATE TABLE :SCHEMA.sdj_event_subscribers (
  id         text   NOT NULL PRIMARY KEY,
  expires_at bigint NOT NULL
);
CREATE INDEX sdj_event_subscribers_expires ON :SCHEMA.sdj_event_subscribers (expires_at);
