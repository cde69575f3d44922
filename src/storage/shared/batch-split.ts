/**
 * The one rule every multi-row statement is cut by: consecutive chunks of at most `maxRows`
 * items whose sizes add up to at most `budget`; an item larger than the budget goes alone.
 * Each dialect measures its own sizes (PostgreSQL statement text, MySQL packet bytes) and
 * chooses its own budget.
 *
 * Internal to the storage layer: not exported from the package.
 */

/**
 * Splits `items` in order into chunks (see the module header); an empty list gives no chunk.
 * @internal
 */
export function splitBySize<T>(items: readonly T[], size: (item: T) => number, budget: number, maxRows = Number.POSITIVE_INFINITY): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let total = 0;
  for (const item of items) {
    const n = size(item);
    if (cur.length > 0 && (cur.length >= maxRows || total + n > budget)) {
      out.push(cur);
      cur = [];
      total = 0;
    }
    cur.push(item);
    total += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}
