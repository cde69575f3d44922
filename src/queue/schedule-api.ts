/**
 * The queue's side of schedules: validating and storing definitions (`queue.schedule`),
 * listing them, and turning a due slot into its job for the worker's scheduler.
 * @internal
 */
import { CodecError, InvalidArgumentError, InvalidScheduleError, StorageError } from '../errors.js';
import { decodeJson } from '../storage/codec.js';
import { checkMissedPolicy } from '../scheduler/missed.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { isSchedule, scheduleFromJson, type Schedule } from '../scheduler/schedules.js';
import type { JobInsert, ScheduleRow } from '../storage/storage.js';
import type { EnqueueOptions, JsonValue, Logger } from '../types.js';
import type { ScheduleHost } from '../worker/worker.js';
import type { QueueCore } from '../core/queue-core.js';
import { buildJobInsert } from '../core/enqueue.js';
import { enqueueThrough, optionsOf, requestFor } from '../core/middleware.js';
import { MAX_NAME, checkName, checkOptions } from '../core/validate.js';
import type { ScheduleInfo, ScheduleOptions } from './schedule-types.js';

/** The `type` listed for a schedule whose options cannot be decoded (see `QueueOptions.codec`). */
const UNDECODED_TYPE = '(options cannot be decoded)';

/** Stored options as an object, or undefined when a payload codec's text cannot be decoded. */
function readableOptions(optionsJson: string): ScheduleOptions | undefined {
  try {
    return decodeJson(optionsJson, 'schedule options') as ScheduleOptions;
  } catch (e) {
    if (e instanceof CodecError) return undefined;
    throw e;
  }
}

const OPTION_KEYS = ['args', 'type', 'queue', 'priority', 'retries', 'timeout', 'tenant', 'meta', 'missed', 'overlap'];

/** Upserts of one definition at most, each refused only when another process fired a slot meanwhile. */
const MAX_UPSERT_ATTEMPTS = 10;

/** The unique key of a schedule's jobs with `overlap: false` is this prefix and the schedule's name. */
const OVERLAP_KEY_PREFIX = 'sdj:schedule:';

/** Manages schedule definitions of one queue. @internal */
export class ScheduleManager implements ScheduleHost {
  readonly #pending = new Set<Promise<void>>();
  /** Schedulers running in this process: woken when a definition changes. */
  readonly #running = new Set<Scheduler>();

  constructor(private readonly core: QueueCore) {}

