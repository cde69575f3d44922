/**
 * simple-durable-jobs: durable background jobs and checkpointed workflows on SQLite,
 * PostgreSQL or MySQL/MariaDB. This file is the whole public surface.
 * @module
 */

/** @group Storage drivers */
export { SqliteStorage, type SqliteStorageOptions, type SqliteDatabaseLike } from './storage/sqlite/sqlite-storage.js';
export { PostgresStorage, type PostgresStorageOptions, type PgPoolLike, type PgQueryableLike } from './storage/postgres/postgres-storage.js';
export { MysqlStorage, type MysqlStorageOptions, type MysqlPoolLike, type MysqlTransaction } from './storage/mysql/mysql-storage.js';
export type { Storage, Dialect } from './storage/storage.js';

/** @group Queue */
export { Queue, type QueueOptions, type WaitForJobOptions } from './queue/queue.js';
export type { RunMiddleware, RunInfo, StepMiddleware, StepCallInfo, EnqueueMiddleware, EnqueueRequest, EnqueueSource } from './core/middleware.js';
export type { EventStreamOptions, JobHook, JobErrorHook, ReclaimHook, Unsubscribe } from './core/events.js';
export type { FleetEventStreamOptions } from './core/fleet-stream.js';
export type { ScheduleOptions, ScheduleInfo } from './queue/schedule-types.js';
export type {
  JobFilterOptions,
  ListJobsOptions,
  JobPage,
  StepInfo,
  SignalInfo,
  GetSignalsOptions,
  GetStepsOptions,
  BulkOptions,
  BulkProgress,
  BulkOutcome,
  RetryJobOptions,
  QueueInfo,
  WorkerInfo,
} from './queue/operator-types.js';
export type { PatchStatus, PatchStatusOptions } from './queue/patch-status.js';

/** @group Payload codecs */
export { encryptedCodec, type EncryptedCodec, type EncryptedCodecOptions } from './core/encrypted-codec.js';
export { composeCodecs, type PayloadCodec } from './core/payload-codec.js';
export { encodedPayloadCodec } from './storage/codec.js';

/** @group Flow control */
export type {
  RegisterOptions,
  ConcurrencyLimitOptions,
  RateLimitOptions,
  RateLimit,
  QueueLimits,
  QueueLimitInfo,
  LimitInfo,
} from './flow-types.js';

/** @group Worker */
export { Worker, type WorkerOptions } from './worker/worker.js';
export type { BackoffFn } from './worker/retry-policy.js';

/** @group Workflows */
export { sub, values, partition, allSucceeded } from './workflow/fan-out.js';
export type {
  Handler,
  JobContext,
  JobDefinition,
  SubJob,
  SubJobOptions,
  FanOutOptions,
  FanOutResult,
  FanOutStrategy,
  WaitForSignalOptions,
} from './workflow/job-context.js';

/** @group Schedules */
export { every, daily, weekly, cron, type Schedule } from './scheduler/schedules.js';

/** @group Errors */
export {
  DurableJobsError,
  InvalidArgumentError,
  SerializationError,
  PayloadTooLargeError,
  DuplicateJobError,
  JobNotFoundError,
  InvalidStateError,
  UnknownJobTypeError,
  DeterminismError,
  JobTimeoutError,
  JobCancelledError,
  LeaseLostError,
  RunSuspendedError,
  WaitTimeoutError,
  FanOutFailedError,
  SchemaTooNewError,
  StorageError,
  StorageClosedError,
  InvalidScheduleError,
  CodecError,
  PayloadOpaqueError,
  NoRetryError,
  RetryAfterError,
  noRetry,
  retryAfter,
  isDurableJobsError,
  type ErrorCode,
} from './errors.js';

/** @group Logging */
export { pinoLogger, type PinoLike, type PinoLogFn } from './core/pino-logger.js';

/** @group Types */
export { JOB_STATUSES, TERMINAL_STATUSES } from './types.js';
export type {
  Job,
  JobProgress,
  JobStatus,
  JobCounts,
  JobEvent,
  JobEventType,
  FleetEvent,
  FleetGapEvent,
  FleetJobEvent,
  EnqueueOptions,
  DebounceOptions,
  BatchItem,
  QueueWorkerOptions,
  RetentionOptions,
  PruneOptions,
  JsonValue,
  Logger,
  LogLevel,
} from './types.js';
