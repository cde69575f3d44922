/**
 * The PostgreSQL driver (PostgreSQL >= 12). Claims use `FOR UPDATE SKIP LOCKED` in one
 * statement across queues; enqueues and other wake paths `pg_notify` the schema's channel in
 * their transaction, delivered at commit to `listen()` subscribers; time comes from the
 * database clock (`clock_timestamp()`), unless a `clock` is injected for tests.
 *
 * Limits:
 * - Statements run as named prepared statements: behind a transaction-pooling PgBouncer, use a
 *   version that tracks prepared statements (>= 1.21) or a session pool.
 * - `jobInsertMany({ tx })` runs on the caller's client inside their transaction: a unique-key
 *   clash (`DuplicateJobError`) aborts that transaction, as any failed statement does.
 * - Notifications sent while the listener is reconnecting are lost (workers keep polling).
 * - Each column of a batch travels as one array parameter, so a batch carrying more than 8 M
 *   characters of payload is split into several statements: inserts and outcomes in one
 *   transaction, checkpoints (each independent) one statement per part (see `batch-parts.ts`).
 * @module
 */
import { InvalidArgumentError, StorageClosedError } from '../../errors.js';
import { silentLogger } from '../../internal/logger.js';
import type { JobStatus, Logger } from '../../types.js';
import type {
  Capabilities,
  FanOutRow,
  JobClaimParams,
  JobFinishManyParams,
  JobHeartbeatParams,
  JobInsertManyParams,
  JobListParams,
  JobReleaseParams,
  JobRow,
  JobSuspendFanOutParams,
  JobSuspendParams,
  ReclaimedJob,
  ScheduleFireParams,
  ScheduleRow,
  ScheduleUpsertParams,
  ScheduleUpsertResult,
  SignalConsumeParams,
  SignalConsumeResult,
  StepRecordParams,
  StepRow,
  Storage,
  Unlisten,
} from '../storage.js';
import { createPool, isPgPoolLike, quoteIdent, type PgPoolLike } from './connection.js';
import { PgExec } from './executor.js';
import * as jobs from './job-ops.js';
import { PgListener } from './listener.js';
import { migrate } from './migrate.js';
import { CLOCK_NOW } from './queries/admin.js';
import { toInt } from './rows.js';
import * as run from './run-ops.js';
import * as sched from './schedule-ops.js';
import { translateError } from './translate-error.js';
import * as wf from './workflow-ops.js';

export type { PgPoolClientLike, PgPoolLike } from './connection.js';

/** Options of {@link PostgresStorage}. */
export interface PostgresStorageOptions {
  /** The schema holding the tables (created by `migrate()`). @default 'sdj' */
  schema?: string;
  /** Injected clock (ms) for tests; by default the database clock rules. */
  clock?: () => number;
  /** Where connection trouble is reported. @default silent */
  logger?: Logger;
  /** Pool size when the driver creates the pool from a connection string. @default 10 */
  max?: number;
}

/**
 * Storage on PostgreSQL.
 * @example
 * const storage = new PostgresStorage(process.env.DATABASE_URL!, { schema: 'jobs' });
 * await storage.migrate();
 */
export class PostgresStorage implements Storage {
  /** Always `'postgres'`. */
  readonly dialect = 'postgres' as const;
  /** LISTEN/NOTIFY wake-ups, SKIP LOCKED claims, concurrent writers. */
  readonly capabilities: Capabilities = Object.freeze({ listenNotify: true, skipLocked: true, concurrentWriters: true });
  /** The schema this storage uses. */
  readonly schema: string;

  readonly #x: PgExec;
  readonly #ownsPool: boolean;
  readonly #listener: PgListener;
  readonly #clock: (() => number) | undefined;
  #closed = false;

