/**
 * The SQLite storage driver, on `better-sqlite3`.
 *
 * How it works: `better-sqlite3` is synchronous, so every method runs its whole state change as
 * one synchronous `BEGIN IMMEDIATE` transaction and never holds a transaction across an `await`.
 * Several `SqliteStorage` instances — in one process or in many — can therefore share one
 * database file: writers serialize on the file lock (WAL mode, `busy_timeout`, default 5 s),
 * readers never block. Statements are prepared once per instance.
 *
 * Known limits:
 * - Writes serialize (`capabilities.concurrentWriters = false`); there is no LISTEN/NOTIFY:
 *   workers learn about other processes' writes by reading `PRAGMA data_version` (`dataVersion()`,
 *   a shared-memory read) every few milliseconds, and claim when it moved.
 * - Durability: `synchronous = NORMAL` in WAL mode (set on connections the driver opens). A
 *   commit is in the WAL before the call returns, so it survives the crash of any process; only
 *   an OS crash or power loss can roll back the last commits (`FULL` would fsync every commit).
 * - The clock is the host's (`Date.now()`, or the injected `clock`): processes sharing a file
 *   must have reasonably synchronized clocks.
 * - `':memory:'` databases are private to one connection: use a file to share jobs between
 *   instances.
 * - `jobInsertMany({ tx })` (enqueue inside your own transaction) takes your `better-sqlite3`
 *   `Database`, which must be open on the same database file. The inserts run on it directly
 *   (in a savepoint when your transaction is open). `better-sqlite3` transactions are
 *   synchronous: call `enqueue` inside the transaction function without awaiting in between —
 *   the inserts happen before `enqueue` first yields. Do not call other storage methods of a
 *   storage opened on a *different* connection while your write transaction is open: that
 *   connection would wait for your lock synchronously until `busy_timeout`, then fail.
 * @module
 */
import { resolve } from 'node:path';
import { InvalidArgumentError, StorageClosedError } from '../../errors.js';
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
} from '../storage.js';
import { isSqliteDatabaseLike, openDatabase, type SqliteDatabaseLike, type SqliteTransactionLike } from './connection.js';
import {
  insertJobs,
  jobCancel,
  jobCountByStatus,
  jobGet,
  jobGetMany,
  jobList,
  jobNextRunAt,
  jobPause,
  jobResume,
  jobRetry,
  queueListPaused,
  queueSetPaused,
} from './job-ops.js';
import { migrate } from './migrate.js';
import { MIGRATIONS } from './migrations.generated.js';
import { jobClaim, jobFinishMany, jobHeartbeat, jobReclaimExpired, jobRelease, jobWakeDue } from './run-ops.js';
import { scheduleDelete, scheduleFire, scheduleList, scheduleListDue, scheduleUpsert } from './schedule-ops.js';
import { StatementCache, type Statements } from './statements.js';
import { translateError } from './translate-error.js';
import {
  fanOutExpire,
  fanOutGet,
  jobSuspend,
  jobSuspendFanOut,
  signalConsumeOrWait,
  signalSend,
  stepList,
  stepRecord,
  stepRecordMany,
} from './workflow-ops.js';

export type { SqliteDatabaseLike } from './connection.js';

/** Options of {@link SqliteStorage}. */
export interface SqliteStorageOptions {
  /** The clock (ms since the epoch) leases and run-at compare against. @default Date.now */
  clock?: () => number;
  /**
   * How long a write waits for another connection's lock before failing (ms). Applied to
   * connections the driver opens, and to a passed-in `Database` only when given explicitly.
   * @default 5000
   */
  busyTimeoutMs?: number;
  /** Receives migration notices. Silent by default. */
  logger?: Logger;
}

type Body = () => unknown;

/**
 * Storage on SQLite through `better-sqlite3` (loaded lazily, only when given a path).
 * @example
 * const storage = new SqliteStorage('jobs.db'); // or ':memory:', or a better-sqlite3 Database
 * await storage.migrate();
 */
export class SqliteStorage implements Storage {
  /** Always `'sqlite'`. */
  readonly dialect = 'sqlite' as const;
  /** No LISTEN/NOTIFY, no SKIP LOCKED, writes serialize on the file lock. */
  readonly capabilities: Capabilities = Object.freeze({ listenNotify: false, skipLocked: false, concurrentWriters: false });

  readonly #db: SqliteDatabaseLike;
  readonly #owned: boolean;
  readonly #stmts: StatementCache;
  readonly #tx: SqliteTransactionLike<[Body], unknown>;
  readonly #clock: () => number;
  readonly #logger: Logger | undefined;
  /** Statement caches and transaction runners for user connections passed as `tx`. */
  readonly #foreign = new WeakMap<SqliteDatabaseLike, { stmts: StatementCache; tx: SqliteTransactionLike<[Body], unknown> }>();
  #closed = false;

