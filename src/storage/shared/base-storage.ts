/**
 * The storage facade, implemented once. A driver extends {@link BaseStorage} with its dialect,
 * its transaction handle type, an operations table ({@link StorageOps}: one function per `Storage` method, same
 * name, taking the driver's context and the method's params) and its `translateError`; the base
 * class adds, around every call:
 * - the closed check (`StorageClosedError` once `close()` began);
 * - the empty-batch short-circuits, answered without touching the database: `jobInsertMany`
 *   with no jobs (and no caller transaction), `jobGetMany` with no ids, `jobFinishMany`,
 *   `stepRecordMany`, `jobProgressMany` with no items, `jobHeartbeat`, `jobRelease` with no runs, `jobRetryMany`,
 *   `jobDeleteMany` with no ids, `jobClaim` with
 *   no queues, and `jobReclaimExpired`, `jobWakeDue`, `jobPrune`,
 *   `scheduleListDue` with a limit below 1;
 * - error translation (driver errors become the library's typed errors) and a `debug` log entry
 *   naming the failed operation.
 *
 * Hot path: an operation that returns a value synchronously (SQLite runs each transaction as one
 * synchronous call) settles as an `async` method returning it would; one that returns a promise
 * gets one rejection handler attached. No statement, no timer and no extra `await` are added.
 *
 * Internal to the storage layer (not exported from the package entry points). Its declarations
 * carry no JSDoc internal tag on purpose: the public driver classes extend {@link BaseStorage}, so it
 * and the types its signature names must stay in the published declaration files.
 */
import { type DurableJobsError, StorageClosedError } from '../../errors.js';
import { checkProgressItems } from './progress-items.js';
import { checkEventAppend, checkEventBeat, checkEventPrune, checkEventRead, checkEventSubscriberId } from './event-params.js';
import { silentLogger } from '../../internal/logger.js';
import type { JobStatus, Logger } from '../../types.js';
import type {
  BulkResult,
  Dialect,
  EventAppendManyParams,
  EventPruneParams,
  EventReadAfterParams,
  EventRow,
  EventSubscriberBeatParams,
  EventSubscriberBeatResult,
  FanOutCollected,
  FanOutRow,
  JobClaimLimitedParams,
  JobClaimLimitedResult,
  JobClaimParams,
  JobFilter,
  JobFinishManyParams,
  JobHeartbeatParams,
  JobInsertManyParams,
  JobProgressManyParams,
  JobListParams,
  JobListScanParams,
  JobListScanResult,
  JobPruneParams,
  JobPruneResult,
  JobReleaseParams,
  JobRow,
  JobSuspendFanOutParams,
  JobSuspendParams,
  JobSuspendUntilParams,
  JobSuspendUntilResult,
  LimitRow,
  LimitScope,
  LimitSetParams,
  LimitUsageRow,
  PatchSummaryRow,
  QueueSummaryRow,
  ReclaimedJob,
  ScheduleFireParams,
  ScheduleRow,
  ScheduleUpsertParams,
  ScheduleUpsertResult,
  SignalConsumeParams,
  SignalConsumeResult,
  SignalRow,
  StepPatchSummaryParams,
  StepRecordParams,
  StepRow,
  Storage,
  WorkerBeatParams,
  WorkerRow,
} from '../storage.js';
import { STORAGE_OPERATION_FAILED } from './contract-messages.js';
import { isPromiseLike, type MaybePromise } from './maybe-async.js';

/** The `Storage` methods a driver implements through its operations table. */
export type StorageOpName = Exclude<keyof Storage, 'dialect' | 'close' | 'listen' | 'eventListen' | 'dataVersion'>;

/** The params object of a `Storage` method (`undefined` for methods without one). */
export type StorageOpParams<K extends StorageOpName, Tx = unknown> = Parameters<NonNullable<Storage<Tx>[K]>>[0];

/** The resolved result of a `Storage` method. */
export type StorageOpResult<K extends StorageOpName> = Awaited<ReturnType<NonNullable<Storage[K]>>>;

/**
 * A driver's operations: for each `Storage` method, a function of the same name taking the
 * driver's context `C` and the method's params, returning the result (synchronously or as a
 * promise); called as plain functions (no `this`). Driver errors may escape them: the base
 * class translates them.
 */
export type StorageOps<C, Tx = unknown> = {
  readonly [K in StorageOpName]-?: (ctx: C, p: StorageOpParams<K, Tx>) => MaybePromise<StorageOpResult<K>>;
};

