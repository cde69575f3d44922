-- simple-durable-jobs schema, version 1 (MySQL 8 / MariaDB >= 10.6).
-- MySQL has no transactional DDL: every statement is idempotent (IF NOT EXISTS, indexes
-- declared inline) so a migration interrupted halfway can simply run again. The migrator runs
-- the statements one by one (split on a semicolon at the end of a line) under GET_LOCK and
-- records the ledger row only after all of them succeeded.
-- Times are BIGINT milliseconds since the epoch, UTC. Keys are utf8mb4_bin (byte-exact
-- equality and order); payloads are LONGTEXT, stored byte for byte.

CREATE TABLE IF NOT EXISTS sdj_jobs (
  id VARCHAR(255) NOT NULL,
  type VARCHAR(255) NOT NULL,
  queue VARCHAR(255) NOT NULL,
  status VARCHAR(16) NOT NULL,
  priority INT NOT NULL DEFAULT 0,
  attempt INT NOT NULL DEFAULT 0,
  max_retries INT NOT NULL DEFAULT 0,
  run_count INT NOT NULL DEFAULT 0,
  args LONGTEXT NULL,
  result LONGTEXT NULL,
  meta LONGTEXT NULL,
  last_error LONGTEXT NULL,
  run_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  started_at BIGINT NULL,
  completed_at BIGINT NULL,
  timeout_ms BIGINT NULL,
  unique_key VARCHAR(255) NULL,
  tenant VARCHAR(255) NULL,
  parent_id VARCHAR(255) NULL,
  fan_out_id VARCHAR(255) NULL,
  fan_out_index INT NULL,
  locked_by VARCHAR(255) NULL,
  lease_expires_at BIGINT NULL,
  heartbeat_at BIGINT NULL,
  wake_at BIGINT NULL,
  wait_signal VARCHAR(255) NULL,
  -- The unique key while the job is not terminal, else NULL (NULLs never clash). Binary, so
  -- 'k' and 'k ' stay distinct (utf8mb4_bin pads trailing spaces on MariaDB).
  unique_active VARBINARY(1020) GENERATED ALWAYS AS (
    IF(status IN ('pending', 'running', 'waiting', 'paused'), CAST(unique_key AS BINARY), NULL)
  ) STORED,
  PRIMARY KEY (id),
  UNIQUE KEY sdj_jobs_unique_active (unique_active),
  KEY sdj_jobs_claim (queue, status, priority DESC, run_at, id),
  KEY sdj_jobs_lease (status, lease_expires_at),
  KEY sdj_jobs_wake (status, wake_at),
  KEY sdj_jobs_parent (parent_id),
  KEY sdj_jobs_fan_out (fan_out_id, fan_out_index),
  KEY sdj_jobs_created (created_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sdj_steps (
  job_id VARCHAR(255) NOT NULL,
  step_index INT NOT NULL,
  step_name VARCHAR(512) NOT NULL,
  status VARCHAR(16) NOT NULL,
  output LONGTEXT NULL,
  error LONGTEXT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (job_id, step_index)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sdj_fan_outs (
  id VARCHAR(255) NOT NULL,
  parent_id VARCHAR(255) NOT NULL,
  step_index INT NOT NULL,
  strategy VARCHAR(16) NOT NULL,
  threshold DOUBLE NULL,
  total INT NOT NULL,
  succeeded INT NOT NULL DEFAULT 0,
  failed INT NOT NULL DEFAULT 0,
  cancelled INT NOT NULL DEFAULT 0,
  status VARCHAR(16) NOT NULL,
  deadline_at BIGINT NULL,
  created_at BIGINT NOT NULL,
  decided_at BIGINT NULL,
  PRIMARY KEY (id),
  KEY sdj_fan_outs_parent (parent_id, step_index)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sdj_signals (
  seq BIGINT NOT NULL AUTO_INCREMENT,
  job_id VARCHAR(255) NOT NULL,
  name VARCHAR(255) NOT NULL,
  payload LONGTEXT NULL,
  created_at BIGINT NOT NULL,
  consumed_at BIGINT NULL,
  PRIMARY KEY (seq),
  KEY sdj_signals_job_name (job_id, name, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sdj_schedules (
  name VARCHAR(255) NOT NULL,
  spec LONGTEXT NOT NULL,
  options LONGTEXT NOT NULL,
  next_run_at BIGINT NOT NULL,
  last_run_at BIGINT NULL,
  last_job_id VARCHAR(255) NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (name),
  KEY sdj_schedules_due (next_run_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sdj_queues (
  name VARCHAR(255) NOT NULL,
  paused TINYINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
