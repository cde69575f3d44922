/**
 * `stepPatchSummary`, the parts every driver shares: the prefix of the answers' step names and
 * the mapping of a result row (column names as every driver's statement returns them).
 * @internal
 */
import { PATCH_STEP_PREFIX, type PatchSummaryRow, type StepPatchSummaryParams } from '../patch-rows.js';

/** The step name filter of the params (`null`: every patch). */
export function patchStepFilter(p: StepPatchSummaryParams): string | null {
  return p.patch === undefined ? null : `${PATCH_STEP_PREFIX}${p.patch}`;
}

/** A whole number from a count or time column (drivers return numbers, bigints or decimal strings). */
function whole(v: unknown): number {
  const n = typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? Number(v) : typeof v === 'number' ? v : 0;
  return Number.isFinite(n) ? Math.trunc(n) : 0;
}

/** Maps a result row: `type, step_name, first_at, recorded_new, recorded_old, in_flight_new, in_flight_old, in_flight_predating`. */
export function toPatchSummaryRow(r: Record<string, unknown>): PatchSummaryRow {
  const stepName = String(r['step_name']);
  return {
    type: String(r['type']),
    patch: stepName.startsWith(PATCH_STEP_PREFIX) ? stepName.slice(PATCH_STEP_PREFIX.length) : stepName,
    firstAt: whole(r['first_at']),
    recordedNew: whole(r['recorded_new']),
    recordedOld: whole(r['recorded_old']),
    inFlightNew: whole(r['in_flight_new']),
    inFlightOld: whole(r['in_flight_old']),
    inFlightPredating: whole(r['in_flight_predating']),
  };
}