/** Every operation name, checked complete against `Storage` by the compiler. */
const OPERATION_NAMES: Record<StorageOpName, true> = {
  migrate: true,
  clockNow: true,
  jobInsertMany: true,
  jobGet: true,
  jobGetMany: true,
  jobList: true,
  jobListScan: true,
  jobCountByStatus: true,
  jobCountByStatusCapped: true,
  jobClaim: true,
  jobClaimLimited: true,
  limitSet: true,
  limitDelete: true,
  limitList: true,
  limitUsage: true,
  jobFinishMany: true,
  jobHeartbeat: true,
  jobProgressMany: true,
  jobRelease: true,
  jobReclaimExpired: true,
  jobWakeDue: true,
  jobCancel: true,
  jobPause: true,
  jobResume: true,
  jobRetry: true,
  jobRetryMany: true,
  jobDeleteMany: true,
  jobPrune: true,
  queueSetPaused: true,
  queueSummary: true,
  queueSummaryCapped: true,
  workerBeat: true,
  workerList: true,
  workerRemove: true,
  eventAppendMany: true,
  eventReadAfter: true,
  eventPrune: true,
  eventSubscriberBeat: true,
  eventSubscribersActive: true,
  eventSubscriberRemove: true,
  jobCount: true,
  stepList: true,
  stepRecord: true,
  stepRecordMany: true,
  stepPatchSummary: true,
  jobSuspendFanOut: true,
  jobSuspend: true,
  jobSuspendUntil: true,
  fanOutGet: true,
  fanOutExpire: true,
  fanOutCollect: true,
  signalSend: true,
  signalList: true,
  signalConsumeOrWait: true,
  scheduleUpsert: true,
  scheduleDelete: true,
  scheduleList: true,
  scheduleListDue: true,
  scheduleFire: true,
};

/**
 * A driver's operations table, picked by name from its operation modules, where each `Storage`
 * method is the exported function of the same name:
 * `operationsFrom({ migrate, ...jobOps, ...runOps, ...workflowOps, ...scheduleOps })`. The
 * compiler checks that every method is there with the right signature; other exports of the
 * modules are left out.
 */
export function operationsFrom<C, Tx>(modules: StorageOps<C, Tx>): StorageOps<C, Tx> {
  const table: Record<string, unknown> = {};
  for (const name of Object.keys(OPERATION_NAMES)) table[name] = (modules as unknown as Record<string, unknown>)[name];
  return Object.freeze(table) as unknown as StorageOps<C, Tx>;
}

/** The facade every driver shares; see the module header. */
export abstract class BaseStorage<C, Tx = unknown> implements Storage<Tx> {
  /** The driver's SQL dialect. */
  abstract readonly dialect: Dialect;

  readonly #ops: StorageOps<C, Tx>;
  readonly #ctx: C;
  readonly #logger: Logger;
  #closed = false;

  /**
   * @param ops the driver's operations table
   * @param ctx what every operation receives (connections, statement cache, clock)
   * @param logger receives a `debug` entry per failed operation @default silent
   */
  protected constructor(ops: StorageOps<C, Tx>, ctx: C, logger: Logger = silentLogger) {
    this.#ops = ops;
    this.#ctx = ctx;
    this.#logger = logger;
  }

  /** Maps a driver error (anything an operation threw) to the library's typed error. */
  protected abstract translateError(e: unknown, op: string): MaybePromise<DurableJobsError>;

  /** Releases what the driver opened; called once, by the first `close()`. */
  protected abstract closeResources(): Promise<void>;

  /** True once `close()` began. */
  protected get closed(): boolean {
    return this.#closed;
  }