  /**
   * @param urlOrPool a connection string (the driver creates and owns a `pg.Pool`) or your own
   *   `pg.Pool` (never ended by `close()`)
   * @throws InvalidArgumentError on an invalid schema name, pool size or connection argument
   */
  constructor(urlOrPool: string | PgPoolLike, options: PostgresStorageOptions = {}) {
    const schema = options.schema ?? 'sdj';
    quoteIdent(schema);
    const max = options.max ?? 10;
    if (!Number.isInteger(max) || max < 1) throw new InvalidArgumentError(`max must be an integer >= 1, got ${String(max)}`);
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new InvalidArgumentError('clock must be a function');
    const logger = options.logger ?? silentLogger;
    let pool: PgPoolLike;
    if (typeof urlOrPool === 'string') {
      pool = createPool(urlOrPool, max, (err) => logger.warn('idle PostgreSQL connection failed', { error: err.message }));
      this.#ownsPool = true;
    } else if (isPgPoolLike(urlOrPool)) {
      pool = urlOrPool;
      this.#ownsPool = false;
    } else {
      throw new InvalidArgumentError('PostgresStorage expects a connection string or a pg.Pool');
    }
    this.schema = schema;
    this.#clock = options.clock;
    this.#x = new PgExec(pool, schema, options.clock, logger);
    this.#listener = new PgListener(pool, this.#x.channel, logger);
  }

  /** Runs `fn`, mapping driver errors to library errors; rejects once closed. */
  async #run<T>(fn: (x: PgExec) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StorageClosedError();
    try {
      return await fn(this.#x);
    } catch (e) {
      throw translateError(e);
    }
  }

  /** @inheritdoc */
  migrate(): Promise<void> {
    return this.#run((x) => migrate(x));
  }

