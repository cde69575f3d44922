/**
 * Row and parameter types of `Storage.stepPatchSummary`: what runs stored for `ctx.patched`.
 * @module
 */

/**
 * Step-name prefix of a stored `ctx.patched` answer: `patched:<id>`, at a negative step index
 * (the answers of a run are numbered −1, −2, … in the order it first asked).
 */
export const PATCH_STEP_PREFIX = 'patched:';

/** `stepPatchSummary` parameters. */
export interface StepPatchSummaryParams {
  /** Only answers stored by jobs of this type. */
  type?: string;
  /** Only answers for this patch id. */
  patch?: string;
  /**
   * Ms (storage clock): in-flight jobs created before it that stored no answer count as
   * predating; default (absent) each pair's earliest answer.
   */
  before?: number;
  /** At most this many rows (type and patch pairs), in type then patch order. */
  limit: number;
}

/**
 * The stored answers for one patch id among the jobs of one type. Answers are checkpoints with a
 * negative step index and the step name `patched:<id>` (see `workflow/patches.ts`); "in flight"
 * means the job is `pending`, `running`, `waiting` or `paused`.
 */
export interface PatchSummaryRow {
  /** The job type (the workflow). */
  type: string;
  /** The patch id given to `ctx.patched`. */
  patch: string;
  /** When the earliest stored answer was recorded (ms, storage clock), over every job still stored. */
  firstAt: number;
  /** Jobs (any status) that stored `true`. */
  recordedNew: number;
  /** Jobs (any status) that stored `false`. */
  recordedOld: number;
  /** In-flight jobs that stored `true`. */
  inFlightNew: number;
  /** In-flight jobs that stored `false`: they took, and on every replay take, the old branch. */
  inFlightOld: number;
  /**
   * In-flight jobs of the type, claimed at least once, created before `before` (default
   * `firstAt`), that stored no answer for this patch: their history may have been recorded past the patch's point by code
   * without it.
   */
  inFlightPredating: number;
}
