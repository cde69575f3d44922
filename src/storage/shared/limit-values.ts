/**
 * The values a driver stores for a limit row (`Storage.limitSet`), shaped once for every driver.
 * @internal
 */
import type { LimitSetParams } from '../flow-rows.js';

/** A limit's stored columns: integers or null; the period only with a rate limit. @internal */
export interface StoredLimit {
  concurrency: number | null;
  rateLimit: number | null;
  ratePeriodMs: number | null;
}

/** An integer parameter or null. */
function int(v: number | null): number | null {
  return v === null ? null : Math.trunc(v);
}

/** The stored columns of `p`: concurrency, rate limit, and the period (null without a rate limit). @internal */
export function storedLimit(p: LimitSetParams): StoredLimit {
  return { concurrency: int(p.concurrency), rateLimit: int(p.rateLimit), ratePeriodMs: p.rateLimit === null ? null : int(p.ratePeriodMs) };
}