  /**
   * Runs `fn(ctx)` as operation `op`: closed check, then error translation and logging. For
   * driver-specific methods (`listen`, `dataVersion`) and for the table's operations.
   */
  protected call<T>(op: string, fn: (ctx: C) => MaybePromise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new StorageClosedError());
    let out: MaybePromise<T>;
    try {
      out = fn(this.#ctx);
    } catch (e) {
      return this.#fail(op, e);
    }
    return isPromiseLike(out) ? Promise.resolve(out).then(undefined, (e: unknown) => this.#fail(op, e)) : Promise.resolve(out);
  }

  /** Runs the table's operation `op` with `p`. */
  protected run<K extends StorageOpName>(op: K, p: StorageOpParams<K, Tx>): Promise<StorageOpResult<K>> {
    const fn = this.#ops[op] as (ctx: C, p: StorageOpParams<K, Tx>) => MaybePromise<StorageOpResult<K>>;
    return this.call(op, (ctx) => fn(ctx, p));
  }

  /** Translates, logs and rejects. */
  #fail(op: string, e: unknown): Promise<never> {
    const reject = (err: unknown): Promise<never> => {
      const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
      const error = err instanceof Error ? err.message : String(err);
      this.#logger.debug(STORAGE_OPERATION_FAILED, { dialect: this.dialect, op, code, error });
      return Promise.reject(err);
    };
    let translated: MaybePromise<DurableJobsError>;
    try {
      translated = this.translateError(e, op);
    } catch (err) {
      return reject(err);
    }
    return isPromiseLike(translated) ? Promise.resolve(translated).then(reject, reject) : reject(translated);
  }

