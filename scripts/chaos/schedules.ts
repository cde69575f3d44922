/**
 * The schedules of a chaos run. Both are defined by every worker process as it starts (several
 * processes define them at once, exactly when a stale read could move `next_run_at` back) and
 * re-defined by the operator while the run goes on:
 * - `chaos.tick`: every 1000 ms, always the same spec: each slot must fire exactly once, none
 *   skipped;
 * - `chaos.alt`: every 1000 or every 2000 ms — processes and the operator change its spec —
 *   so slots must still never fire twice, stay on the grid, and keep coming.
 */
import type { Queue } from '../../src/queue/queue.js';
import type { ScheduleOptions } from '../../src/queue/schedule-types.js';
import { every } from '../../src/scheduler/schedules.js';
import { ROOT_QUEUE } from './handlers.js';

/** The schedule whose spec never changes. */
export const TICK = { name: 'chaos.tick', periodMs: 1000 } as const;
/** The schedule whose spec changes between these periods. */
export const ALT = { name: 'chaos.alt', periodsMs: [1000, 2000] as const };
/** Longest gap between two fired `chaos.alt` slots that is not a stall (a spec change drops at most one slot of each period). */
export const ALT_MAX_GAP_MS = 8000;

const OPTIONS: ScheduleOptions = { queue: ROOT_QUEUE, missed: 'all', retries: 8 };

/** Defines (or re-defines) `chaos.tick` with its one spec. */
export function defineTick(queue: Queue): Promise<void> {
  return queue.schedule(TICK.name, every(TICK.periodMs), OPTIONS);
}

/** Defines (or re-defines) `chaos.alt` with one of its periods. */
export function defineAlt(queue: Queue, periodMs: (typeof ALT.periodsMs)[number]): Promise<void> {
  return queue.schedule(ALT.name, every(periodMs), OPTIONS);
}
