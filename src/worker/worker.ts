/**
 * `Worker`: claims jobs in batches for its queues, runs them with per-queue concurrency,
 * keeps their leases alive, reclaims dead workers' jobs, optionally fires schedules, and
 * stops gracefully. Composes the claim loop, heartbeat, maintenance and scheduler services.
 * @module
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, LeaseLostError, messageOf, StorageClosedError } from '../errors.js';
import { deferred } from '../internal/deferred.js';
import { IntervalService } from '../internal/service.js';
import type { QueueCore } from '../core/queue-core.js';
import { checkBoolean, checkInt, checkLogger, checkOptions, checkQueueName, checkTimerDuration, checkWorkerName, checkWorkerTimings, MAX_WORKER_NAME } from '../core/validate.js';
import { retentionOf } from '../core/retention.js';
import type { StepRecordParams, Unlisten } from '../storage/storage.js';
import { Batcher } from '../internal/batcher.js';
import type { Applied } from '../internal/write-retry.js';
import type { Logger, QueueWorkerOptions } from '../types.js';
import { ClaimLoop } from './claim-loop.js';
import { Completer } from './completer.js';
import { ProgressWriter } from './progress-writer.js';
import { executeJob, JobRun, type ExecutorDeps } from './executor.js';
import { Heartbeat } from './heartbeat.js';
import { LimitedClaims } from './limited-claims.js';
import { WorkerRegistry } from './registry.js';
import { MaintenancePruner, maintenancePass } from './maintenance.js';
import { workerBackoff, type BackoffFn } from './retry-policy.js';
import { installSignalHandlers } from './shutdown.js';

/** Options of `queue.newWorker()`. */
export interface WorkerOptions {
  /** Queues to serve and their concurrency. @default { default: { concurrency: 10 } } */
  queues?: Record<string, QueueWorkerOptions>;
  /** Also fire due schedules (safe on every worker). @default false */
  scheduler?: boolean;
  /**
   * A running job whose worker stopped heartbeating this long is reclaimed. 200 ms to
   * 2147483647 ms (about 24.8 days), like every worker duration (the longest a timer can wait).
   * @default 30000
   */
  leaseTimeout?: number;
  /**
   * How often leases are extended (also how fast a cancel reaches a running handler). At most
   * half of `leaseTimeout`, so a live worker renews each lease at least twice before it runs out;
   * a failed heartbeat is tried again after a quarter of this interval.
   * @default min(leaseTimeout / 3, 2000)
   */
  heartbeatInterval?: number;
  /** Fallback poll for new jobs when no wake-up arrives. @default 1000 when the storage pushes wake-ups (`listen`), else 200 */
  pollInterval?: number;
  /** How often expired leases are reclaimed and due timers woken. @default 1000 */
  maintenanceInterval?: number;
  /**
   * Time between two retention batches of this worker (ms, 10 to 2147483647), or `false`: never
   * prune here. A batch deletes up to 100 finished root jobs past their `QueueOptions.retention`
   * age, with their subtrees; the first comes with the first maintenance pass, and after a full
   * batch the next comes at the next pass (catching up). One process prunes at a time. @default 60000
   */
  pruneInterval?: number | false;
  /** How long `stop()` lets running jobs finish before releasing them. @default 10000 */
  drainTimeout?: number;
  /** Stop gracefully on SIGINT/SIGTERM. @default true */
  handleSignals?: boolean;
  /**
   * Retry delay after a failed attempt, in ms (capped at 100 years). A result that is not a
   * finite number >= 0, or a backoff that throws, falls back to the default for that attempt
   * (logged once as a warning). @default exponential from 1 s with jitter, capped at 1 h
   */
  backoff?: BackoffFn;
  /** Overrides the logger of the queue. */
  logger?: Logger;
  /**
   * A readable prefix for the worker id (the id stays unique): 1 to 200 characters of
   * well-formed Unicode without control characters. @default `<hostname>:<pid>`
   */
  name?: string;
}

/** What a worker needs from the schedule manager. @internal */
export interface ScheduleHost {
  /** A scheduler service for a worker with `scheduler: true`. */
  makeScheduler(logger: Logger): { start(): void | Promise<void>; stop(): Promise<void> };
}

type State = 'idle' | 'running' | 'stopping' | 'stopped';