  /** Validates and stores a definition; replaces an existing one of the same name. */
  define(name: string, schedule: Schedule, options: ScheduleOptions = {}): Promise<void> {
    const p = (async () => {
      checkName(name, 'schedule name');
      if (!isSchedule(schedule)) throw new InvalidScheduleError(`schedule "${name}": expected a schedule made by every(), daily(), weekly() or cron()`);
      const o = checkOptions<ScheduleOptions>(options, 'schedule options', OPTION_KEYS);
      if (o.missed !== undefined) checkMissedPolicy(o.missed);
      if (o.overlap !== undefined && typeof o.overlap !== 'boolean') throw new InvalidArgumentError('overlap must be a boolean');
      if (o.overlap === false && OVERLAP_KEY_PREFIX.length + name.length > MAX_NAME) {
        throw new InvalidArgumentError(`schedule name is longer than ${MAX_NAME - OVERLAP_KEY_PREFIX.length} characters, the most with overlap: false (its jobs' unique key is "${OVERLAP_KEY_PREFIX}<name>")`);
      }
      // Validate everything a fire will need now, not at the first fire.
      this.#jobFor(name, o, Date.now());
      const specJson = JSON.stringify(schedule.spec);
      const optionsJson = JSON.stringify(o);
      const storage = this.core.storage;
      // The storage decides against the stored row (same spec: its next fire is kept); a new
      // spec whose first slot is not after the last slot fired is refused, and computed again
      // after that slot (a fire by another process between two attempts refuses it once more).
      let after = await storage.clockNow();
      for (let attempt = 1; ; attempt++) {
        const res = await storage.scheduleUpsert({ name, specJson, optionsJson, nextRunAt: schedule.next(new Date(after)).getTime() });
        if (res.stored) break;
        if (attempt >= MAX_UPSERT_ATTEMPTS) throw new StorageError(`schedule "${name}": the definition was refused ${attempt} times (last fired slot: ${res.lastRunAt} ms)`);
        after = Math.max(after, res.lastRunAt);
      }
      for (const s of this.#running) s.wake();
    })();
    this.#pending.add(p);
    const forget = (): void => {
      this.#pending.delete(p);
    };
    // Callers may ignore the promise (as the seed's examples do): workers report failures.
    p.then(forget, (err: unknown) => {
      forget();
      this.core.logger.error('storing a schedule failed', { schedule: name, error: String(err) });
    });
    return p;
  }

  /** Deletes a definition. */
  async remove(name: string): Promise<boolean> {
    checkName(name, 'schedule name');
    await this.settled();
    return this.core.storage.scheduleDelete({ name });
  }

  /** Every stored definition. */
  async list(): Promise<ScheduleInfo[]> {
    await this.settled();
    const rows = await this.core.storage.scheduleList();
    return rows.map((r) => {
      // Options no key of the codec opens (or read without the codec) leave the listing whole.
      const options = readableOptions(r.optionsJson);
      const sched = scheduleFromJson(r.specJson);
      const info: { -readonly [K in keyof ScheduleInfo]: ScheduleInfo[K] } = {
        name: r.name,
        type: options === undefined ? UNDECODED_TYPE : (options.type ?? r.name),
        schedule: sched.spec,
        description: sched.toString(),
        nextRunAt: new Date(r.nextRunAt),
        options: options ?? {},
      };
      if (r.lastRunAt !== null) info.lastRunAt = new Date(r.lastRunAt);
      if (r.lastJobId !== null) info.lastJobId = r.lastJobId;
      return info;
    });
  }

  /** Waits for definitions still being stored. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  /** @internal the worker's scheduler service; `tick()` fires what is due now (the testing kit drives it so) */
  makeScheduler(logger: Logger): { start(): Promise<void>; stop(): Promise<void>; tick(): Promise<number> } {
    const scheduler = new Scheduler({
      storage: this.core.storage,
      logger,
      buildJobs: (row: ScheduleRow, slotAt: number) => this.#jobsFor(row.name, JSON.parse(row.optionsJson) as ScheduleOptions, slotAt),
      // Fired jobs are ready now: wake this process's workers instead of waiting for a poll.
      onFired: (fire) => {
        for (const q of fire.queues) for (const w of this.core.wakers) w.wake(q);
      },
    });
    // A stop while start() waits for pending definitions wins: the scheduler never starts.
    let stopped = false;
    return {
      start: async () => {
        await this.settled();
        if (stopped) return;
        this.#running.add(scheduler);
        scheduler.start();
      },
      stop: () => {
        stopped = true;
        this.#running.delete(scheduler);
        return scheduler.stop();
      },
      tick: () => this.settled().then(() => scheduler.tick()),
    };
  }

  /** The job of a slot; through the enqueue middleware when there is some (it resolves once built). */
  #jobsFor(name: string, o: ScheduleOptions, slotAt: number): JobInsert[] | Promise<JobInsert[]> {
    const layers = this.core.middleware?.enqueue;
    if (layers === undefined || layers.length === 0) return [this.#jobFor(name, o, slotAt)];
    const jobs: JobInsert[] = [];
    const request = requestFor(o.type ?? name, o.args, this.#optionsFor(name, o, slotAt), 'schedule');
    return enqueueThrough(layers, [request], async ([r]) => {
      if (r === undefined) return [];
      jobs.push(buildJobInsert(this.core.ids, this.core.defaults, r.type, r.args, optionsOf(r)));
      return jobs.map((j) => j.id);
    }).then(() => jobs);
  }

  #jobFor(name: string, o: ScheduleOptions, slotAt: number): JobInsert {
    return buildJobInsert(this.core.ids, this.core.defaults, o.type ?? name, o.args, this.#optionsFor(name, o, slotAt));
  }

  #optionsFor(name: string, o: ScheduleOptions, slotAt: number): EnqueueOptions {
    const meta: Record<string, JsonValue> = { ...(o.meta ?? {}), schedule: name, scheduledFor: new Date(slotAt).toISOString() };
    const opts: EnqueueOptions = { meta };
    if (o.queue !== undefined) opts.queue = o.queue;
    if (o.priority !== undefined) opts.priority = o.priority;
    if (o.retries !== undefined) opts.retries = o.retries;
    if (o.timeout !== undefined) opts.timeout = o.timeout;
    if (o.tenant !== undefined) opts.tenant = o.tenant;
    if (o.overlap === false) opts.unique = OVERLAP_KEY_PREFIX + name;
    return opts;
  }
}
