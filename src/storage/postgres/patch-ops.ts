/**
 * `Storage.stepPatchSummary` on PostgreSQL: one read statement.
 * @internal
 */
import type { PatchSummaryRow, StepPatchSummaryParams } from '../storage.js';
import { patchStepFilter, toPatchSummaryRow } from '../shared/patch-summary.js';
import type { PgExec } from './executor.js';
import { PATCH_SUMMARY } from './queries/patches.js';

/** `Storage.stepPatchSummary`. */
export async function stepPatchSummary(x: PgExec, p: StepPatchSummaryParams): Promise<PatchSummaryRow[]> {
  const rows = await x.rows<Record<string, unknown>>(PATCH_SUMMARY, [p.type ?? null, patchStepFilter(p), Math.max(0, Math.trunc(p.limit)), p.before === undefined ? null : Math.trunc(p.before)]);
  return rows.map(toPatchSummaryRow);
}
