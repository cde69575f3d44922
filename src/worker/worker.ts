/**
 * `Worker`: claims jobs in batches for its queues, runs them with per-queue concurrency,
 * keeps their leases alive, reclaims dead workers' jobs, optionally fires schedules, and
 * stops gracefully. Composes the claim loop, heartbeat, maintenance and scheduler services.
 * @module
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, LeaseLostError, messageOf } from '../errors.js';
import { deferred } from '../internal/deferred.js';
import { defaultBackoff } from '../internal/backoff.js';
import { IntervalService } from '../internal/service.js';
import type { LocalWaker, QueueCore } from '../queue/core.js';
import { checkDuration, checkInt, checkOptions, checkQueueName } from '../queue/validate.js';
import type { StepRecordParams, Unlisten } from '../storage/storage.js';
import { Batcher } from '../internal/batcher.js';
import type { Logger, QueueWorkerOptions } from '../types.js';
import { ClaimLoop } from './claim-loop.js';
import { Completer } from './completer.js';
import { executeJob, JobRun, type ExecutorDeps } from './executor.js';
import { heartbeat } from './heartbeat.js';
import { maintenancePass } from './maintenance.js';
import type { BackoffFn } from './retry-policy.js';
import { installSignalHandlers } from './shutdown.js';

/** Options of `queue.newWorker()`. */
export interface WorkerOptions {
  /** Queues to serve and their concurrency. @default { default: { concurrency: 10 } } */
  queues?: Record<string, QueueWorkerOptions>;
  /** Also fire due schedules (safe on every worker). @default false */
  scheduler?: boolean;
  /** A running job whose worker stopped heartbeating this long is reclaimed. @default 30000 */
  leaseTimeout?: number;
  /** How often leases are extended (also how fast a cancel reaches a running handler). @default min(leaseTimeout / 3, 2000) */
  heartbeatInterval?: number;
  /** Fallback poll for new jobs when no wake-up arrives. @default 1000 with LISTEN/NOTIFY, else 200 */
  pollInterval?: number;
  /** How often expired leases are reclaimed and due timers woken. @default 1000 */
  maintenanceInterval?: number;
  /** How long `stop()` lets running jobs finish before releasing them. @default 10000 */
  drainTimeout?: number;
  /** Stop gracefully on SIGINT/SIGTERM. @default true */
  handleSignals?: boolean;
  /** Retry delay after a failed attempt. @default exponential from 1 s with jitter, capped at 1 h */
  backoff?: BackoffFn;
  /** Overrides the logger of the queue. */
  logger?: Logger;
  /** A readable prefix for the worker id (the id stays unique). */
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

/** How often a worker without LISTEN/NOTIFY checks the storage's change counter (ms). */
const CHANGE_PROBE_MS = 5;

const OPTION_KEYS = ['queues', 'scheduler', 'leaseTimeout', 'heartbeatInterval', 'pollInterval', 'maintenanceInterval', 'drainTimeout', 'handleSignals', 'backoff', 'logger', 'name'];

/**
 * Processes jobs. Create with `queue.newWorker(options)`.
 * @example
 * const worker = queue.newWorker({ queues: { default: { concurrency: 5 } } });
 * void worker.start();   // resolves when the worker has stopped
 * await worker.stop();
 */
export class Worker implements LocalWaker {
  /** Unique id of this worker (the lease owner). */
  readonly id: string;
  readonly #core: QueueCore;
  readonly #logger: Logger;
  readonly #queues: Map<string, number>;
  readonly #leaseMs: number;
  readonly #drainMs: number;
  readonly #opts: WorkerOptions;
  readonly #active = new Map<string, JobRun>();
  readonly #completer: Completer;
  readonly #claims: ClaimLoop;
  readonly #heartbeat: IntervalService;
  readonly #maintenance: IntervalService;
  /** Cross-process wake-ups for drivers without LISTEN/NOTIFY (see `Storage.dataVersion`). */
  readonly #changes: IntervalService | undefined;
  readonly #schedules: ScheduleHost;
  #scheduler: { start(): void | Promise<void>; stop(): Promise<void> } | undefined;
  #unlisten: Unlisten | undefined;
  #removeSignals: (() => void) | undefined;
  #state: State = 'idle';
  #stopped = deferred<void>();
  #stopping: Promise<void> | undefined;

