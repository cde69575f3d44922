/**
 * `Storage.stepPatchSummary` on SQLite: one read statement.
 * @internal
 */
import type { PatchSummaryRow, StepPatchSummaryParams } from '../storage.js';
import { patchStepFilter, toPatchSummaryRow } from '../shared/patch-summary.js';
import { PATCH_SUMMARY } from './queries/patches.js';
import type { SqliteContext } from './statements.js';

/** `Storage.stepPatchSummary`. */
export function stepPatchSummary(ctx: SqliteContext, p: StepPatchSummaryParams): PatchSummaryRow[] {
  const params = { type: p.type ?? null, step: patchStepFilter(p), limit: Math.max(0, Math.trunc(p.limit)), before: p.before === undefined ? null : Math.trunc(p.before) };
  const rows = ctx.read((c) => c.st(PATCH_SUMMARY).all(params)) as Record<string, unknown>[];
  return rows.map(toPatchSummaryRow);
}
