/**
 * `queue.patchStatus()`: where each `ctx.patched` change stands, so an operator knows when the
 * old branch of a workflow can be deleted from the code.
 * @module
 */
import type { QueueCore } from '../core/queue-core.js';
import { checkDate, checkName, checkOptions } from '../core/validate.js';

/** Most (type, patch) pairs one `patchStatus` call reports. */
export const PATCH_STATUS_LIMIT = 1000;

/** Options of `queue.patchStatus()`. */
export interface PatchStatusOptions {
  /** Only this workflow (job type). */
  type?: string;
  /** Only this patch id. */
  patch?: string;
  /**
   * When the deploy of the patch ended: from then on every worker runs code that has it. In-flight
   * runs created before this instant that have not answered count as `inFlightPredating`.
   * Without it the anchor is each patch's `firstRecordedAt`, which misses a run that a worker
   * still on old code started after that instant (a rolling deploy): give it whenever old and
   * new workers overlapped. Compared with job creation times on the database clock.
   */
  deployedAt?: Date;
}

/**
 * Where one `ctx.patched(id)` change of one workflow stands. "In flight" means `pending`,
 * `running`, `waiting` or `paused`; counts are over the jobs still stored (retention deletes
 * finished ones).
 */
export interface PatchStatus {
  /** The workflow's job type. */
  type: string;
  /** The id given to `ctx.patched`. */
  patch: string;
  /** When a run first stored an answer for this patch (about when code with it first reached it), among runs still stored. */
  firstRecordedAt: Date;
  /** Runs (any status) that answered `true`: they took the new branch. */
  recordedNew: number;
  /** Runs (any status) that answered `false`: they took the old branch. */
  recordedOld: number;
  /** In-flight runs that answered `true`. */
  inFlightNew: number;
  /** In-flight runs that answered `false`: each replay of theirs takes the old branch again. */
  inFlightOld: number;
  /**
   * In-flight runs of the workflow that ran at least once, were created before `deployedAt`
   * (default `firstRecordedAt`) and have not asked yet: old code may have recorded them past the patch's
   * point, so they may still take the old branch.
   */
  inFlightPredating: number;
  /**
   * The verdict: `true` when no in-flight run took or may still take the old branch
   * (`inFlightOld` and `inFlightPredating` are 0), so the next version of the code may drop the
   * old branch and the `ctx.patched` call. Runs enqueued later always reach new code.
   */
  safeToRemoveOldBranch: boolean;
}

/**
 * `queue.patchStatus()`: per workflow and patch id, in type then patch order (at most
 * {@link PATCH_STATUS_LIMIT} pairs).
 * @throws (rejects) InvalidArgumentError on bad options
 * @internal
 */
export async function patchStatus(core: QueueCore, options: PatchStatusOptions = {}): Promise<PatchStatus[]> {
  const o = checkOptions<PatchStatusOptions>(options, 'patchStatus options', ['type', 'patch', 'deployedAt']);
  const type = o.type === undefined ? undefined : checkName(o.type, 'type');
  const patch = o.patch === undefined ? undefined : checkName(o.patch, 'patch id');
  const before = o.deployedAt === undefined ? undefined : checkDate(o.deployedAt, 'patchStatus deployedAt').getTime();
  const rows = await core.storage.stepPatchSummary({
    ...(type === undefined ? {} : { type }),
    ...(patch === undefined ? {} : { patch }),
    ...(before === undefined ? {} : { before }),
    limit: PATCH_STATUS_LIMIT,
  });
  return rows.map((r) => ({
    type: r.type,
    patch: r.patch,
    firstRecordedAt: new Date(r.firstAt),
    recordedNew: r.recordedNew,
    recordedOld: r.recordedOld,
    inFlightNew: r.inFlightNew,
    inFlightOld: r.inFlightOld,
    inFlightPredating: r.inFlightPredating,
    safeToRemoveOldBranch: r.inFlightOld === 0 && r.inFlightPredating === 0,
  }));
}
