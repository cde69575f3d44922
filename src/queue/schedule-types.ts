/**
 * Public types of schedules (`queue.schedule`, `queue.schedules()`). Type-only imports, so any
 * layer — the dashboard's browser code included — may name them without loading the runtime.
 * @module
 */
import type { MissedPolicy } from '../scheduler/missed.js';
import type { ScheduleSpec } from '../scheduler/schedules.js';
import type { EnqueueOptions } from '../types.js';

/** Options of `queue.schedule(name, schedule, options)`. */
export interface ScheduleOptions extends Pick<EnqueueOptions, 'queue' | 'priority' | 'retries' | 'timeout' | 'tenant' | 'meta'> {
  /** Args of each fired job. */
  args?: unknown;
  /** Job type of the fired jobs. @default the schedule name */
  type?: string;
  /**
   * After downtime spanning several slots: `'latest'` fires one catch-up job, `'skip'` fires
   * none and waits for the next slot, `'all'` fires every missed slot (capped at 1000).
   * @default 'latest'
   */
  missed?: MissedPolicy;
  /** `false` skips a slot while the previous job of this schedule is not finished. @default true */
  overlap?: boolean;
}

/** A stored schedule as `queue.schedules()` lists it. */
export interface ScheduleInfo {
  readonly name: string;
  /** The job type fired; `(options cannot be decoded)` when the options are encrypted with no key this queue's codec has. */
  readonly type: string;
  /** The schedule's stored form. */
  readonly schedule: ScheduleSpec;
  /** Human-readable description, e.g. `every 60000 ms`. */
  readonly description: string;
  /** The next slot that will fire. */
  readonly nextRunAt: Date;
  /** The last slot fired, if any. */
  readonly lastRunAt?: Date;
  /** The job of the last fire, if any. */
  readonly lastJobId?: string;
  /** The options given to `queue.schedule`; empty when they cannot be decoded (see `type`). */
  readonly options: Omit<ScheduleOptions, 'args'> & { args?: unknown };
}
