/**
 * The testing kit's driver: a one-slot worker that runs only when a test tells it to, on the
 * virtual clock. It is built from the worker's own parts (claim, `executeJob`, the completer,
 * the maintenance pass, the schedule manager's scheduler), so handlers, middleware, checkpoints,
 * retries and events behave as under a real worker; only the loops are replaced by
 * {@link TestDriver.settle} (run everything due now) and {@link TestDriver.advanceTo} (visit
 * every instant at which something comes due, in order).
 *
 * The rules, also in docs/workflows.md ("Testing workflows"):
 * - One job at a time. Among jobs due at the current instant the next one is the engine's claim
 *   order: priority (higher first), then run_at, then enqueue order — across queues too.
 * - Time never moves while a handler runs, unless the handler waits on the virtual clock
 *   (`t.clock.sleep`): then it is parked, holds the slot, and time may move under it; its lease is
 *   renewed at every instant visited (so it is never reclaimed as dead), and its job timeout,
 *   other timers, wake-ups and schedule fires happen at their instants.
 * - A job that waits for a future instant or a signal is `waiting` and holds nothing:
 *   `settle` resolves without it.
 * @internal
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { LeaseLostError, messageOf, WaitTimeoutError } from '../errors.js';
import { toJob } from '../core/job-mapper.js';
import type { QueueCore } from '../core/queue-core.js';
import { deferred, type Deferred } from '../internal/deferred.js';
import type { JobRow } from '../storage/storage.js';
import type { JobStatus } from '../types.js';
import { Completer } from '../worker/completer.js';
import { executeJob, JobRun, type ExecutorDeps } from '../worker/executor.js';
import { LimitedClaims } from '../worker/limited-claims.js';
import { maintenancePass } from '../worker/maintenance.js';
import type { BackoffFn } from '../worker/retry-policy.js';
import { CallBudget } from './call-budget.js';
import type { VirtualClock } from './virtual-clock.js';

/** How a run the test queue made ended. */
export type TestRunOutcome = 'completed' | 'failed' | 'retrying' | 'suspended' | 'cancelled' | 'abandoned';

/** One run (one attempt, or one resumption of a workflow) made by a test queue, in start order. */
export interface TestRun {
  readonly jobId: string;
  readonly type: string;
  readonly queue: string;
  /** The attempt this run is (1 for the first; a workflow resumed after a sleep keeps its attempt). */
  readonly attempt: number;
  /** The job's args (decoded; `undefined` when they cannot be decoded). */
  readonly args: unknown;
  /** When it started, on the virtual clock. */
  readonly startedAt: Date;
  /** When it ended, on the virtual clock; absent while it runs. */
  readonly endedAt?: Date;
  /**
   * How it ended: `completed`, `failed` (for good), `retrying` (failed; another attempt is due),
   * `suspended` (sleep, signal wait or fan-out), `cancelled`, or `abandoned` (it lost its job, or
   * the test queue was closed under it). Absent while it runs.
   */
  readonly outcome?: TestRunOutcome;
  /** The job's `lastError` after a `failed` or `retrying` run. */
  readonly error?: string;
}

type MutableRun = { -readonly [K in keyof TestRun]: TestRun[K] };

/** The run in the slot. */
interface Active {
  /** The driver running it. */
  readonly driver: TestDriver;
  readonly run: JobRun;
  done: Promise<void>;
  /** `executeJob` returned and the run's record is complete. */
  finished: boolean;
  /** The run has its outcome (returned, threw, suspended, timed out, abandoned). */
  over: boolean;
  /** Virtual-clock sleeps of the handler still pending. */
  sleeping: number;
  /** Resolved when `over`, `finished` or `sleeping` changed. */
  nudge: Deferred<void> | undefined;
}

/** What the driver works with. @internal */
export interface TestDriverDeps {
  core: QueueCore;
  clock: VirtualClock;
  /** Fires the schedules due now (the queue's scheduler); resolves with the jobs inserted. */
  tick: () => Promise<number>;
  backoff: BackoffFn;
  leaseMs: number;
  workerId: string;
  /** Most runs one call (`drain`, `advance`, `set`) starts, and most instants it visits. */
  maxRuns: number;
  /** Real ms to wait for a run that neither settles nor parks on the virtual clock (`Infinity`: no bound). */
  stallMs: number;
}

/** Jobs listed per page when the driver looks for due work. */
const PAGE = 500;

