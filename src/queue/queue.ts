/**
 * `Queue`: the producer-side facade — register handlers, enqueue, inspect, operate,
 * observe, and create workers. Thin: validation lives in `enqueue.ts`/`validate.ts`,
 * state changes in the storage driver.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { IdGenerator } from '../internal/ids.js';
import { silentLogger } from '../internal/logger.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, encodeJson } from '../storage/codec.js';
import type { JobInsert, Storage } from '../storage/storage.js';
import { JOB_STATUSES } from '../types.js';
import type { BatchItem, EnqueueOptions, FleetEvent, Job, JobCounts, JobEvent, JobStatus, Logger, PruneOptions, RetentionOptions, WaitForJobOptions } from '../types.js';
import type { Handler, JobDefinition } from '../workflow/job-context.js';
import { Worker, type WorkerOptions } from '../worker/worker.js';
import type { QueueCore } from '../core/queue-core.js';
import { buildJobInsert, conflictMode } from '../core/enqueue.js';
import { checkRegisterOptions, type TypeFlow } from '../core/flow.js';
import type { LimitInfo, QueueLimits, RegisterOptions } from '../flow-types.js';
import { listLimits, setQueueLimits } from './limits.js';
import { EventHub, type EventStreamOptions, type JobErrorHook, type JobHook, type ReclaimHook, type Unsubscribe } from '../core/events.js';
import { EventRelay } from '../core/fleet-relay.js';
import { FleetStream, type FleetEventStreamOptions } from '../core/fleet-stream.js';
import { withCodec } from '../core/codec-storage.js';
import { checkCodec, type PayloadCodec } from '../core/payload-codec.js';
import { checkRetention, pruneAges, pruneAll, retentionOf } from '../core/retention.js';
import { checkInt, checkJobType, checkLogger, checkName, checkOptions, checkQueueName, MAX_PAYLOAD_LIMIT, MAX_RETRIES } from '../core/validate.js';
import * as ops from './operations.js';
import { bulkAction, deleteJob } from './bulk.js';
import { listQueues, listWorkers } from './fleet.js';
import { getSignals, getSteps, listedJob, listJobs } from './listing.js';
import type { BulkOptions, BulkOutcome, GetSignalsOptions, GetStepsOptions, JobFilterOptions, JobPage, ListJobsOptions, QueueInfo, RetryJobOptions, SignalInfo, StepInfo, WorkerInfo } from './operator-types.js';
import { patchStatus, type PatchStatus, type PatchStatusOptions } from './patch-status.js';
import { waitForJob } from './wait-for-job.js';
import { enqueueBatchThrough, enqueueOneThrough } from './enqueue-middleware.js';
import type { EnqueueMiddleware, MiddlewareLists, RunMiddleware, StepMiddleware } from '../core/middleware.js';
import { ScheduleManager } from './schedule-api.js';
import type { ScheduleInfo, ScheduleOptions } from './schedule-types.js';
import type { Schedule } from '../scheduler/schedules.js';

/** Options of `new Queue(storage, options)`. */
export interface QueueOptions {
  /** Structured logger (an object with `debug`, `info`, `warn` and `error`); silent by default. */
  logger?: Logger;
  /** Largest encoded args/result/meta/signal payload, in bytes: an integer from 1 to 268435456 (256 MiB). @default 1048576 (1 MiB) */
  maxPayloadBytes?: number;
  /** Retries of a job enqueued without `retries`: an integer from 0 to 10000. @default 3 */
  defaultRetries?: number;
  /**
   * How long finished jobs are kept after their `completedAt` (ms, per status; `false` for a
   * status keeps it forever), or `false` to keep every finished job. Until its age has passed a
   * finished job stays readable (`getJob`, `waitForJob`, its steps); then workers' maintenance
   * (or `queue.prune()`) deletes it with its checkpoints, signals and fan-outs — a workflow
   * only as a whole, once every job in it has passed its own status's age. Pruning is
   * database-wide with the ages of the queue that prunes: give every `Queue` on one database the
   * same retention. See docs/retention.md.
   * @default { completed: 7 days, failed: 30 days, cancelled: 30 days }
   * @example
   * new Queue(storage, { retention: { completed: 24 * 3600_000, failed: false } }); // completed 1 day, failed forever, cancelled 30 days
   */
  retention?: RetentionOptions | false;
  /**
   * Encodes every stored payload — args, results, checkpoint outputs, signal payloads, error
   * texts, progress messages, fleet events, schedule options — at the storage boundary, e.g.
   * `encryptedCodec({ key, previousKeys })`. Give every process on the database the same codec.
   * `maxPayloadBytes` applies to the payload before encoding. See docs/encryption.md.
   * @default none (payloads stored as JSON text)
   */
  codec?: PayloadCodec;
}

