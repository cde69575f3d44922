-- simple-durable-jobs: bounded counts for the operator's views (`queue.stats({ cap })`,
-- `queue.queues({ cap })`, the dashboard). A count of one status, of one queue or of all,
-- reads at most cap + 1 entries of an index holding exactly that status's rows; two statuses
-- had no such index keyed by queue.

-- Failed and cancelled jobs by status, queue and id: one range per (status) or (status, queue)
-- for a capped count, a skip scan for the queues that have failed jobs (one probe per queue), and
-- a listing of one queue's failed jobs in id order. Like `sdj_jobs_history_failed`, a job that
-- completes never enters it, nor does a claim; a job that fails or is cancelled adds one entry.
CREATE INDEX sdj_jobs_history_failed_queue ON :SCHEMA.sdj_jobs_history (status, queue, id)
  WHERE status IN ('failed', 'cancelled');

-- Jobs paused one by one (`pauseJob`), by queue and id. A job enters it when an operator pauses
-- it and leaves it when resumed or cancelled; enqueues, claims and finishes only evaluate its
-- condition, and it adds no column to those a heartbeat or progress update must leave alone to
-- stay a HOT update (queue, id and status are in other indexes of the partition already).
CREATE INDEX sdj_jobs_live_paused ON :SCHEMA.sdj_jobs_live (queue, id) WHERE status = 'paused';