/** Most checkpoints written in one `stepRecordMany` call. */
const STEP_BATCH = 500;

/** Shortest wait before a failed heartbeat is tried again (ms). */
const MIN_HEARTBEAT_RETRY_MS = 10;

/** Tries of a release of jobs claimed and not run (paused meanwhile, or outranked in claim order). */
const GIVE_BACK_TRIES = 5;

/** How often a worker over a storage without `listen()` checks the storage's change counter, `dataVersion()` (ms). */
const CHANGE_PROBE_MS = 5;

const OPTION_KEYS = ['queues', 'scheduler', 'leaseTimeout', 'heartbeatInterval', 'pollInterval', 'maintenanceInterval', 'pruneInterval', 'drainTimeout', 'handleSignals', 'backoff', 'logger', 'name'];

/** Default shortest time between two retention batches of one worker (ms). */
const DEFAULT_PRUNE_INTERVAL_MS = 60_000;

/**
 * Processes jobs. Create with `queue.newWorker(options)`.
 * @example
 * const worker = queue.newWorker({ queues: { default: { concurrency: 5 } } });
 * void worker.start();   // resolves when the worker has stopped
 * await worker.stop();
 */
export class Worker {
  /** Unique id of this worker (the lease owner). */
  readonly id: string;
  readonly #core: QueueCore;
  readonly #logger: Logger;
  readonly #queues: Map<string, number>;
  readonly #leaseMs: number;
  readonly #drainMs: number;
  readonly #opts: WorkerOptions;
  /** Every run not finished yet. A job claimed again has two: the old one lost its lease and is aborted. */
  readonly #active = new Set<JobRun>();
  /** The newest run of each job id. */
  readonly #byJob = new Map<string, JobRun>();
  readonly #completer: Completer;
  /** `ctx.progress` reports of every run, coalesced into one write per flush. */
  readonly #progress: ProgressWriter;
  readonly #claims: ClaimLoop;
  /** Flow control: the stored limits and when the limited claim runs. */
  readonly #limits: LimitedClaims;
  readonly #heartbeat: IntervalService;
  readonly #maintenance: IntervalService;
  readonly #pruner: MaintenancePruner;
  readonly #registry: WorkerRegistry;
  /** Cross-process wake-ups for drivers without `listen()` (see `Storage.dataVersion`). */
  readonly #changes: IntervalService | undefined;
  readonly #schedules: ScheduleHost;
  #scheduler: { start(): void | Promise<void>; stop(): Promise<void> } | undefined;
  #unlisten: Unlisten | undefined;
  /** The start in progress (`#boot`); `#shutdown` waits for it. */
  #booting: Promise<void> | undefined;
  #removeSignals: (() => void) | undefined;
  #state: State = 'idle';
  #stopped = deferred<void>();
  #stopping: Promise<void> | undefined;
  /** Set when the worker stopped because its storage was closed under it (`start()` rejects with it). */
  #closedUnder: StorageClosedError | undefined;