  /** @internal use `queue.newWorker()` */
  constructor(core: QueueCore, options: WorkerOptions, schedules: ScheduleHost) {
    const o = checkOptions<WorkerOptions>(options, 'worker options', OPTION_KEYS);
    this.#core = core;
    this.#opts = o;
    this.#schedules = schedules;
    this.#logger = o.logger ?? core.logger;
    this.#queues = parseQueues(o.queues);
    this.#leaseMs = o.leaseTimeout === undefined ? 30_000 : checkDuration(o.leaseTimeout, 'leaseTimeout', 200);
    this.#drainMs = o.drainTimeout === undefined ? 10_000 : checkDuration(o.drainTimeout, 'drainTimeout');
    const hbMs = o.heartbeatInterval === undefined ? Math.min(this.#leaseMs / 3, 2000) : checkDuration(o.heartbeatInterval, 'heartbeatInterval', 10);
    const pollMs = o.pollInterval === undefined ? (core.storage.capabilities.listenNotify ? 1000 : 200) : checkDuration(o.pollInterval, 'pollInterval', 5);
    const maintMs = o.maintenanceInterval === undefined ? 1000 : checkDuration(o.maintenanceInterval, 'maintenanceInterval', 10);
    if (o.backoff !== undefined && typeof o.backoff !== 'function') throw new InvalidArgumentError('backoff must be a function');
    const prefix = o.name ?? `${hostname()}:${process.pid}`;
    this.id = `${prefix}:${randomBytes(6).toString('hex')}`;
    this.#completer = new Completer(core.storage, this.#logger);
    const backoff: BackoffFn = o.backoff ?? ((attempt) => defaultBackoff(attempt));
    const deps: ExecutorDeps = {
      core,
      completer: this.#completer,
      backoff,
      onSettled: (run) => {
        if (run.slotFreed) return;
        run.slotFreed = true;
        this.#claims.slotFreed(run.row.queue);
      },
    };
    // Checkpoints of concurrent workflows are written together when the driver can.
    const many = core.storage.stepRecordMany?.bind(core.storage);
    const steps = many ? new Batcher<StepRecordParams, boolean>((items) => many({ items }), STEP_BATCH, false) : undefined;
    const writeStep = steps ? (p: StepRecordParams) => steps.push(p) : undefined;
    const done = (run: JobRun): void => {
      deps.onSettled?.(run);
      if (this.#active.get(run.row.id) === run) this.#active.delete(run.row.id);
      this.#claims.released(run.row.queue);
      if (this.#state === 'stopping' && this.#active.size === 0) this.#drained?.();
    };
    this.#claims = new ClaimLoop({
      storage: core.storage,
      workerId: this.id,
      leaseMs: this.#leaseMs,
      pollMs,
      queues: this.#queues,
      logger: this.#logger,
      onError: (err) => this.#reportError('claiming jobs failed', err),
      onUnwanted: (rows) => {
        const runs = rows.map((r) => ({ jobId: r.id, workerId: this.id, runCount: r.runCount }));
        core.storage.jobRelease({ runs }).catch((err: unknown) => this.#reportError('releasing jobs claimed during pause failed; their leases will expire', err));
      },
      onClaimed: (row) => {
        const run = new JobRun(row, this.id, core, writeStep);
        this.#active.set(row.id, run);
        executeJob(deps, run).then(
          () => done(run),
          (err: unknown) => {
            this.#reportError('job execution failed', err);
            done(run);
          },
        );
      },
    });
    this.#heartbeat = new IntervalService(
      hbMs,
      () => heartbeat(core.storage, this.id, this.#leaseMs, [...this.#active.values()]),
      (err) => this.#reportError('heartbeat failed', err),
    );
    this.#maintenance = new IntervalService(
      maintMs,
      async () => {
        const r = await maintenancePass(core.storage, core.hub);
        if (r.woken > 0) for (const q of this.#queues.keys()) this.#claims.wake(q);
        else for (const q of r.queues) this.#claims.wake(q);
      },
      (err) => this.#reportError('maintenance failed', err),
    );
    const probe = core.storage.dataVersion?.bind(core.storage);
    if (!core.storage.capabilities.listenNotify && probe) {
      let seen: number | undefined;
      this.#changes = new IntervalService(
        CHANGE_PROBE_MS,
        async () => {
          const v = await probe();
          if (seen !== undefined && v !== seen) for (const q of this.#queues.keys()) this.#claims.wake(q);
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
   * Starts processing. Resolves when the worker has stopped (after `stop()` or a signal).
   * @throws (rejects) InvalidStateError when started twice
   */
  async start(): Promise<void> {
    if (this.#state !== 'idle') {
      if (this.#state === 'stopped') return;
      return this.#stopped.promise;
    }
    this.#state = 'running';
    this.#core.wakers.add(this);
    if (this.#opts.handleSignals !== false) this.#removeSignals = installSignalHandlers(() => void this.stop());
    const storage = this.#core.storage;
    if (storage.capabilities.listenNotify && storage.listen) {
      try {
        this.#unlisten = await storage.listen((q) => this.#claims.wake(q));
      } catch (err) {
        this.#reportError('could not subscribe to wake-ups; polling only', err);
      }
    }
    this.#heartbeat.start();
    this.#maintenance.start();
    this.#changes?.start();
    void this.#maintenance.runNow();
    if (this.#opts.scheduler) {
      this.#scheduler = this.#schedules.makeScheduler(this.#logger);
      await this.#scheduler.start();
    }
    if (this.#state === 'running') this.#claims.start();
    this.#logger.info('worker started', { workerId: this.id, queues: [...this.#queues.keys()] });
    return this.#stopped.promise;
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

  async #shutdown(): Promise<void> {
    this.#state = 'stopping';
    this.#logger.info('worker stopping', { workerId: this.id, running: this.#active.size });
    this.#core.wakers.delete(this);
    await this.#claims.stop();
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
      this.#active.clear();
    }
    await this.#completer.drain().catch((err: unknown) => this.#reportError('writing final outcomes failed', err));
    await this.#heartbeat.stop();
    await this.#maintenance.stop();
    await this.#changes?.stop();
    if (this.#unlisten) await this.#unlisten().catch((err: unknown) => this.#reportError('unlisten failed', err));
    this.#removeSignals?.();
    this.#state = 'stopped';
    this.#logger.info('worker stopped', { workerId: this.id });
    this.#stopped.resolve();
  }

  #reportError(message: string, err: unknown): void {
    this.#logger.error(message, { workerId: this.id, error: messageOf(err) });
    if (this.#core.hub.hasSubscribers) this.#core.hub.emit({ type: 'worker.error', error: `${message}: ${messageOf(err)}`, at: new Date() });
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
