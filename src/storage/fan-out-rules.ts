/**
 * The fan-out decision rule, shared by every driver so they cannot disagree.
 * @internal
 */
import type { FanOutRow } from './storage.js';

/** The counters a decision needs. */
export type FanOutCounts = Pick<FanOutRow, 'strategy' | 'threshold' | 'total' | 'succeeded' | 'failed' | 'cancelled'>;

/** How many children must succeed for a threshold fan-out: ceil(threshold * total), at least 0. */
export function thresholdNeed(threshold: number, total: number): number {
  // Tolerate float noise such as 0.7 * 10 = 7.000000000000001.
  return Math.max(0, Math.ceil(threshold * total - 1e-9));
}

/**
 * Decides a fan-out from its counters: `'running'` while undecided.
 * - fail-fast: failed when failed + cancelled >= 1; succeeded when succeeded = total.
 * - collect-all: succeeded when every child is accounted for; never fails.
 * - threshold: succeeded when succeeded >= need; failed when failed + cancelled > total - need.
 */
export function decideFanOut(f: FanOutCounts): 'running' | 'succeeded' | 'failed' {
  const bad = f.failed + f.cancelled;
  const done = f.succeeded + bad;
  switch (f.strategy) {
    case 'fail-fast':
      if (bad >= 1) return 'failed';
      return f.succeeded >= f.total ? 'succeeded' : 'running';
    case 'collect-all':
      return done >= f.total ? 'succeeded' : 'running';
    case 'threshold': {
      const need = thresholdNeed(f.threshold ?? 1, f.total);
      if (f.succeeded >= need) return 'succeeded';
      if (bad > f.total - need) return 'failed';
      return 'running';
    }
  }
}