  /** @internal use `queue.newWorker()` */
  constructor(core: QueueCore, options: WorkerOptions, schedules: ScheduleHost) {
    // Every option is checked before anything is built.
    const o = checkOptions<WorkerOptions>(options, 'worker options', OPTION_KEYS);
    const queues = parseQueues(o.queues);
    const timings = checkWorkerTimings(o, core.storage.listen ? 1000 : 200);
    if (o.scheduler !== undefined) checkBoolean(o.scheduler, 'scheduler');
    if (o.handleSignals !== undefined) checkBoolean(o.handleSignals, 'handleSignals');
    if (o.backoff !== undefined && typeof o.backoff !== 'function') throw new InvalidArgumentError('backoff must be a function');
    const pruneMs = o.pruneInterval === false ? null : o.pruneInterval === undefined ? DEFAULT_PRUNE_INTERVAL_MS : checkTimerDuration(o.pruneInterval, 'pruneInterval', 10);
    const logger = o.logger === undefined ? core.logger : checkLogger(o.logger);
    const prefix = o.name === undefined ? `${hostname().slice(0, MAX_WORKER_NAME - 12)}:${process.pid}` : checkWorkerName(o.name);
    this.#core = core;
    this.#opts = o;
    this.#schedules = schedules;
    this.#logger = logger;
    this.#queues = queues;
    this.#leaseMs = timings.leaseMs;
    this.#drainMs = timings.drainMs;
    const { heartbeatMs: hbMs, pollMs, maintenanceMs: maintMs } = timings;
    this.id = `${prefix}:${randomBytes(6).toString('hex')}`;
    this.#completer = new Completer(core.storage, this.#logger, this.#leaseMs);
    this.#progress = new ProgressWriter(core.storage, core.hub, this.#logger);
    const deps: ExecutorDeps = {
      core,
      completer: this.#completer,
      backoff: workerBackoff(o.backoff, logger),
      onSettled: (run) => {
        if (run.slotFreed) return;
        run.slotFreed = true;
        this.#claims.slotFreed(run.row.queue);
      },
    };
    // Checkpoints of concurrent workflows are written together, one `stepRecordMany` per flush.
    const steps = new Batcher<StepRecordParams, Applied>((items) => core.storage.stepRecordMany({ items }), STEP_BATCH, false, 'unsure');
    const writeStep = (p: StepRecordParams): Promise<Applied> => steps.push(p);
    const done = (run: JobRun): void => {
      deps.onSettled?.(run);
      this.#active.delete(run);
      if (this.#byJob.get(run.row.id) === run) this.#byJob.delete(run.row.id);
      this.#claims.released(run.row.queue, run.row.id);
      if (this.#state === 'stopping' && this.#active.size === 0) this.#drained?.();
    };
    this.#limits = new LimitedClaims({
      storage: core.storage,
      queues: [...queues.keys()],
      pollMs,
      kick: () => this.#claims.kickLimited(),
      onError: (message, err) => this.#reportError(message, err),
    });
    this.#claims = new ClaimLoop({
      limited: this.#limits,
      storage: core.storage,
      workerId: this.id,
      leaseMs: this.#leaseMs,
      pollMs,
      queues: this.#queues,
      logger: this.#logger,
      onError: (err) => this.#reportError('claiming jobs failed', err),
      onUnwanted: (rows) => {
        const runs = rows.map((r) => ({ jobId: r.id, workerId: this.id, runCount: r.runCount }));
        // A job left claimed would hold its limits' slots until its lease expires: a failed
        // release is tried again a few times, 50 ms, 100 ms, … apart.
        const release = (attempt: number): void =>
          void core.storage.jobRelease({ runs }).catch((err: unknown) => {
            if (attempt >= GIVE_BACK_TRIES) this.#reportError('giving back claimed jobs not run failed; their leases will expire', err);
            else setTimeout(() => release(attempt + 1), 50 * 2 ** (attempt - 1)).unref();
          });
        release(1);
      },
      onClaimed: (row) => {
        // Claimed again (its lease ran out and it was reclaimed): the older run lost the job and
        // sees its abortSignal before the new run starts.
        this.#byJob.get(row.id)?.leaseLost(new LeaseLostError('the job was claimed again by this worker: this run lost its lease'));
        const run = new JobRun(row, this.id, core, { leaseMs: this.#leaseMs, writeStep, logger: this.#logger, progress: this.#progress });
        this.#active.add(run);
        this.#byJob.set(row.id, run);
        executeJob(deps, run).then(
          () => done(run),
          (err: unknown) => {
            this.#reportError('job execution failed', err);
            done(run);
          },
        );
      },
    });
    const beats = new Heartbeat(core.storage, this.id, this.#leaseMs, () => this.#active, this.#logger);
    // A failed heartbeat is retried after a quarter interval: at the slowest heartbeat allowed
    // (half the lease) a whole interval more would let the leases run out.
    this.#heartbeat = new IntervalService(
      hbMs,
      () => beats.beat(),
      (err) => this.#reportError('heartbeat failed', err),
      Math.max(MIN_HEARTBEAT_RETRY_MS, Math.floor(hbMs / 4)),
    );
    this.#registry = new WorkerRegistry(
      core.storage,
      { id: this.id, name: prefix, queues: [...queues.keys()], leaseMs: this.#leaseMs, running: () => this.#active.size },
      hbMs,
      (err) => this.#reportError('refreshing the worker registry failed', err),
    );
    this.#pruner = new MaintenancePruner(core.storage, core.hub, retentionOf(core), pruneMs);
    this.#maintenance = new IntervalService(
      maintMs,
      async () => {
        // The stored limits are read again every few seconds, beside the pass.
        this.#limits.maybeRefresh();
        // Whether a fleet subscriber listens is asked every few seconds (relay on or off).
        core.relay?.poke();
        const r = await maintenancePass(core.storage, core.hub);
        if (r.woken > 0) for (const q of this.#queues.keys()) this.#claims.wake(q);
        else for (const q of r.queues) this.#claims.wake(q);
        // Retention beside the pass, never inside it: a slow prune does not hold back reclaims and wake-ups.
        this.#pruner.kick((err) => this.#reportError('pruning finished jobs failed', err));
      },
      (err) => this.#reportError('maintenance failed', err),
    );
    const probe = core.storage.dataVersion?.bind(core.storage);
    if (!core.storage.listen && probe) {
      let seen: number | undefined;
      this.#changes = new IntervalService(
        CHANGE_PROBE_MS,
        async () => {
          const v = await probe();
          // Any write changes it (claims, outcomes, heartbeats of other processes): a hint, not news of jobs.
          if (seen !== undefined && v !== seen) this.#claims.changed();
          seen = v;
        },
        (err) => this.#reportError('checking for new jobs failed', err),
      );
    }
  }

  #drained: (() => void) | undefined;

  /** Jobs currently running on this worker. */
  get activeCount(): number {
    return this.#active.size;
  }

  /** Whether claiming is paused (`pause()`). */
  get paused(): boolean {
    return this.#claims.paused;
  }

  /**
   * Starts processing. Resolves when the worker has stopped (after `stop()` or a signal);
   * `stop()` may come at any moment, also before this has finished connecting. Calling it
   * again waits for the same stop. A worker whose storage is closed (before it started, or while
   * it runs) stops by itself, and this rejects with `StorageClosedError`.
   */
  async start(): Promise<void> {
    if (this.#state !== 'idle') {
      if (this.#state === 'stopped') return;
      return this.#stopped.promise;
    }
    this.#state = 'running';
    this.#core.wakers.add(this);
    // stop() does not reject: every failure while stopping is reported through #reportError.
    if (this.#opts.handleSignals !== false) this.#removeSignals = installSignalHandlers(() => void this.stop());
    this.#booting = this.#boot();
    try {
      await this.#booting;
    } catch (err) {
      this.#reportError('starting the worker failed', err);
      await this.stop();
      throw err;
    }
    await this.#stopped.promise;
    if (this.#closedUnder) throw this.#closedUnder;
  }

  /**
   * Acquires what the worker holds (the LISTEN subscription, the scheduler), then starts its
   * loops — unless `stop()` came meanwhile: then it starts nothing more, and `#shutdown`, which
   * waits for it, gives back what was acquired. So a stop at any point of the start leaves
   * nothing running.
   */
  async #boot(): Promise<void> {
    const storage = this.#core.storage;
    if (storage.listen) {
      try {
        this.#unlisten = await storage.listen((q) => this.#claims.wake(q));
      } catch (err) {
        this.#reportError('could not subscribe to wake-ups; polling only', err);
      }
      if (this.#state !== 'running') return;
    }
    if (this.#opts.scheduler) {
      this.#scheduler = this.#schedules.makeScheduler(this.#logger);
      await this.#scheduler.start();
      if (this.#state !== 'running') return;
    }
    // The registered types' limits are stored before the first claim (see limited-claims.ts).
    await this.#limits.sync(this.#core.handlers.keys(), this.#core.flows);
    if (this.#state !== 'running') return;
    this.#heartbeat.start();
    this.#registry.start();
    this.#maintenance.start();
    this.#changes?.start();
    // A first maintenance pass right away; runNow() reports a failure itself and does not reject.
    void this.#maintenance.runNow();
    this.#claims.start();
    this.#logger.info('worker started', { workerId: this.id, queues: [...this.#queues.keys()] });
  }

  /**
   * Stops gracefully: no new claims; running jobs may finish within the drain timeout;
   * the rest are aborted and released to `pending` without consuming an attempt.
   * Resolves when stopped (and `start()` has resolved too).
   */
  stop(): Promise<void> {
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      this.#stopped.resolve();
      return Promise.resolve();
    }
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  /** Stops claiming new jobs; running jobs go on. */
  pause(): void {
    this.#claims.pause();
  }

  /** Claims again after `pause()`. */
  resume(): void {
    this.#claims.resume();
  }

  /** @internal in-process wake-up after a local enqueue */
  wake(queue: string): void {
    if (this.#queues.has(queue)) this.#claims.wake(queue);
  }

  /** @internal this process changed the stored limits (`setQueueLimits`): read them again now */
  limitsChanged(): void {
    if (this.#state === 'running') this.#limits.refresh();
  }

  async #shutdown(): Promise<void> {
    this.#state = 'stopping';
    this.#logger.info('worker stopping', { workerId: this.id, running: this.#active.size });
    this.#core.wakers.delete(this);
    // A stop during start: wait until the start has seen it, so what it acquired is given back.
    await this.#booting?.catch(() => {});
    await this.#claims.stop();
    await this.#limits.stop();
    await this.#scheduler?.stop().catch((err: unknown) => this.#reportError('stopping the scheduler failed', err));
    if (this.#active.size > 0) {
      const drained = new Promise<void>((resolve) => (this.#drained = resolve));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#drainMs)))]);
      clearTimeout(timer);
    }
    // Outcomes of handlers that are done are written first: only runs still in their handler
    // are released (a done run's outcome must not lose to its own release).
    await this.#completer.drain().catch((err: unknown) => this.#reportError('writing final outcomes failed', err));
    const left = [...this.#active.values()].filter((r) => !r.slotFreed);
    if (left.length > 0) {
      this.#logger.warn('drain timeout passed; releasing unfinished jobs', { workerId: this.id, jobs: left.length });
      for (const run of left) run.abandon(new LeaseLostError('the worker is shutting down (drain timeout passed)'));
      try {
        const released = await this.#core.storage.jobRelease({ runs: left.map((r) => r.fence) });
        const at = new Date();
        if (this.#core.hub.hasSubscribers) for (const jobId of released) this.#core.hub.emit({ type: 'job.released', jobId, at });
      } catch (err) {
        this.#reportError('releasing jobs at shutdown failed; their leases will expire', err);
      }
    }
    await this.#completer.drain().catch((err: unknown) => this.#reportError('writing final outcomes failed', err));
    // Every run is over or given up, but a write of one may still be in flight (a slow failing
    // outcome or checkpoint write, a check whose reply is pending): once those calls return, no
    // retry follows. Wait for them, so no call of this worker outlives stop().
    if (this.#active.size > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    await this.#progress.stop();
    await this.#heartbeat.stop();
    await this.#registry.stop((err) => this.#reportError('removing the worker from the registry failed', err));
    await this.#maintenance.stop();
    // The job events of this worker's last runs reach fleet subscribers before stop() resolves.
    await this.#core.relay?.flush();
    await this.#pruner.settled();
    await this.#changes?.stop();
    const unlisten = this.#unlisten;
    this.#unlisten = undefined;
    if (unlisten) await unlisten().catch((err: unknown) => this.#reportError('unlisten failed', err));
    this.#removeSignals?.();
    this.#state = 'stopped';
    this.#logger.info('worker stopped', { workerId: this.id });
    this.#stopped.resolve();
  }

  #reportError(message: string, err: unknown): void {
    this.#logger.error(message, { workerId: this.id, error: messageOf(err) });
    if (this.#core.hub.hasSubscribers) this.#core.hub.emit({ type: 'worker.error', error: `${message}: ${messageOf(err)}`, at: new Date() });
    // A closed storage never comes back: stop instead of polling it forever.
    if (err instanceof StorageClosedError && this.#state === 'running') {
      this.#closedUnder = err;
      void this.stop();
    }
  }
}

function parseQueues(queues: WorkerOptions['queues']): Map<string, number> {
  if (queues === undefined) return new Map([['default', 10]]);
  if (queues === null || typeof queues !== 'object') throw new InvalidArgumentError('queues must be an object of { name: { concurrency } }');
  const out = new Map<string, number>();
  for (const [name, q] of Object.entries(queues)) {
    checkQueueName(name, 'worker queue');
    const qo = checkOptions<QueueWorkerOptions>(q, `options of queue "${name}"`, ['concurrency']);
    out.set(name, qo.concurrency === undefined ? 10 : checkInt(qo.concurrency, `concurrency of queue "${name}"`, 1, 10_000));
  }
  if (out.size === 0) throw new InvalidArgumentError('a worker needs at least one queue');
  return out;
}
