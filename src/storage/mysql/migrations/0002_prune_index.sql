-- simple-durable-jobs schema, version 2 (MySQL 8 / MariaDB >= 10.6): retention.
-- `jobPrune` looks for finished roots by status and completion time, oldest first:
-- `status = ? AND lease_expires_at IS NULL AND parent_id IS NULL AND completed_at < ?` in
-- (completed_at, id) order, which this index answers as one range per status (InnoDB appends the
-- primary key, id, to every secondary index). A finished job never holds a lease: every
-- statement that ends a job clears lease_expires_at in the same write that sets its status and
-- completed_at, and only a running job gets one.
-- The index replaces `sdj_jobs_lease (status, lease_expires_at)`, its prefix, which serves the
-- reclaim of expired leases (`status = 'running' AND lease_expires_at < ?`, read in index order).
-- So a job's entry changes exactly when that index's did: at the claim (a status and a lease),
-- at each heartbeat (a lease) and at the finish (a status, no lease, a completion time). The
-- prune adds no entry change to any job; its price is wider entries. An index led by parent_id
-- would change at every finish, and one that holds status without leading with it would change
-- at every claim too. `sdj_jobs_parent` stays as it is for the lookups by parent.
-- MySQL 8 has no `ADD INDEX IF NOT EXISTS`, so the change is one ALTER TABLE (atomic: both
-- indexes change or neither) run only when the new index is missing, which keeps the migration
-- safe to run again after an interruption. Both index changes are in-place and let writes go on
-- while the index builds (the old index serves reclaims until the new one replaces it).
SET @sdj_ddl = IF(
  (SELECT COUNT(*) FROM information_schema.statistics
    WHERE table_schema = DATABASE() AND table_name = 'sdj_jobs' AND index_name = 'sdj_jobs_prune') = 0,
  'ALTER TABLE sdj_jobs ADD INDEX sdj_jobs_prune (status, lease_expires_at, parent_id, completed_at), DROP INDEX sdj_jobs_lease',
  'SELECT 1');
PREPARE sdj_ddl FROM @sdj_ddl;
EXECUTE sdj_ddl;
DEALLOCATE PREPARE sdj_ddl;