  /**
   * @param pathOrDb a file path, `':memory:'`, or a `better-sqlite3` `Database` (never closed by us)
   * @param options clock, busy timeout, logger
   * @throws InvalidArgumentError, StorageError (better-sqlite3 missing, file cannot be opened)
   */
  constructor(pathOrDb: string | SqliteDatabaseLike, options: SqliteStorageOptions = {}) {
    const opened = openDatabase(pathOrDb, options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs });
    this.#db = opened.db;
    this.#owned = opened.owned;
    this.#stmts = new StatementCache(this.#db);
    this.#tx = this.#db.transaction((fn: Body) => fn());
    this.#clock = options.clock ?? Date.now;
    this.#logger = options.logger;
  }

  /** Creates or upgrades the schema (BEGIN IMMEDIATE serializes concurrent callers). @throws SchemaTooNewError */
  async migrate(): Promise<void> {
    this.#check();
    try {
      migrate(this.#db, MIGRATIONS, () => this.#now(), this.#logger);
    } catch (e) {
      throw translateError(e);
    }
  }

  /** Closes the connection if this instance opened it. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stmts.clear();
    if (this.#owned && this.#db.open) this.#db.close();
  }

  /** The host clock (or the injected one), in integer ms. */
  async clockNow(): Promise<number> {
    this.#check();
    return this.#now();
  }

  /** Inserts jobs atomically. @throws DuplicateJobError */
  async jobInsertMany(p: JobInsertManyParams): Promise<{ inserted: string[] }> {
    const onConflict = p.onConflict ?? 'error';
    if (p.tx !== undefined && p.tx !== null && p.tx !== this.#db) {
      this.#check();
      const { stmts, tx } = this.#foreignConnection(p.tx);
      try {
        return { inserted: tx.immediate(() => insertJobs(stmts, this.#now(), p.jobs, onConflict)) as string[] };
      } catch (e) {
        throw translateError(e);
      }
    }
    if (p.jobs.length === 0) return { inserted: [] };
    return { inserted: this.#write((c, now) => insertJobs(c, now, p.jobs, onConflict)) };
  }

  /** One job by id. */
  async jobGet(p: { id: string }): Promise<JobRow | undefined> {
    return this.#read((c) => jobGet(c, p.id));
  }

  /** Jobs by id (ids not found left out, each job once). */
  async jobGetMany(p: { ids: string[] }): Promise<JobRow[]> {
    return this.#read((c) => jobGetMany(c, p.ids));
  }

  /** Jobs matching filters. */
  async jobList(p: JobListParams): Promise<JobRow[]> {
    return this.#read((c) => jobList(c, p));
  }

  /** Job counts by status. */
  async jobCountByStatus(p: { queue?: string }): Promise<Record<JobStatus, number>> {
    return this.#read((c) => jobCountByStatus(c, p.queue));
  }

  /** Claims ready jobs for every queue in one transaction. */
  async jobClaim(p: JobClaimParams): Promise<JobRow[]> {
    return this.#write((c, now) => jobClaim(c, now, p));
  }

  /** Applies fenced run outcomes in one transaction. */
  async jobFinishMany(p: JobFinishManyParams): Promise<boolean[]> {
    if (p.items.length === 0) return [];
    return this.#write((c, now) => jobFinishMany(c, now, p.items));
  }

  /** Extends the leases of held runs. */
  async jobHeartbeat(p: JobHeartbeatParams): Promise<string[]> {
    if (p.runs.length === 0) return [];
    return this.#write((c, now) => jobHeartbeat(c, now, p));
  }

  /** Gives runs back to pending without consuming the attempt. */
  async jobRelease(p: JobReleaseParams): Promise<string[]> {
    if (p.runs.length === 0) return [];
    return this.#write((c) => jobRelease(c, p.runs));
  }

  /** Takes back running jobs whose lease expired. */
  async jobReclaimExpired(p: { limit: number }): Promise<ReclaimedJob[]> {
    return this.#write((c, now) => jobReclaimExpired(c, now, p.limit));
  }

  /** Wakes due waiting jobs and parents of decided fan-outs. */
  async jobWakeDue(p: { limit: number }): Promise<string[]> {
    return this.#write((c, now) => jobWakeDue(c, now, p.limit));
  }

  /** Cancels a job and its subtree. @throws JobNotFoundError */
  async jobCancel(p: { id: string }): Promise<string[]> {
    return this.#write((c, now) => jobCancel(c, now, p.id));
  }

  /** pending → paused. @throws JobNotFoundError, InvalidStateError */
  async jobPause(p: { id: string }): Promise<void> {
    this.#write((c) => jobPause(c, p.id));
  }

  /** paused → pending. @throws JobNotFoundError, InvalidStateError */
  async jobResume(p: { id: string }): Promise<void> {
    this.#write((c) => jobResume(c, p.id));
  }

  /** failed/cancelled → pending, dropping checkpoints and the fan-out subtree. @throws JobNotFoundError, InvalidStateError */
  async jobRetry(p: { id: string }): Promise<void> {
    this.#write((c, now) => jobRetry(c, now, p.id));
  }

  /** Earliest run_at among pending jobs of these queues (paused queues excluded). */
  async jobNextRunAt(p: { queues: string[] }): Promise<number | undefined> {
    return this.#read((c) => jobNextRunAt(c, p.queues));
  }

  /** Marks a queue paused or not. */
  async queueSetPaused(p: { queue: string; paused: boolean }): Promise<void> {
    this.#write((c, now) => queueSetPaused(c, now, p.queue, p.paused));
  }

  /** Names of paused queues. */
  async queueListPaused(): Promise<string[]> {
    return this.#read((c) => queueListPaused(c));
  }

  /** Every checkpoint of a job. */
  async stepList(p: { jobId: string }): Promise<StepRow[]> {
    return this.#read((c) => stepList(c, p.jobId));
  }

  /** Fenced checkpoint insert. */
  async stepRecord(p: StepRecordParams): Promise<boolean> {
    return this.#write((c, now) => stepRecord(c, now, p.fence, p.step));
  }

  /** Many fenced checkpoint inserts in one transaction. */
  async stepRecordMany(p: { items: StepRecordParams[] }): Promise<boolean[]> {
    if (p.items.length === 0) return [];
    return this.#write((c, now) => stepRecordMany(c, now, p.items));
  }

  /** Fenced fan-out suspension. */
  async jobSuspendFanOut(p: JobSuspendFanOutParams): Promise<boolean> {
    return this.#write((c, now) => jobSuspendFanOut(c, now, p));
  }

  /** Fenced suspension (sleep and/or signal wait). */
  async jobSuspend(p: JobSuspendParams): Promise<boolean> {
    return this.#write((c, now) => jobSuspend(c, now, p));
  }

  /** One fan-out by id. */
  async fanOutGet(p: { id: string }): Promise<FanOutRow | undefined> {
    return this.#read((c) => fanOutGet(c, p.id));
  }

  /** Fails a running fan-out whose deadline passed. */
  async fanOutExpire(p: { id: string }): Promise<boolean> {
    return this.#write((c, now) => fanOutExpire(c, now, p.id));
  }

  /** Buffers a signal and wakes a job waiting for it. @throws JobNotFoundError, InvalidStateError */
  async signalSend(p: { jobId: string; name: string; payloadJson: string | null }): Promise<void> {
    this.#write((c, now) => signalSend(c, now, p));
  }

  /** Fenced consume-or-wait of a signal. */
  async signalConsumeOrWait(p: SignalConsumeParams): Promise<SignalConsumeResult> {
    return this.#write((c, now) => signalConsumeOrWait(c, now, p));
  }

  /** Creates or replaces a schedule (the decision against the stored row is taken in one transaction). */
  async scheduleUpsert(p: ScheduleUpsertParams): Promise<ScheduleUpsertResult> {
    return this.#write((c, now) => scheduleUpsert(c, now, p));
  }

  /** Removes a schedule. */
  async scheduleDelete(p: { name: string }): Promise<boolean> {
    return this.#write((c) => scheduleDelete(c, p.name));
  }

  /** Every schedule, by name. */
  async scheduleList(): Promise<ScheduleRow[]> {
    return this.#read((c) => scheduleList(c));
  }

  /** Schedules due now. */
  async scheduleListDue(p: { limit: number }): Promise<ScheduleRow[]> {
    return this.#read((c) => scheduleListDue(c, this.#now(), p.limit));
  }

  /** Compare-and-set fire of one schedule slot. */
  async scheduleFire(p: ScheduleFireParams): Promise<string[] | null> {
    return this.#write((c, now) => scheduleFire(c, now, p));
  }

  /** `PRAGMA data_version`: changes when another connection committed (cross-process wake-ups). */
  async dataVersion(): Promise<number> {
    return this.#read(() => Number(this.#db.pragma('data_version', { simple: true })));
  }

  #check(): void {
    if (this.#closed) throw new StorageClosedError();
  }

  #now(): number {
    return Math.floor(this.#clock());
  }

  /** Runs `fn` in one BEGIN IMMEDIATE transaction; `now` is read once the lock is held. */
  #write<T>(fn: (c: Statements, now: number) => T): T {
    this.#check();
    try {
      return this.#tx.immediate(() => fn(this.#stmts, this.#now())) as T;
    } catch (e) {
      throw translateError(e);
    }
  }

  /** Runs a read (single statements, autocommit). */
  #read<T>(fn: (c: Statements) => T): T {
    this.#check();
    try {
      return fn(this.#stmts);
    } catch (e) {
      throw translateError(e);
    }
  }

  /** Statements and a transaction runner on a user connection passed as `tx`. */
  #foreignConnection(tx: unknown): { stmts: StatementCache; tx: SqliteTransactionLike<[Body], unknown> } {
    if (!isSqliteDatabaseLike(tx)) {
      throw new InvalidArgumentError('SqliteStorage: transaction must be the better-sqlite3 Database your transaction runs on');
    }
    if (!tx.memory && !this.#db.memory && resolve(tx.name) !== resolve(this.#db.name)) {
      throw new InvalidArgumentError(`SqliteStorage: the transaction's database (${tx.name}) is not this storage's file (${this.#db.name})`);
    }
    let entry = this.#foreign.get(tx);
    if (entry === undefined) {
      entry = { stmts: new StatementCache(tx), tx: tx.transaction((fn: Body) => fn()) };
      this.#foreign.set(tx, entry);
    }
    return entry;
  }
}
