/**
 * `MysqlStorage`: the storage driver for MySQL 8 and MariaDB >= 10.6 (both have
 * `FOR UPDATE SKIP LOCKED`, recursive CTEs and indexed generated columns).
 *
 * Known limits:
 * - No cross-process wake-ups (`capabilities.listenNotify` is false): workers of other
 *   processes find new jobs by polling.
 * - Values are bound with mysql2 `?` placeholders, which the client escapes. A server running
 *   with `sql_mode = NO_BACKSLASH_ESCAPES` is not supported.
 * - A single payload must fit the server's `max_allowed_packet` (16 MiB by default on MariaDB,
 *   64 MiB on MySQL). Job inserts are split into statements of at most about 4 MiB of payload;
 *   outcome batches (`jobFinishMany`) into statements of at most half the server's
 *   `max_allowed_packet` (read once per storage, and only for a batch over 1 MiB; at most
 *   16 MiB each), all in one transaction.
 * - Times are BIGINT ms (UTC) computed with `UTC_TIMESTAMP(6)`, so the session and server
 *   `time_zone` do not matter.
 * @module
 */
import { type DurableJobsError, PayloadTooLargeError, StorageClosedError } from '../../errors.js';
import { silentLogger } from '../../internal/logger.js';
import type { JobStatus, Logger } from '../../types.js';
import type {
  Capabilities,
  Dialect,
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
} from '../storage.js';
import { MysqlDb, type MysqlPoolLike, type MysqlPromisable, isPacketTooLarge, refusedStatementBytes, select } from './connection.js';
import type { DriverContext } from './driver-context.js';
import * as jobs from './job-ops.js';
import { migrate } from './migrate.js';
import { CLOCK_NOW } from './queries/admin.js';
import { num } from './rows.js';
import * as runOps from './run-ops.js';
import * as sched from './schedule-ops.js';
import { packetLimitOf } from './statement-budget.js';
import { translateError } from './translate-error.js';
import * as wf from './workflow-ops.js';

/** The structural mysql2 types the driver accepts (see `connection.ts`). */
export type { MysqlConnectionLike, MysqlPoolConnectionLike, MysqlPoolLike, MysqlQueryOptions } from './connection.js';


/** Options of {@link MysqlStorage}. */
export interface MysqlStorageOptions {
  /** A clock (ms) replacing the database clock, for tests. */
  clock?: () => number;
  /** Where the driver logs; silent by default. */
  logger?: Logger;
  /** Size of the pool the driver creates from a connection string. @default 10 */
  connectionLimit?: number;
}

/**
 * The MySQL 8 / MariaDB >= 10.6 storage driver.
 * @example
 * const storage = new MysqlStorage('mysql://user:pass@127.0.0.1:3306/app');
 * await storage.migrate();
 */
export class MysqlStorage implements Storage {
  /** Always `'mysql'`. */
  readonly dialect: Dialect = 'mysql';
  /** Claims skip locked rows; many processes may write at once; no LISTEN/NOTIFY. */
  readonly capabilities: Capabilities = Object.freeze({ listenNotify: false, skipLocked: true, concurrentWriters: true });

  readonly #db: MysqlDb;
  readonly #ctx: DriverContext;
  readonly #logger: Logger;
  #closed = false;

  /**
   * @param urlOrPool a `mysql://` URL naming the database (the driver then creates and owns a
   *   mysql2 pool), or your own `mysql2/promise` pool (or callback pool), which `close()` leaves open.
   * @param options clock, logger and pool size
   */
  constructor(urlOrPool: string | MysqlPoolLike | MysqlPromisable<MysqlPoolLike>, options: MysqlStorageOptions = {}) {
    this.#db = new MysqlDb(urlOrPool, options.connectionLimit === undefined ? {} : { connectionLimit: options.connectionLimit });
    const clock = options.clock;
    this.#ctx = { db: this.#db, now: clock ? () => Math.floor(clock()) : () => null };
    this.#logger = options.logger ?? silentLogger;
  }

