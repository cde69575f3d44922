/**
 * The checks every driver's `jobPrune` makes on its parameters before touching the database, so
 * a bad age or limit gets the same typed error, with the same text, on every driver.
 * @internal
 */
import { InvalidArgumentError } from '../../errors.js';
import type { JobPruneParams } from '../storage.js';

/** The finished statuses a prune deletes, in the order drivers look for due roots. */
export const PRUNED_STATUSES = ['completed', 'failed', 'cancelled'] as const;

/** A finished status a prune deletes. */
export type PrunedStatus = (typeof PRUNED_STATUSES)[number];

/** `jobPrune`'s parameters, checked: ages in whole ms (`null` keeps that status). */
export interface CheckedPrune {
  ages: Readonly<Record<PrunedStatus, number | null>>;
  limit: number;
  /** True when nothing can be due: every age is `null` or the limit is 0. */
  nothing: boolean;
}

/**
 * Checks and normalizes `jobPrune`'s parameters. Ages are floored to whole ms: completion times
 * are whole ms, so `now - completed_at > age` holds exactly when it holds for `floor(age)`.
 * @throws InvalidArgumentError for an age that is neither `null` nor a number of ms from 0 to
 *   `Number.MAX_SAFE_INTEGER`, or a limit that is not a whole number >= 0
 */
export function checkPruneParams(p: JobPruneParams): CheckedPrune {
  const age = (status: PrunedStatus): number | null => {
    const v: unknown = p.olderThanMs[status];
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
      throw new InvalidArgumentError(`jobPrune: olderThanMs.${status} must be null or a number of ms from 0 to Number.MAX_SAFE_INTEGER, got ${String(v)}`);
    }
    return Math.floor(v);
  };
  const ages = { completed: age('completed'), failed: age('failed'), cancelled: age('cancelled') };
  if (!Number.isSafeInteger(p.limit) || p.limit < 0) throw new InvalidArgumentError(`jobPrune: limit must be a whole number >= 0, got ${String(p.limit)}`);
  const nothing = p.limit === 0 || PRUNED_STATUSES.every((s) => ages[s] === null);
  return { ages, limit: p.limit, nothing };
}