export type { WaitForJobOptions } from '../types.js';

/**
 * The entry point: a queue bound to one storage.
 * @example
 * const queue = new Queue(new SqliteStorage('jobs.db'));
 * await queue.storage.migrate();
 * const sendEmail = queue.register('send-email', async (args: { to: string }) => { ... });
 * await sendEmail.enqueue({ to: 'a@example.com' });
 * await queue.newWorker().start();
 */
export class Queue<Tx = unknown> {
  readonly #core: QueueCore;
  readonly #storage: Storage<Tx>;
  readonly #schedules: ScheduleManager;

  /**
   * @param storage a migrated storage driver @param options logger and limits
   * @throws InvalidArgumentError on a missing storage or an invalid option (nothing is built)
   */
  constructor(storage: Storage<Tx>, options: QueueOptions = {}) {
    if (storage === null || typeof storage !== 'object' || typeof storage.jobInsertMany !== 'function') {
      throw new InvalidArgumentError('Queue needs a storage (SqliteStorage, PostgresStorage or MysqlStorage)');
    }
    const o = checkOptions<QueueOptions>(options, 'queue options', ['logger', 'maxPayloadBytes', 'defaultRetries', 'retention', 'codec']);
    const logger = o.logger === undefined ? silentLogger : checkLogger(o.logger);
    const retries = o.defaultRetries === undefined ? 3 : checkInt(o.defaultRetries, 'defaultRetries', 0, MAX_RETRIES);
    const maxPayloadBytes = o.maxPayloadBytes === undefined ? DEFAULT_MAX_PAYLOAD_BYTES : checkInt(o.maxPayloadBytes, 'maxPayloadBytes', 1, MAX_PAYLOAD_LIMIT);
    const retention = checkRetention(o.retention);
    // Only a queue with a codec goes through the codec's view of the storage.
    if (o.codec !== undefined) storage = withCodec(storage, checkCodec(o.codec));
    const flows = new Map<string, TypeFlow>();
    const hub = new EventHub(logger);
    const core: QueueCore = {
      storage,
      handlers: new Map(),
      flows,
      hub,
      relay: new EventRelay(storage, hub, logger),
      logger,
      ids: new IdGenerator(),
      defaults: {
        retries,
        queue: 'default',
        maxPayloadBytes,
        flows,
      },
      wakers: new Set(),
      retention,
      middleware: { run: [], step: [], enqueue: [] },
    };
    this.#core = core;
    this.#storage = storage;
    this.#schedules = new ScheduleManager(core);
  }

  /** The storage this queue writes to (seen through `QueueOptions.codec`, when given). */
  get storage(): Storage<Tx> {
    return this.#storage;
  }

  /**
   * Registers the handler of a job type (replacing any previous registration) and returns a
   * typed definition. `options` gives the type fleet-wide limits: a worker of this queue stores
   * them when it starts (and removes stored limits of a type registered without any), and the
   * key functions compute the keys of jobs enqueued through this queue (see docs/flow-control.md).
   * @example
   * queue.register('sync-account', syncAccount, {
   *   concurrency: { limit: 2, key: (args) => args.accountId }, // at most 2 running per account, fleet-wide
   *   rateLimit: { limit: 100, period: 60_000 },               // at most 100 starts a minute
   * });
   * @throws InvalidArgumentError on an invalid name, a non-function handler or invalid options (nothing is registered)
   */
  register<Args = unknown, Result = unknown>(type: string, handler: Handler<Args, Result>, options?: RegisterOptions<Args>): JobDefinition<Args, Result, Tx> {
    checkJobType(type);
    if (typeof handler !== 'function') throw new InvalidArgumentError(`handler of "${type}" must be a function`);
    const flow = checkRegisterOptions(type, options);
    this.#core.handlers.set(type, handler as unknown as Handler<never, unknown>);
    if (flow) this.#core.flows?.set(type, flow);
    else this.#core.flows?.delete(type);
    return Object.freeze({
      type,
      enqueue: (args: Args, options?: EnqueueOptions<Tx>) => this.enqueue(type, args, options),
    });
  }

