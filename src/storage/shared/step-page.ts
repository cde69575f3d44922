/**
 * The bounds of a page of checkpoints (`stepList` with `afterIndex` or `limit`), bound as
 * parameters of each driver's `STEP_LIST_PAGE`: both stay within a 32-bit integer, the type of
 * `step_index` (PostgreSQL infers its parameter's type from the column and would refuse a wider one).
 * @internal
 */

/** Below every step index a driver stores (the stored answers of `ctx.patched` are negative). */
const BELOW_ANY_INDEX = -2_147_483_648;
/** More checkpoints than a job can hold: "no limit". */
const NO_LIMIT = 2_147_483_647;

/** `after` (the page holds indexes above it) and `limit` for `STEP_LIST_PAGE`. */
export function stepPage(p: { afterIndex?: number; limit?: number }): { after: number; limit: number } {
  return { after: p.afterIndex ?? BELOW_ANY_INDEX, limit: p.limit ?? NO_LIMIT };
}