/** Claim order: priority desc, run_at, id (enqueue order). */
function claimOrder(a: JobRow, b: JobRow): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

const OUTCOME_OF: Record<JobStatus, TestRunOutcome> = {
  completed: 'completed',
  failed: 'failed',
  pending: 'retrying',
  waiting: 'suspended',
  cancelled: 'cancelled',
  paused: 'abandoned',
  running: 'abandoned',
};

/**
 * The run of a handler the code is in, for every driver: one store shared by all of them,
 * because Node visits every enabled AsyncLocalStorage at each promise created, and one per
 * driver would stay enabled after its test queue is gone (a suite creating a thousand test
 * queues slowed down with each).
 */
const activeRun = new AsyncLocalStorage<Active>();

/** Drives a queue on a virtual clock, one job at a time. @internal */
export class TestDriver {
  /** Every run, in start order. */
  readonly runs: TestRun[] = [];
  readonly #d: TestDriverDeps;
  readonly #deps: ExecutorDeps;
  #active: Active | undefined;
  /** The earliest instant a rate-limited job may start, as the last limited claim said. */
  #rateAt = Infinity;
  /** The instant of the last upkeep: reclaims, wake-ups and schedule fires change only when time moves. */
  #upkeptAt: number | undefined;
  #stopped = false;
  #budget: CallBudget;

  constructor(d: TestDriverDeps) {
    this.#d = d;
    this.#budget = new CallBudget('drain()', d.maxRuns, () => d.clock.now());
    this.#deps = { core: d.core, completer: new Completer(d.core.storage, d.core.logger, d.leaseMs), backoff: d.backoff };
  }