  /** Stops the listener and ends the pool if the driver created it. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#listener.close();
    if (this.#ownsPool) await this.#x.pool.end();
  }

  /** @inheritdoc */
  clockNow(): Promise<number> {
    return this.#run(async (x) => {
      if (this.#clock) return Math.floor(this.#clock());
      const r = await x.one<{ now: string }>(CLOCK_NOW);
      return toInt(r?.now ?? 0);
    });
  }

  /** @inheritdoc */
  jobInsertMany(p: JobInsertManyParams): Promise<{ inserted: string[] }> {
    return this.#run((x) => jobs.jobInsertMany(x, p));
  }

  /** @inheritdoc */
  jobGet(p: { id: string }): Promise<JobRow | undefined> {
    return this.#run((x) => jobs.jobGet(x, p));
  }

  /** @inheritdoc */
  jobGetMany(p: { ids: string[] }): Promise<JobRow[]> {
    return this.#run((x) => jobs.jobGetMany(x, p.ids));
  }

  /** @inheritdoc */
  jobList(p: JobListParams): Promise<JobRow[]> {
    return this.#run((x) => jobs.jobList(x, p));
  }

  /** @inheritdoc */
  jobCountByStatus(p: { queue?: string }): Promise<Record<JobStatus, number>> {
    return this.#run((x) => jobs.jobCountByStatus(x, p));
  }

  /** @inheritdoc */
  jobClaim(p: JobClaimParams): Promise<JobRow[]> {
    return this.#run((x) => run.jobClaim(x, p));
  }

  /** @inheritdoc */
  jobFinishMany(p: JobFinishManyParams): Promise<boolean[]> {
    return this.#run((x) => run.jobFinishMany(x, p));
  }

  /** @inheritdoc */
  jobHeartbeat(p: JobHeartbeatParams): Promise<string[]> {
    return this.#run((x) => run.jobHeartbeat(x, p));
  }

  /** @inheritdoc */
  jobRelease(p: JobReleaseParams): Promise<string[]> {
    return this.#run((x) => run.jobRelease(x, p));
  }

  /** @inheritdoc */
  jobReclaimExpired(p: { limit: number }): Promise<ReclaimedJob[]> {
    return this.#run((x) => run.jobReclaimExpired(x, p));
  }

  /** @inheritdoc */
  jobWakeDue(p: { limit: number }): Promise<string[]> {
    return this.#run((x) => run.jobWakeDue(x, p));
  }

  /** @inheritdoc */
  jobCancel(p: { id: string }): Promise<string[]> {
    return this.#run((x) => jobs.jobCancel(x, p));
  }

  /** @inheritdoc */
  jobPause(p: { id: string }): Promise<void> {
    return this.#run((x) => jobs.jobPause(x, p));
  }

  /** @inheritdoc */
  jobResume(p: { id: string }): Promise<void> {
    return this.#run((x) => jobs.jobResume(x, p));
  }

  /** @inheritdoc */
  jobRetry(p: { id: string }): Promise<void> {
    return this.#run((x) => jobs.jobRetry(x, p));
  }

  /** @inheritdoc */
  jobNextRunAt(p: { queues: string[] }): Promise<number | undefined> {
    return this.#run((x) => jobs.jobNextRunAt(x, p));
  }

  /** @inheritdoc */
  queueSetPaused(p: { queue: string; paused: boolean }): Promise<void> {
    return this.#run((x) => jobs.queueSetPaused(x, p));
  }

  /** @inheritdoc */
  queueListPaused(): Promise<string[]> {
    return this.#run((x) => jobs.queueListPaused(x));
  }

  /** @inheritdoc */
  stepList(p: { jobId: string }): Promise<StepRow[]> {
    return this.#run((x) => wf.stepList(x, p));
  }

  /** @inheritdoc */
  stepRecord(p: StepRecordParams): Promise<boolean> {
    return this.#run((x) => wf.stepRecord(x, p));
  }

  /** @inheritdoc */
  stepRecordMany(p: { items: StepRecordParams[] }): Promise<boolean[]> {
    return this.#run((x) => wf.stepRecordMany(x, p.items));
  }

  /** @inheritdoc */
  jobSuspendFanOut(p: JobSuspendFanOutParams): Promise<boolean> {
    return this.#run((x) => wf.jobSuspendFanOut(x, p));
  }

  /** @inheritdoc */
  jobSuspend(p: JobSuspendParams): Promise<boolean> {
    return this.#run((x) => wf.jobSuspend(x, p));
  }

  /** @inheritdoc */
  fanOutGet(p: { id: string }): Promise<FanOutRow | undefined> {
    return this.#run((x) => wf.fanOutGet(x, p));
  }

  /** @inheritdoc */
  fanOutExpire(p: { id: string }): Promise<boolean> {
    return this.#run((x) => wf.fanOutExpire(x, p));
  }

  /** @inheritdoc */
  signalSend(p: { jobId: string; name: string; payloadJson: string | null }): Promise<void> {
    return this.#run((x) => wf.signalSend(x, p));
  }

  /** @inheritdoc */
  signalConsumeOrWait(p: SignalConsumeParams): Promise<SignalConsumeResult> {
    return this.#run((x) => wf.signalConsumeOrWait(x, p));
  }

  /** @inheritdoc */
  scheduleUpsert(p: ScheduleUpsertParams): Promise<ScheduleUpsertResult> {
    return this.#run((x) => sched.scheduleUpsert(x, p));
  }

  /** @inheritdoc */
  scheduleDelete(p: { name: string }): Promise<boolean> {
    return this.#run((x) => sched.scheduleDelete(x, p));
  }

  /** @inheritdoc */
  scheduleList(): Promise<ScheduleRow[]> {
    return this.#run((x) => sched.scheduleList(x));
  }

  /** @inheritdoc */
  scheduleListDue(p: { limit: number }): Promise<ScheduleRow[]> {
    return this.#run((x) => sched.scheduleListDue(x, p));
  }

  /** @inheritdoc */
  scheduleFire(p: ScheduleFireParams): Promise<string[] | null> {
    return this.#run((x) => sched.scheduleFire(x, p));
  }

  /** @inheritdoc */
  listen(onWake: (queue: string) => void): Promise<Unlisten> {
    return this.#run(() => this.#listener.subscribe(onWake));
  }
}