  /**
   * Enqueues one job; resolves with its id once it is durably stored (with `debounce`, the id of
   * the pending job it replaced, if any; with `onDuplicate: 'existing'`, the id of the job
   * holding the `unique` key, if any).
   * @throws (rejects) InvalidArgumentError, SerializationError, PayloadTooLargeError, DuplicateJobError
   */
  async enqueue<Args>(type: string | JobDefinition<Args, unknown>, args?: Args, options?: EnqueueOptions<Tx>): Promise<string> {
    const layers = this.#middleware.enqueue;
    if (layers.length > 0) return enqueueOneThrough<Tx>(this.#core, layers, type, args, options, (jobs, mode, tx) => this.#insert(jobs, mode, tx));
    const name = typeof type === 'object' && type !== null ? type.type : type;
    const job = buildJobInsert(this.#core.ids, this.#core.defaults, name, args, options);
    const [id] = await this.#insert([job], conflictMode([options]), options?.transaction);
    return id ?? job.id;
  }

  /**
   * Enqueues many jobs atomically in one round trip; resolves with their ids in order (each
   * resolved as by `enqueue`: a debounced or `onDuplicate: 'existing'` item gives the id of the
   * job it resolved to). Equal priorities run in array order.
   * @throws (rejects) like `enqueue`; on any invalid item nothing is written
   */
  async enqueueBatch(items: readonly BatchItem[], options: Pick<EnqueueOptions<Tx>, 'transaction'> = {}): Promise<string[]> {
    if (!Array.isArray(items)) throw new InvalidArgumentError('enqueueBatch expects an array');
    const opts = checkOptions<EnqueueOptions<Tx>>(options, 'enqueueBatch options', ['transaction']);
    const layers = this.#middleware.enqueue;
    if (layers.length > 0 && items.length > 0) return enqueueBatchThrough<Tx>(this.#core, layers, items, opts.transaction, (jobs, mode, tx) => this.#insert(jobs, mode, tx));
    const jobs = items.map((item, i) => {
      if (item === null || typeof item !== 'object') throw new InvalidArgumentError(`enqueueBatch item ${i} must be an object`);
      if (item.options && 'transaction' in item.options) throw new InvalidArgumentError(`enqueueBatch item ${i}: pass transaction to the batch, not an item`);
      return buildJobInsert(this.#core.ids, this.#core.defaults, item.type, item.args, item.options);
    });
    // An empty batch still goes to the storage: it answers at once without a round trip, but a
    // closed storage rejects and a caller transaction is validated, as for any batch.
    const mode = conflictMode(items.map((item) => item.options));
    const ids = await this.#insert(jobs, mode, opts.transaction);
    return jobs.map((j, i) => ids[i] ?? j.id);
  }

  /**
   * The job with this id, or `undefined`. A job whose payload cannot be decoded (e.g. encrypted
   * with a key this queue's codec lacks) comes without `args` and `result`, with `meta` empty; its
   * `lastError` says why once a worker tried it.
   */
  async getJob<Args = unknown, Result = unknown>(id: string): Promise<Job<Args, Result> | undefined> {
    checkName(id, 'job id');
    const row = await this.#core.storage.jobGet({ id });
    // A payload that cannot be decoded leaves args and result out rather than failing the read.
    return row ? (listedJob(row) as Job<Args, Result>) : undefined;
  }

  /**
   * Resolves with the job once it is completed, failed or cancelled.
   * @throws (rejects) JobNotFoundError, WaitTimeoutError
   */
  async waitForJob<Args = unknown, Result = unknown>(id: string, options: WaitForJobOptions = {}): Promise<Job<Args, Result>> {
    return waitForJob<Args, Result>(this.#core, id, options);
  }

  /**
   * Job counts by status, for all queues or one: exact, every job counted. With `cap` (an
   * integer from 0), each count is exact up to `cap` and reads `cap + 1` for a status with more
   * jobs, and the storage reads at most about cap + 1 index entries per status however many jobs
   * it keeps: what a page that polls the counts should ask for (see docs/operations.md).
   * @example
   * const c = await queue.stats({ cap: 100_000 });
   * const shown = c.completed > 100_000 ? '100,000+' : c.completed.toLocaleString();
   */
  async stats(options: { queue?: string; cap?: number } = {}): Promise<JobCounts> {
    const o = checkOptions<{ queue?: string; cap?: number }>(options, 'stats options', ['queue', 'cap']);
    const p: { queue?: string } = {};
    if (o.queue !== undefined) p.queue = checkQueueName(o.queue);
    const counts = o.cap === undefined ? await this.#core.storage.jobCountByStatus(p) : await this.#core.storage.jobCountByStatusCapped({ ...p, cap: checkInt(o.cap, 'cap', 0) });
    return Object.fromEntries(JOB_STATUSES.map((s) => [s, counts[s] ?? 0])) as Record<JobStatus, number>;
  }

  /**
   * Deletes the finished jobs whose retention age has passed (or, with `olderThan`, every
   * finished job older than that), each workflow as a whole, in batches of 500 root jobs until
   * none is left; resolves with the number of jobs deleted (roots and their descendants).
   * Workers do this by themselves in small batches; call it to catch up at once, or from a
   * cron-like task when no worker runs. With `retention: false` and no `olderThan` it deletes
   * nothing. While another process is pruning, it waits 100 ms and tries again, up to 10 times in
   * a row, then resolves with what it deleted so far (the other pruner deletes the rest).
   * Publishes `jobs.pruned` when it deleted something.
   * @example
   * const n = await queue.prune();                 // what the retention ages say is due
   * await queue.prune({ olderThan: 0 });           // every finished job, now
   * @throws (rejects) InvalidArgumentError on bad options; a storage error (batches already done stay deleted)
   */
  async prune(options: PruneOptions = {}): Promise<number> {
    const ages = pruneAges(options, retentionOf(this.#core));
    if (ages === null) return 0;
    return pruneAll(this.#core.storage, this.#core.hub, ages);
  }

  /** Runs `fn` when a job starts on a local worker. Returns a remover. */
  onJobStart(fn: JobHook): Unsubscribe {
    return this.#core.hub.onStart(fn);
  }
  /** Runs `fn` when a job completes on a local worker (`startedAt`/`completedAt` set). */
  onJobComplete(fn: JobHook): Unsubscribe {
    return this.#core.hub.onComplete(fn);
  }
  /** Runs `fn` when a job fails terminally on a local worker, with the thrown error. */
  onJobFail(fn: JobErrorHook): Unsubscribe {
    return this.#core.hub.onFail(fn);
  }
  /** Runs `fn` when a job attempt failed and will be retried; `job.attempt` is the failed attempt. */
  onRetry(fn: JobErrorHook): Unsubscribe {
    return this.#core.hub.onRetry(fn);
  }
  /**
   * Runs `fn` for each job a local worker's lease reaper took back from a worker that stopped
   * heartbeating (a crash, a kill): `status` is `pending` when it will run again, `failed` when
   * its attempts are spent. The same as the `job.reclaimed` event, without building every other event.
   */
  onReclaim(fn: ReclaimHook): Unsubscribe {
    return this.#core.hub.onReclaim(fn);
  }
  /**
   * Events as an async iterator; leaving the loop unsubscribes. By default those of this
   * process's enqueues and workers. With `fleet: true`, the job events of every process sharing
   * the storage (each with its `origin`), from about now on: best-effort, at most once, in feed
   * order (each process's events in the order it produced them), with `events.gap` notices for
   * what was missed. While a fleet stream is open, every process relays its job events to the
   * storage (starting within about 2 s); with none open, relaying costs nothing.
   * See docs/observability.md, "Fleet events".
   * @example
   * for await (const e of queue.events({ fleet: true })) {
   *   if (e.type === 'events.gap') console.warn(`missed ${e.missed} events (${e.reason})`);
   *   else console.log(e.origin, e.type);
   * }
   * @throws InvalidArgumentError on invalid fleet options (unknown keys, a bad bufferSize)
   */
  events(options: FleetEventStreamOptions): AsyncIterableIterator<FleetEvent>;
  events(options?: EventStreamOptions & { fleet?: false }): AsyncIterableIterator<JobEvent>;
  events(options?: (EventStreamOptions & { fleet?: boolean }) | FleetEventStreamOptions): AsyncIterableIterator<JobEvent> | AsyncIterableIterator<FleetEvent> {
    if (options?.fleet === undefined || options.fleet === false) {
      if (options?.fleet === false) {
        const { fleet: _, ...local } = options;
        return this.#core.hub.stream(local);
      }
      return this.#core.hub.stream(options);
    }
    const o = checkOptions<FleetEventStreamOptions>(options, 'fleet event options', ['fleet', 'bufferSize']);
    if (o.fleet !== true) throw new InvalidArgumentError(`fleet must be true or false, got ${String(o.fleet)}`);
    const cap = o.bufferSize === undefined ? 10_000 : checkInt(o.bufferSize, 'bufferSize', 1, 1_000_000);
    return new FleetStream(this.#core.storage, this.#core.relay, this.#core.logger, cap);
  }

  /**
   * Adds a middleware around every run of a handler by this queue's workers; the first added is
   * the outermost. See {@link RunMiddleware}.
   * @example
   * queue.use(async (job, next) => { const r = await next(); console.log(job.id, 'done'); return r; });
   * @throws InvalidArgumentError when `fn` is not a function
   */
  use(fn: RunMiddleware): this {
    this.#middleware.run = [...this.#middleware.run, checkMiddleware(fn)];
    return this;
  }
  /**
   * Adds a middleware around every `ctx.call` step that runs (not around replayed ones); the
   * first added is the outermost. See {@link StepMiddleware}.
   * @throws InvalidArgumentError when `fn` is not a function
   */
  useStep(fn: StepMiddleware): this {
    this.#middleware.step = [...this.#middleware.step, checkMiddleware(fn)];
    return this;
  }
  /**
   * Adds a middleware around every job this queue enqueues (`enqueue`, `enqueueBatch`,
   * `ctx.fanOut` sub-jobs, schedule fires); the first added is the outermost. See {@link EnqueueMiddleware}.
   * @example
   * queue.useEnqueue((insert, next) => next({ ...insert, meta: { ...insert.meta, traceId } }));
   * @throws InvalidArgumentError when `fn` is not a function
   */
  useEnqueue(fn: EnqueueMiddleware): this {
    this.#middleware.enqueue = [...this.#middleware.enqueue, checkMiddleware(fn)];
    return this;
  }

  /** Creates a worker that runs this queue's handlers. Call `start()` on it. */
  newWorker(options: WorkerOptions = {}): Worker {
    return new Worker(this.#core, options, this.#schedules);
  }

  /**
   * Cancels a job (terminal) and its whole fan-out subtree. Running handlers see
   * `ctx.abortSignal` fire at their next heartbeat. A no-op for a job already terminal.
   * @throws (rejects) JobNotFoundError
   */
  async cancelJob(id: string): Promise<void> {
    await ops.cancelJob(this.#core, id);
  }
  /** Pauses a pending job: it is not claimed until `resumeJob`. @throws (rejects) JobNotFoundError, InvalidStateError */
  async pauseJob(id: string): Promise<void> {
    await ops.pauseJob(this.#core, id);
  }
  /** Makes a paused job pending again. @throws (rejects) JobNotFoundError, InvalidStateError */
  async resumeJob(id: string): Promise<void> {
    await ops.resumeJob(this.#core, id);
  }
  /** Stops every worker from claiming jobs of a queue (running jobs go on). */
  async pauseQueue(queue: string): Promise<void> {
    await ops.setQueuePaused(this.#core, queue, true);
  }
  /** Lets workers claim from a paused queue again. */
  async resumeQueue(queue: string): Promise<void> {
    await ops.setQueuePaused(this.#core, queue, false);
  }
  /**
   * Re-runs a failed or cancelled job: from scratch (attempts reset, checkpoints dropped), or
   * with `fromFailedStep: true` keeping its checkpoints and resuming at the step that failed (a
   * failed fan-out re-runs only its failed and cancelled sub-jobs).
   * @throws (rejects) JobNotFoundError, InvalidStateError, DuplicateJobError
   */
  async retryJob(id: string, options?: RetryJobOptions): Promise<void> {
    await ops.retryJob(this.#core, id, options);
  }

  /**
   * A page of jobs matching the filters, newest first (by creation) unless `order: 'asc'`;
   * pass `nextCursor` back as `cursor` for the next page. Pages stay correct while jobs change
   * state or new ones arrive: no job is shown twice or skipped for that. `scanLimit` bounds the
   * jobs a page reads: a page may then come back short with `scanExhausted` (see its option).
   * @example
   * const { jobs, nextCursor } = await queue.listJobs({ status: 'failed', queue: 'emails', search: 'timeout' });
   * @throws (rejects) InvalidArgumentError on a bad filter, limit, cursor or scanLimit
   */
  listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    return listJobs(this.#core, options);
  }
  /**
   * A job's workflow checkpoints, by step index (the answers `ctx.patched` stored are not steps
   * and are not listed: see `patchStatus`): every one, or a page of them with `{ limit, after }`
   * (those whose index is above `after`, at most `limit`, 1 to 1000).
   * @example
   * const first = await queue.getSteps(id, { limit: 100 });
   * const next = await queue.getSteps(id, { limit: 100, after: first.at(-1)?.index });
   * @throws (rejects) JobNotFoundError for an unknown job; InvalidArgumentError on bad options
   */
  getSteps(id: string, options?: GetStepsOptions): Promise<StepInfo[]> {
    return getSteps(this.#core, id, options);
  }
  /**
   * The signals sent to a job, oldest first: those its waits consumed (`consumedAt`) and those
   * still buffered. At most `limit` (1 to 1000, default 100): the oldest ones, or the next ones
   * after the `seq` given as `after`.
   * @example
   * const buffered = (await queue.getSignals(id)).filter((s) => s.consumedAt === undefined);
   * const next = await queue.getSignals(id, { after: page.at(-1)?.seq });
   * @throws (rejects) JobNotFoundError for an unknown job; InvalidArgumentError on a bad limit or after
   */
  getSignals(id: string, options?: GetSignalsOptions): Promise<SignalInfo[]> {
    return getSignals(this.#core, id, options);
  }
  /**
   * Where each `ctx.patched(id)` change stands, per workflow type and patch id: runs that took
   * the new and the old branch, in-flight runs that may still take the old one, and whether the
   * old branch may now be removed from the code (`safeToRemoveOldBranch`). One read statement;
   * it reads every stored answer (one pass over the checkpoints table) and the in-flight jobs of
   * each reported type. `sdj patches` prints it.
   * @example
   * const [s] = await queue.patchStatus({ type: 'process-order', patch: 'send-sms' });
   * if (s?.safeToRemoveOldBranch) console.log('deploy the version without the old branch');
   * @throws (rejects) InvalidArgumentError on bad options
   */
  patchStatus(options?: PatchStatusOptions): Promise<PatchStatus[]> {
    return patchStatus(this.#core, options);
  }
  /**
   * Retries, from scratch, every failed or cancelled job matching the filter, in batches (each
   * one short transaction); resolves with how many were retried and which were left alone, and why.
   * @example
   * await queue.retryJobs({ status: 'failed', queue: 'emails' }, { onProgress: (p) => console.log(p.done, '/', p.total) });
   * @throws (rejects) InvalidArgumentError on a bad filter or a status other than failed/cancelled
   */
  retryJobs(filter: JobFilterOptions, options?: BulkOptions): Promise<BulkOutcome> {
    return bulkAction(this.#core, 'retry', filter, options);
  }
  /**
   * Cancels every unfinished job matching the filter, each with its subtree, in batches.
   * @throws (rejects) InvalidArgumentError on a bad filter or a finished status
   */
  cancelJobs(filter: JobFilterOptions, options?: BulkOptions): Promise<BulkOutcome> {
    return bulkAction(this.#core, 'cancel', filter, options);
  }
  /**
   * Deletes every finished job matching the filter, each with its subtree, checkpoints and
   * signals, in batches; skips a job with unfinished sub-jobs and a sub-job of an unfinished parent.
   * @throws (rejects) InvalidArgumentError on a bad filter or an unfinished status
   */
  deleteJobs(filter: JobFilterOptions, options?: BulkOptions): Promise<BulkOutcome> {
    return bulkAction(this.#core, 'delete', filter, options);
  }
  /**
   * Deletes one finished job with its subtree, checkpoints and signals.
   * @throws (rejects) JobNotFoundError, InvalidStateError (not finished, unfinished sub-jobs or parent)
   */
  deleteJob(id: string): Promise<void> {
    return deleteJob(this.#core, id);
  }
  /**
   * Sets (replacing what was set) or, with `null`, removes the fleet-wide limits of a queue:
   * they count every job of the queue, whatever its type, across every worker process. This
   * process's workers apply them at once, others within a few seconds; jobs already running
   * finish as they are.
   * @example
   * await queue.setQueueLimits('emails', { concurrency: 50, rateLimit: { limit: 10, period: 1_000 } });
   * await queue.setQueueLimits('emails', null);
   * @throws (rejects) InvalidArgumentError on an invalid queue name or limits (none given, out of range)
   */
  setQueueLimits(queue: string, limits: QueueLimits | null): Promise<void> {
    return setQueueLimits(this.#core, queue, limits);
  }
  /**
   * Every stored limit — of job types (stored by workers from their registrations) and of
   * queues — with how full it is: jobs running, groups running and full, jobs waiting, and how
   * long until a rate-blocked group may start again.
   */
  limits(): Promise<LimitInfo[]> {
    return listLimits(this.#core);
  }
  /**
   * Every queue with its depth per status, oldest due pending age, paused flag and limits. With
   * `cap` (an integer from 0), each count is exact up to `cap` and reads `cap + 1` when the
   * queue has more jobs in that status, and no count reads more than about cap + 1 index entries
   * (see docs/operations.md).
   */
  queues(options: { cap?: number } = {}): Promise<QueueInfo[]> {
    return listQueues(this.#core, options);
  }
  /** The live workers of the whole fleet (every process on this storage), from their heartbeats. */
  workers(): Promise<WorkerInfo[]> {
    return listWorkers(this.#core);
  }
  /**
   * Sends a durable signal to a job; buffered until `ctx.waitForSignal(name)` consumes it.
   * @throws (rejects) JobNotFoundError, InvalidStateError (job already terminal), SerializationError
   */
  async signal(jobId: string, name: string, payload?: unknown): Promise<void> {
    await ops.sendSignal(this.#core, jobId, name, payload);
  }

  /**
   * Creates or replaces a recurring schedule. Each fire time becomes exactly one job across
   * every worker running the scheduler. The returned promise may be ignored: workers wait for
   * pending definitions before they fire.
   * @throws InvalidArgumentError (synchronously) on invalid options
   */
  schedule(name: string, schedule: Schedule, options?: ScheduleOptions): Promise<void> {
    return this.#schedules.define(name, schedule, options);
  }
  /** Removes a schedule; resolves with whether it existed. */
  unschedule(name: string): Promise<boolean> {
    return this.#schedules.remove(name);
  }
  /** Every stored schedule with its next fire time and last fire. */
  schedules(): Promise<ScheduleInfo[]> {
    return this.#schedules.list();
  }

  get #middleware(): MiddlewareLists {
    return this.#core.middleware as MiddlewareLists;
  }

  /** @internal shared state for workers and tooling in this package */
  get core(): QueueCore {
    return this.#core;
  }

  /** The schedule definitions' manager (the testing kit fires schedules through it). @internal */
  get scheduleHost(): ScheduleManager {
    return this.#schedules;
  }

  /** Encodes a payload with this queue's limits. @internal */
  encodePayload(value: unknown, what: string): string | null {
    return encodeJson(value, what, this.#core.defaults.maxPayloadBytes);
  }

  /** Inserts; resolves with the id each job resolved to (see `jobInsertMany`). */
  async #insert(jobs: JobInsert[], onConflict: 'error' | 'existing', tx: Tx | undefined): Promise<(string | null)[]> {
    // Whether some fleet subscriber listens is asked now and then (cheap when recently asked).
    this.#core.relay?.poke();
    const p: Parameters<Storage<Tx>['jobInsertMany']>[0] = { jobs };
    if (onConflict !== 'error') p.onConflict = onConflict;
    if (tx !== undefined) p.tx = tx;
    const r = await this.#storage.jobInsertMany(p);
    const ids = r.ids ?? jobs.map((j) => j.id);
    const at = new Date();
    const hub = this.#core.hub;
    const ready = new Set<string>();
    jobs.forEach((j, i) => {
      const id = ids[i] ?? null;
      // An item that resolved to a job holding its unique key enqueued nothing.
      if (id !== j.id && j.debounceKey == null) return;
      if (hub.hasSubscribers) hub.emit({ type: 'job.enqueued', jobId: id ?? j.id, jobType: j.type, queue: j.queue, at });
      if (j.delayMs === 0 && (j.runAt === null || j.runAt <= Date.now())) ready.add(j.queue);
    });
    // Inside a caller's transaction the rows are not visible yet; the poll/notify path picks them up.
    if (tx === undefined) for (const q of ready) for (const w of this.#core.wakers) w.wake(q);
    return ids;
  }
}

function checkMiddleware<F>(fn: F): F {
  if (typeof fn !== 'function') throw new InvalidArgumentError('middleware must be a function');
  return fn;
}