  /** The run of this driver the calling code is in, if any. */
  #ownRun(): Active | undefined {
    const a = activeRun.getStore();
    return a?.driver === this ? a : undefined;
  }

  /** True in code a handler run by this driver runs (it must not wait for the driver). */
  get inRun(): boolean {
    return this.#ownRun() !== undefined;
  }

  /**
   * A virtual-clock wait. Called from a handler, it parks the run (time may move under it).
   * Rejects with the signal's reason when `signal` aborts first.
   */
  sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    const owner = this.#ownRun();
    const { clock } = this.#d;
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      let counted = owner !== undefined && !owner.over;
      const release = (): void => {
        signal?.removeEventListener('abort', onAbort);
        if (!counted || owner === undefined) return;
        counted = false;
        owner.sleeping--;
        owner.nudge?.resolve();
      };
      const timer = clock.setTimeout(() => {
        release();
        resolve();
      }, ms);
      const onAbort = (): void => {
        clock.clearTimeout(timer);
        release();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (counted && owner !== undefined) {
        owner.sleeping++;
        owner.nudge?.resolve();
      }
    });
  }

  /**
   * Runs everything due at the current instant: due timers, wake-ups, schedule fires and jobs,
   * one at a time, until nothing is due or the run in the slot is parked on the virtual clock.
   */
  async settle(): Promise<void> {
    await this.#syncLimits();
    const { clock } = this.#d;
    while (!this.#stopped) {
      const fired = clock.fireDue();
      const a = this.#active;
      if (a) {
        if ((await this.#wait(a)) === 'done') {
          this.#active = undefined;
          continue;
        }
        // Parked: what time brings still happens at this instant (its jobs run after the slot frees).
        await this.#upkeepOnce();
        const due = clock.nextDue();
        if (due !== undefined && due <= clock.now()) continue;
        return;
      }
      const changed = await this.#upkeepOnce();
      const queues = await this.#dueQueues();
      if (queues.length > 0) this.#budget.checkRuns();
      const row = queues.length === 0 ? undefined : await this.#claimNext(queues);
      if (row) {
        if (this.#stopped) return; // closing: the storage goes with the claimed row
        this.#start(row);
        this.#budget.countRun(row.type);
        continue;
      }
      if (fired === 0 && !changed) return;
    }
  }

  /** Moves the clock to `target`, visiting every instant in between at which something comes due. */
  async advanceTo(target: number): Promise<void> {
    const { clock } = this.#d;
    await this.settle();
    while (!this.#stopped) {
      const next = await this.#nextInstant();
      if (next === undefined || next > target) break;
      const moved = next > clock.now();
      const runs = this.#budget.runs;
      clock.moveTo(Math.max(next, clock.now()));
      await this.settle();
      if (moved && this.#budget.runs === runs) this.#budget.countIdleInstant();
    }
    if (!this.#stopped && target > clock.now()) {
      clock.moveTo(target);
      await this.settle();
    }
  }

  /** Starts the budget of a call (see {@link CallBudget}). */
  begin(name: string): void {
    this.#budget = new CallBudget(name, this.#d.maxRuns, () => this.#d.clock.now());
  }

  /** Stops driving: abandons the run in the slot and disarms every timer. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const a = this.#active;
    if (a && !a.finished) {
      a.run.abandon(new LeaseLostError('the test queue was closed while this run was going on'));
      await a.done;
    }
    this.#active = undefined;
    await this.#deps.completer.drain();
    this.#d.clock.clearAll();
  }

  /**
   * Waits until the run is finished ('done') or parked on the virtual clock. A run that has its
   * outcome already (a job timeout fired by the clock aborts it at once) is waited for to the
   * end even when its handler, ignoring the abort, still sleeps: its outcome is being written.
   * A run that does neither within `stallMs` of real time is abandoned, and the call rejects
   * with an error that names it: a hung handler must not hang the user's test run.
   */
  async #wait(a: Active): Promise<'done' | 'parked'> {
    let stalled = false;
    let timer: NodeJS.Timeout | undefined;
    try {
      for (;;) {
        if (a.finished) return 'done';
        if (!a.over && !a.run.aborted && a.sleeping > 0) return 'parked';
        if (stalled) return await this.#stall(a);
        const nudge = (a.nudge = deferred<void>());
        if (timer === undefined && Number.isFinite(this.#d.stallMs)) {
          timer = setTimeout(() => {
            stalled = true;
            a.nudge?.resolve();
          }, this.#d.stallMs);
        }
        await Promise.race([a.done, nudge.promise]);
        a.nudge = undefined;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Gives up on a run that neither settled nor parked in time: abandons it and rejects the call. */
  async #stall(a: Active): Promise<never> {
    const { row } = a.run;
    a.run.abandon(new LeaseLostError(`the test queue stopped waiting for this run after ${this.#d.stallMs} ms of real time`));
    await a.done;
    this.#active = undefined;
    throw new WaitTimeoutError(
      `${this.#budget.name}: job ${row.id} ("${row.type}", attempt ${row.attempt}) neither finished nor waited on the virtual clock for ${this.#d.stallMs} ms of real time, ` +
        'and time moves only between runs. A handler that waits for ctx.abortSignal (for its job timeout or a cancel) should await t.clock.sleep(Infinity, { signal: ctx.abortSignal }); ' +
        'one that stands for long work, t.clock.sleep(ms, { signal: ctx.abortSignal }); one that waits on slow real I/O can have more time with createTestQueue({ stallTimeout }). ' +
        'The run was abandoned (its abortSignal fired); its job is taken back when its lease runs out, as a crashed worker\'s would be.',
    );
  }

  /** {@link #upkeep} once per instant. */
  async #upkeepOnce(): Promise<boolean> {
    const now = this.#d.clock.now();
    if (this.#upkeptAt === now) return false;
    this.#upkeptAt = now;
    return this.#upkeep();
  }

  /**
   * What a worker's background loops do, at the current instant: renew the lease of the run in
   * the slot, reclaim expired leases, wake due timers and decided fan-outs, fire due schedules.
   * True when something changed.
   */
  async #upkeep(): Promise<boolean> {
    const { core, workerId, leaseMs } = this.#d;
    const a = this.#active;
    if (a && !a.finished) {
      const { jobId, runCount } = a.run.fence;
      const held = await core.storage.jobHeartbeat({ workerId, leaseMs, runs: [{ jobId, runCount }] });
      if (!held.includes(jobId)) a.run.leaseLost(new LeaseLostError('the job lease was lost (cancelled or taken back)'), true);
    }
    const m = await maintenancePass(core.storage, core.hub);
    const inserted = await this.#d.tick();
    return m.reclaimed + m.woken + inserted > 0;
  }

  /** The queues (not paused) that have a pending job due now, from the storage's summary (no job row is read). */
  async #dueQueues(): Promise<string[]> {
    const summary = await this.#d.core.storage.queueSummary();
    return summary.filter((s) => !s.paused && s.oldestPendingAgeMs !== null).map((s) => s.name);
  }

  /**
   * Claims the first due job in claim order (one queue at a time), or nothing. With one queue
   * due (the usual case) its claim decides alone; with several, their due jobs are listed to
   * find the claim order across queues.
   */
  async #claimNext(dueQueues: string[]): Promise<JobRow | undefined> {
    const { core, clock, workerId, leaseMs } = this.#d;
    const now = clock.now();
    if (this.#rateAt <= now) this.#rateAt = Infinity; // passed: the claims below tell the next one
    let order = dueQueues;
    if (dueQueues.length > 1) {
      const due = (await this.#list(['pending'])).filter((j) => j.runAt <= now).sort(claimOrder);
      order = [...new Set(due.map((j) => j.queue))];
    }
    for (const name of order) {
      const queues = [{ name, limit: 1 }];
      const [row] = await core.storage.jobClaim({ workerId, queues, leaseMs });
      if (row) return row;
      const limited = await core.storage.jobClaimLimited({ workerId, queues, leaseMs });
      if (limited.retryInMs !== null) this.#rateAt = Math.min(this.#rateAt, now + limited.retryInMs);
      if (limited.rows[0]) return limited.rows[0];
    }
    return undefined;
  }

  /** The earliest instant after now at which something comes due, if any. */
  async #nextInstant(): Promise<number | undefined> {
    const { core, clock } = this.#d;
    const now = clock.now();
    let next = clock.nextDue() ?? Infinity;
    if (next <= now) return now;
    for (const j of await this.#list(['pending', 'waiting'])) {
      const at = j.status === 'pending' ? j.runAt : j.wakeAt;
      if (at !== null && at > now && at < next) next = at;
    }
    for (const s of await core.storage.scheduleList()) if (s.nextRunAt > now && s.nextRunAt < next) next = s.nextRunAt;
    if (this.#rateAt > now && this.#rateAt < next) next = this.#rateAt;
    return Number.isFinite(next) ? next : undefined;
  }

  /** Every job in these statuses (paged). */
  async #list(statuses: JobStatus[]): Promise<JobRow[]> {
    const out: JobRow[] = [];
    let afterId: string | undefined;
    for (;;) {
      const page = await this.#d.core.storage.jobList(afterId === undefined ? { statuses, limit: PAGE, order: 'asc' } : { statuses, limit: PAGE, order: 'asc', afterId });
      out.push(...page);
      const last = page[page.length - 1];
      if (page.length < PAGE || last === undefined) return out;
      afterId = last.id;
    }
  }

  /** Starts a claimed job in the slot. */
  #start(row: JobRow): void {
    const { core, clock, workerId, leaseMs } = this.#d;
    const run = new JobRun(row, workerId, core, { leaseMs });
    let args: unknown;
    try {
      args = toJob(row).args;
    } catch {
      args = undefined;
    }
    const record: MutableRun = { jobId: row.id, type: row.type, queue: row.queue, attempt: row.attempt, args, startedAt: new Date(row.startedAt ?? clock.now()) };
    this.runs.push(record);
    const a: Active = { driver: this, run, done: Promise.resolve(), finished: false, over: false, sleeping: 0, nudge: undefined };
    void run.outcome.then(() => {
      a.over = true;
      a.nudge?.resolve();
    });
    a.done = activeRun
      .run(a, () => executeJob(this.#deps, run))
      .catch((err: unknown) => core.logger.error('job execution failed', { jobId: row.id, error: messageOf(err) }))
      .then(() => this.#recordEnd(record))
      .finally(() => {
        a.finished = true;
        a.nudge?.resolve();
      });
    this.#active = a;
  }

  /** Completes a run's record from its job row. */
  async #recordEnd(record: MutableRun): Promise<void> {
    record.endedAt = new Date(this.#d.clock.now());
    const job = await this.#d.core.storage.jobGet({ id: record.jobId }).catch(() => undefined);
    record.outcome = job === undefined ? 'abandoned' : (OUTCOME_OF[job.status] ?? 'abandoned');
    if (job?.lastError != null && (record.outcome === 'failed' || record.outcome === 'retrying')) record.error = job.lastError;
  }

  /** Stores the limits of the registered types that have some (what a worker does before claiming). */
  async #syncLimits(): Promise<void> {
    const { core } = this.#d;
    if (core.flows === undefined || core.flows.size === 0) return;
    const noop = (): void => {};
    await new LimitedClaims({ storage: core.storage, queues: [], pollMs: 1000, kick: noop, onError: noop }).sync(core.handlers.keys(), core.flows);
  }
}