  /** True when a call with nothing to do may be answered at once (a closed storage rejects every call). */
  #skip(nothingToDo: boolean): boolean {
    return nothingToDo && !this.#closed;
  }

  /** Closes the storage; later calls reject with `StorageClosedError`. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.closeResources();
  }

  /** @inheritdoc */
  migrate(): Promise<void> {
    return this.run('migrate', undefined);
  }

  /** @inheritdoc */
  clockNow(): Promise<number> {
    return this.run('clockNow', undefined);
  }

  /** @inheritdoc */
  jobInsertMany(p: JobInsertManyParams<Tx>): Promise<{ inserted: string[]; ids: (string | null)[] }> {
    // A caller transaction still goes to the driver, which validates it.
    if (this.#skip(p.jobs.length === 0 && (p.tx === undefined || p.tx === null))) return Promise.resolve({ inserted: [], ids: [] });
    return this.run('jobInsertMany', p);
  }

  /** @inheritdoc */
  jobGet(p: { id: string }): Promise<JobRow | undefined> {
    return this.run('jobGet', p);
  }

  /** @inheritdoc */
  jobGetMany(p: { ids: string[] }): Promise<JobRow[]> {
    if (this.#skip(p.ids.length === 0)) return Promise.resolve<JobRow[]>([]);
    return this.run('jobGetMany', p);
  }

  /** @inheritdoc */
  jobList(p: JobListParams): Promise<JobRow[]> {
    return this.run('jobList', p);
  }

  /** @inheritdoc */
  jobListScan(p: JobListScanParams): Promise<JobListScanResult> {
    return this.run('jobListScan', p);
  }

  /** @inheritdoc */
  jobCount(p: JobFilter): Promise<number> {
    return this.run('jobCount', p);
  }

  /** @inheritdoc */
  jobCountByStatus(p: { queue?: string }): Promise<Record<JobStatus, number>> {
    return this.run('jobCountByStatus', p);
  }

  /** @inheritdoc */
  jobCountByStatusCapped(p: { cap: number; queue?: string }): Promise<Record<JobStatus, number>> {
    return this.run('jobCountByStatusCapped', p);
  }

  /** @inheritdoc */
  jobClaim(p: JobClaimParams): Promise<JobRow[]> {
    if (this.#skip(p.queues.length === 0)) return Promise.resolve<JobRow[]>([]);
    return this.run('jobClaim', p);
  }

  /** @inheritdoc */
  jobClaimLimited(p: JobClaimLimitedParams): Promise<JobClaimLimitedResult> {
    if (this.#skip(p.queues.length === 0)) return Promise.resolve({ rows: [], retryInMs: null, saturated: false });
    return this.run('jobClaimLimited', p);
  }

  /** @inheritdoc */
  jobFinishMany(p: JobFinishManyParams): Promise<(number | null)[]> {
    if (this.#skip(p.items.length === 0)) return Promise.resolve<(number | null)[]>([]);
    return this.run('jobFinishMany', p);
  }

  /** @inheritdoc */
  jobHeartbeat(p: JobHeartbeatParams): Promise<string[]> {
    if (this.#skip(p.runs.length === 0)) return Promise.resolve<string[]>([]);
    return this.run('jobHeartbeat', p);
  }

  /** @inheritdoc */
  jobProgressMany(p: JobProgressManyParams): Promise<(number | null)[]> {
    if (this.#skip(p.items.length === 0)) return Promise.resolve<(number | null)[]>([]);
    // Bad input is refused before the driver sees it, the same way on every dialect.
    const bad = checkProgressItems(p.items);
    if (bad !== undefined) return Promise.reject(bad);
    return this.run('jobProgressMany', p);
  }

  /** @inheritdoc */
  jobRelease(p: JobReleaseParams): Promise<string[]> {
    if (this.#skip(p.runs.length === 0)) return Promise.resolve<string[]>([]);
    return this.run('jobRelease', p);
  }

  /** @inheritdoc */
  jobReclaimExpired(p: { limit: number }): Promise<ReclaimedJob[]> {
    if (this.#skip(p.limit < 1)) return Promise.resolve<ReclaimedJob[]>([]);
    return this.run('jobReclaimExpired', p);
  }

  /** @inheritdoc */
  jobWakeDue(p: { limit: number }): Promise<string[]> {
    if (this.#skip(p.limit < 1)) return Promise.resolve<string[]>([]);
    return this.run('jobWakeDue', p);
  }

  /** @inheritdoc */
  jobCancel(p: { id: string }): Promise<string[]> {
    return this.run('jobCancel', p);
  }

  /** @inheritdoc */
  jobPause(p: { id: string }): Promise<void> {
    return this.run('jobPause', p);
  }

  /** @inheritdoc */
  jobResume(p: { id: string }): Promise<void> {
    return this.run('jobResume', p);
  }

  /** @inheritdoc */
  jobRetry(p: { id: string; fromFailedStep?: boolean }): Promise<void> {
    return this.run('jobRetry', p);
  }

  /** @inheritdoc */
  jobRetryMany(p: { ids: string[] }): Promise<BulkResult> {
    if (this.#skip(p.ids.length === 0)) return Promise.resolve<BulkResult>({ done: [], skipped: [] });
    return this.run('jobRetryMany', p);
  }

  /** @inheritdoc */
  jobDeleteMany(p: { ids: string[] }): Promise<BulkResult> {
    if (this.#skip(p.ids.length === 0)) return Promise.resolve<BulkResult>({ done: [], skipped: [] });
    return this.run('jobDeleteMany', p);
  }

  /** @inheritdoc */
  jobPrune(p: JobPruneParams): Promise<JobPruneResult> {
    if (this.#skip(p.limit === 0)) return Promise.resolve<JobPruneResult>({ deleted: 0, roots: 0, busy: false });
    return this.run('jobPrune', p);
  }

  /** @inheritdoc */
  queueSetPaused(p: { queue: string; paused: boolean }): Promise<void> {
    return this.run('queueSetPaused', p);
  }

  /** @inheritdoc */
  limitSet(p: LimitSetParams): Promise<void> {
    return this.run('limitSet', p);
  }

  /** @inheritdoc */
  limitDelete(p: { scope: LimitScope; name: string }): Promise<boolean> {
    return this.run('limitDelete', p);
  }

  /** @inheritdoc */
  limitList(): Promise<LimitRow[]> {
    return this.run('limitList', undefined);
  }

  /** @inheritdoc */
  limitUsage(): Promise<LimitUsageRow[]> {
    return this.run('limitUsage', undefined);
  }

  /** @inheritdoc */
  queueSummary(): Promise<QueueSummaryRow[]> {
    return this.run('queueSummary', undefined);
  }

  /** @inheritdoc */
  queueSummaryCapped(p: { cap: number }): Promise<QueueSummaryRow[]> {
    return this.run('queueSummaryCapped', p);
  }

  /** @inheritdoc */
  workerBeat(p: WorkerBeatParams): Promise<void> {
    return this.run('workerBeat', p);
  }

  /** @inheritdoc */
  workerList(): Promise<WorkerRow[]> {
    return this.run('workerList', undefined);
  }

  /** @inheritdoc */
  workerRemove(p: { id: string }): Promise<void> {
    return this.run('workerRemove', p);
  }

  /** @inheritdoc */
  eventAppendMany(p: EventAppendManyParams): Promise<number[]> {
    if (this.#skip(p.events.length === 0)) return Promise.resolve<number[]>([]);
    return this.#checked(checkEventAppend(p.events), () => this.run('eventAppendMany', p));
  }

  /** @inheritdoc */
  eventReadAfter(p: EventReadAfterParams): Promise<EventRow[]> {
    return this.#checked(checkEventRead(p), () => this.run('eventReadAfter', p));
  }

  /** @inheritdoc */
  eventPrune(p: EventPruneParams): Promise<number> {
    return this.#checked(checkEventPrune(p), () => this.run('eventPrune', p));
  }

  /** @inheritdoc */
  eventSubscriberBeat(p: EventSubscriberBeatParams): Promise<EventSubscriberBeatResult> {
    return this.#checked(checkEventBeat(p), () => this.run('eventSubscriberBeat', p));
  }

  /** @inheritdoc */
  eventSubscribersActive(): Promise<number> {
    return this.run('eventSubscribersActive', undefined);
  }

  /** @inheritdoc */
  eventSubscriberRemove(p: { id: string }): Promise<void> {
    return this.#checked(checkEventSubscriberId(p.id), () => this.run('eventSubscriberRemove', p));
  }

  /** Rejects with `bad` (bad input: nothing is written; a closed storage still says so first), else runs `fn`. */
  #checked<T>(bad: Error | undefined, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new StorageClosedError());
    return bad === undefined ? fn() : Promise.reject(bad);
  }

  /** @inheritdoc */
  stepList(p: { jobId: string; withTimes?: boolean; afterIndex?: number; limit?: number }): Promise<StepRow[]> {
    const rows = this.run('stepList', p);
    if (p.withTimes === true) return rows;
    return rows.then((list) =>
      list.map((r) => {
        if (r.createdAt === undefined) return r;
        const { createdAt: _, ...rest } = r;
        return rest;
      }),
    );
  }

  /** @inheritdoc */
  stepRecord(p: StepRecordParams): Promise<boolean> {
    return this.run('stepRecord', p);
  }

  /** @inheritdoc */
  stepRecordMany(p: { items: StepRecordParams[] }): Promise<boolean[]> {
    if (this.#skip(p.items.length === 0)) return Promise.resolve<boolean[]>([]);
    return this.run('stepRecordMany', p);
  }

  /** @inheritdoc */
  stepPatchSummary(p: StepPatchSummaryParams): Promise<PatchSummaryRow[]> {
    return this.run('stepPatchSummary', p);
  }

  /** @inheritdoc */
  jobSuspendFanOut(p: JobSuspendFanOutParams): Promise<boolean> {
    return this.run('jobSuspendFanOut', p);
  }

  /** @inheritdoc */
  jobSuspend(p: JobSuspendParams): Promise<boolean> {
    return this.run('jobSuspend', p);
  }

  /** @inheritdoc */
  jobSuspendUntil(p: JobSuspendUntilParams): Promise<JobSuspendUntilResult> {
    return this.run('jobSuspendUntil', p);
  }

  /** @inheritdoc */
  fanOutGet(p: { id: string }): Promise<FanOutRow | undefined> {
    return this.run('fanOutGet', p);
  }

  /** @inheritdoc */
  fanOutExpire(p: { id: string }): Promise<boolean> {
    return this.run('fanOutExpire', p);
  }

  /** @inheritdoc */
  fanOutCollect(p: { id: string }): Promise<FanOutCollected | undefined> {
    return this.run('fanOutCollect', p);
  }

  /** @inheritdoc */
  signalSend(p: { jobId: string; name: string; payloadJson: string | null }): Promise<void> {
    return this.run('signalSend', p);
  }

  /** @inheritdoc */
  signalList(p: { jobId: string; limit: number; afterSeq?: number }): Promise<SignalRow[]> {
    return this.run('signalList', p);
  }

  /** @inheritdoc */
  signalConsumeOrWait(p: SignalConsumeParams): Promise<SignalConsumeResult> {
    return this.run('signalConsumeOrWait', p);
  }

  /** @inheritdoc */
  scheduleUpsert(p: ScheduleUpsertParams): Promise<ScheduleUpsertResult> {
    return this.run('scheduleUpsert', p);
  }

  /** @inheritdoc */
  scheduleDelete(p: { name: string }): Promise<boolean> {
    return this.run('scheduleDelete', p);
  }

  /** @inheritdoc */
  scheduleList(): Promise<ScheduleRow[]> {
    return this.run('scheduleList', undefined);
  }

  /** @inheritdoc */
  scheduleListDue(p: { limit: number }): Promise<ScheduleRow[]> {
    if (this.#skip(p.limit < 1)) return Promise.resolve<ScheduleRow[]>([]);
    return this.run('scheduleListDue', p);
  }

  /** @inheritdoc */
  scheduleFire(p: ScheduleFireParams): Promise<string[] | null> {
    return this.run('scheduleFire', p);
  }
}