  async #run<T>(op: string, fn: (ctx: DriverContext) => Promise<T>): Promise<T> {
    if (this.#closed) throw new StorageClosedError();
    try {
      return await fn(this.#ctx);
    } catch (e) {
      if (isPacketTooLarge(e)) throw await this.#packetTooLarge(op, e);
      const err = translateError(e);
      if (err.code === 'STORAGE') this.#logger.debug('mysql storage operation failed', { op, error: err.message });
      throw err;
    }
  }

  /**
   * The typed error of a statement the server refused as longer than its `max_allowed_packet`:
   * `PayloadTooLargeError` naming the statement's estimated size and the server's limit (a
   * `StorageError` when the limit cannot be read).
   */
  async #packetTooLarge(op: string, e: unknown): Promise<DurableJobsError> {
    try {
      const limit = await packetLimitOf(this.#db, this.#db.pool);
      const bytes = Math.max(refusedStatementBytes(e) ?? 0, limit + 1); // escaping can grow the text past the estimate
      this.#logger.debug('mysql storage operation refused: statement over max_allowed_packet', { op, bytes, limit });
      return new PayloadTooLargeError(`the ${op} statement (over the server's max_allowed_packet)`, bytes, limit);
    } catch {
      return translateError(e);
    }
  }

  migrate(): Promise<void> {
    return this.#run('migrate', migrate);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#db.end();
  }

  clockNow(): Promise<number> {
    return this.#run('clockNow', async (ctx) => {
      const fixed = ctx.now();
      if (fixed !== null) return fixed;
      const [row] = await select(ctx.db.pool, CLOCK_NOW, [null]);
      return num(row?.['now_ms']);
    });
  }

  jobInsertMany(p: JobInsertManyParams): Promise<{ inserted: string[] }> {
    return this.#run('jobInsertMany', (ctx) => jobs.jobInsertMany(ctx, p));
  }

  jobGet(p: { id: string }): Promise<JobRow | undefined> {
    return this.#run('jobGet', (ctx) => jobs.jobGet(ctx, p.id));
  }

  jobGetMany(p: { ids: string[] }): Promise<JobRow[]> {
    return this.#run('jobGetMany', (ctx) => jobs.jobGetMany(ctx, p.ids));
  }

  jobList(p: JobListParams): Promise<JobRow[]> {
    return this.#run('jobList', (ctx) => jobs.jobList(ctx, p));
  }

  jobCountByStatus(p: { queue?: string }): Promise<Record<JobStatus, number>> {
    return this.#run('jobCountByStatus', (ctx) => jobs.jobCountByStatus(ctx, p));
  }

  jobClaim(p: JobClaimParams): Promise<JobRow[]> {
    return this.#run('jobClaim', (ctx) => runOps.jobClaim(ctx, p));
  }

  jobFinishMany(p: JobFinishManyParams): Promise<boolean[]> {
    return this.#run('jobFinishMany', (ctx) => runOps.jobFinishMany(ctx, p.items));
  }

  jobHeartbeat(p: JobHeartbeatParams): Promise<string[]> {
    return this.#run('jobHeartbeat', (ctx) => runOps.jobHeartbeat(ctx, p));
  }

  jobRelease(p: JobReleaseParams): Promise<string[]> {
    return this.#run('jobRelease', (ctx) => runOps.jobRelease(ctx, p));
  }

  jobReclaimExpired(p: { limit: number }): Promise<ReclaimedJob[]> {
    return this.#run('jobReclaimExpired', (ctx) => runOps.jobReclaimExpired(ctx, p));
  }

  jobWakeDue(p: { limit: number }): Promise<string[]> {
    return this.#run('jobWakeDue', (ctx) => runOps.jobWakeDue(ctx, p));
  }

  jobCancel(p: { id: string }): Promise<string[]> {
    return this.#run('jobCancel', (ctx) => jobs.jobCancel(ctx, p.id));
  }

  jobPause(p: { id: string }): Promise<void> {
    return this.#run('jobPause', (ctx) => jobs.jobPause(ctx, p.id));
  }

  jobResume(p: { id: string }): Promise<void> {
    return this.#run('jobResume', (ctx) => jobs.jobResume(ctx, p.id));
  }

  jobRetry(p: { id: string }): Promise<void> {
    return this.#run('jobRetry', (ctx) => jobs.jobRetry(ctx, p.id));
  }

  jobNextRunAt(p: { queues: string[] }): Promise<number | undefined> {
    return this.#run('jobNextRunAt', (ctx) => jobs.jobNextRunAt(ctx, p));
  }

  queueSetPaused(p: { queue: string; paused: boolean }): Promise<void> {
    return this.#run('queueSetPaused', (ctx) => jobs.queueSetPaused(ctx, p));
  }

  queueListPaused(): Promise<string[]> {
    return this.#run('queueListPaused', (ctx) => jobs.queueListPaused(ctx));
  }

  stepList(p: { jobId: string }): Promise<StepRow[]> {
    return this.#run('stepList', (ctx) => wf.stepList(ctx, p.jobId));
  }

  stepRecord(p: StepRecordParams): Promise<boolean> {
    return this.#run('stepRecord', (ctx) => wf.stepRecord(ctx, p));
  }

  jobSuspendFanOut(p: JobSuspendFanOutParams): Promise<boolean> {
    return this.#run('jobSuspendFanOut', (ctx) => wf.jobSuspendFanOut(ctx, p));
  }

  jobSuspend(p: JobSuspendParams): Promise<boolean> {
    return this.#run('jobSuspend', (ctx) => wf.jobSuspend(ctx, p));
  }

  fanOutGet(p: { id: string }): Promise<FanOutRow | undefined> {
    return this.#run('fanOutGet', (ctx) => wf.fanOutGet(ctx, p.id));
  }

  fanOutExpire(p: { id: string }): Promise<boolean> {
    return this.#run('fanOutExpire', (ctx) => wf.fanOutExpire(ctx, p.id));
  }

  signalSend(p: { jobId: string; name: string; payloadJson: string | null }): Promise<void> {
    return this.#run('signalSend', (ctx) => wf.signalSend(ctx, p));
  }

  signalConsumeOrWait(p: SignalConsumeParams): Promise<SignalConsumeResult> {
    return this.#run('signalConsumeOrWait', (ctx) => wf.signalConsumeOrWait(ctx, p));
  }

  scheduleUpsert(p: ScheduleUpsertParams): Promise<ScheduleUpsertResult> {
    return this.#run('scheduleUpsert', (ctx) => sched.scheduleUpsert(ctx, p));
  }

  scheduleDelete(p: { name: string }): Promise<boolean> {
    return this.#run('scheduleDelete', (ctx) => sched.scheduleDelete(ctx, p.name));
  }

  scheduleList(): Promise<ScheduleRow[]> {
    return this.#run('scheduleList', (ctx) => sched.scheduleList(ctx));
  }

  scheduleListDue(p: { limit: number }): Promise<ScheduleRow[]> {
    return this.#run('scheduleListDue', (ctx) => sched.scheduleListDue(ctx, p));
  }

  scheduleFire(p: ScheduleFireParams): Promise<string[] | null> {
    return this.#run('scheduleFire', (ctx) => sched.scheduleFire(ctx, p));
  }
}
