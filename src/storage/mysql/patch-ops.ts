/**
 * `Storage.stepPatchSummary` on MySQL/MariaDB: one read statement.
 * @internal
 */
import type { PatchSummaryRow, StepPatchSummaryParams } from '../storage.js';
import { patchStepFilter, toPatchSummaryRow } from '../shared/patch-summary.js';
import { select } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { PATCH_SUMMARY } from './queries/patches.js';

/** `Storage.stepPatchSummary`. */
export async function stepPatchSummary(ctx: DriverContext, p: StepPatchSummaryParams): Promise<PatchSummaryRow[]> {
  const type = p.type ?? null;
  const step = patchStepFilter(p);
  const rows = await select(ctx.db.pool, PATCH_SUMMARY, [type, type, step, step, Math.max(0, Math.trunc(p.limit)), p.before === undefined ? null : Math.trunc(p.before)]);
  return rows.map(toPatchSummaryRow);
}
