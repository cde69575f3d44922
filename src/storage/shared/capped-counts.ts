/**
 * What every driver's bounded counts share (`jobCountByStatusCapped`, `queueSummaryCapped`):
 * the limit each count reads up to, the queue rows gathered from several reads, and the oldest
 * pending age.
 * @internal
 */
import { InvalidArgumentError } from '../../errors.js';
import type { JobStatus } from '../../types.js';
import type { QueueSummaryRow } from '../operator-rows.js';

/**
 * How many rows each count reads at most: `cap + 1` (a count reaching it means "more than
 * cap"). @throws InvalidArgumentError when `cap` is not an integer from 0 to 2^53 − 2
 */
export function readLimit(cap: number): number {
  if (!Number.isSafeInteger(cap) || cap < 0 || cap + 1 > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArgumentError(`cap must be a whole number from 0 to ${Number.MAX_SAFE_INTEGER - 1}, got ${String(cap)}`);
  }
  return cap + 1;
}

/** The statuses in the order the counts are read. */
export const COUNTED_STATUSES: readonly JobStatus[] = ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'paused'];

/** A queue being summed up: its running and waiting jobs (read for every queue at once). */
export interface QueueSeed {
  running: number;
  waiting: number;
}

/** Sums rows `{ name, running, waiting }` (a queue may come several times) into one seed per queue. */
export function seedsOf(rows: readonly { name: string; running: number; waiting: number }[]): Map<string, QueueSeed> {
  const out = new Map<string, QueueSeed>();
  for (const r of rows) {
    const s = out.get(r.name);
    if (s === undefined) out.set(r.name, { running: r.running, waiting: r.waiting });
    else {
      s.running += r.running;
      s.waiting += r.waiting;
    }
  }
  return out;
}

/** The per-queue part of a summary row, as a driver read it. */
export interface QueueCounts {
  paused: boolean;
  pending: number;
  pausedJobs: number;
  failed: number;
  /** Smallest run_at among the queue's pending jobs (null when none). */
  oldestRunAt: number | null;
}

/**
 * One summary row: running and waiting clamped to `limit` (they were counted in full), the
 * oldest pending age when that job is due (run_at <= now), else null.
 */
export function summaryRow(name: string, seed: QueueSeed, c: QueueCounts, limit: number, now: number): QueueSummaryRow {
  return {
    name,
    paused: c.paused,
    pending: Math.min(c.pending, limit),
    running: Math.min(seed.running, limit),
    waiting: Math.min(seed.waiting, limit),
    pausedJobs: Math.min(c.pausedJobs, limit),
    failed: Math.min(c.failed, limit),
    oldestPendingAgeMs: c.oldestRunAt !== null && c.oldestRunAt <= now ? now - c.oldestRunAt : null,
  };
}

/** The smaller of two nullable times. */
export function minTime(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/** Names in bytewise order (as the summaries sort them: `COLLATE "C"`, BINARY, utf8mb4_bin). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
