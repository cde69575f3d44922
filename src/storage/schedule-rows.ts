/**
 * Storage types of schedules: the stored row and the parameters and results of
 * `scheduleUpsert` and `scheduleFire`. Part of the storage contract; re-exported by `storage.ts`.
 * @module
 */
import type { JobInsert } from './storage.js';

/** A stored schedule. */
export interface ScheduleRow {
  name: string;
  /** Encoded schedule spec (engine-defined JSON). */
  specJson: string;
  /** Encoded enqueue options (engine-defined JSON). */
  optionsJson: string;
  nextRunAt: number;
  lastRunAt: number | null;
  lastJobId: string | null;
  createdAt: number;
  updatedAt: number;
}

/** `scheduleUpsert` parameters: a schedule definition. */
export interface ScheduleUpsertParams {
  name: string;
  /** Encoded schedule spec; compared as text with the stored one. */
  specJson: string;
  optionsJson: string;
  /** The first slot of this spec after the caller's now: next_run_at of a new row or a changed spec. */
  nextRunAt: number;
}

/**
 * `scheduleUpsert` result: stored, or refused because `nextRunAt` is not after `lastRunAt`,
 * the last slot the stored definition fired (compute the first slot after it and upsert again).
 */
export type ScheduleUpsertResult = { stored: true } | { stored: false; lastRunAt: number };

/** `scheduleFire` parameters: compare-and-set of `next_run_at`, plus the slot's job(s). */
export interface ScheduleFireParams {
  name: string;
  /** The `next_run_at` the caller read; the fire applies only if it is unchanged. */
  expectedNextRunAt: number;
  nextRunAt: number;
  /** The slot instant recorded as `last_run_at`. */
  slotAt: number;
  /** Jobs for this fire (zero when skipped); unique clashes are skipped, not errors. */
  jobs: JobInsert[];
}
