/**
 * Storage types of flow control: fleet-wide concurrency and rate limits, stored in
 * `sdj_type_limits` and on `sdj_queues`
 * and enforced where jobs are claimed ({@link Storage.jobClaimLimited}). Part of the storage
 * contract; re-exported by `storage.ts`.
 *
 * Model (every driver alike):
 * - A limit row has a scope: `type` (written by workers from `register(type, h, { concurrency,
 *   rateLimit })`) or `queue` (`setQueueLimits`). Each row may carry a concurrency limit, a rate
 *   limit, or both.
 * - A job of a type with a type limit row is *limited* (`sdj_jobs.limited = 1`): decided when it
 *   is inserted (the insert reads `sdj_type_limits`), and for pending jobs again whenever a type
 *   limit row appears or disappears (`limitSet` / `limitDelete` re-mark the type's pending jobs).
 *   A retried job (`jobRetry`, `jobRetryMany`) is marked again from the rows as they are then.
 *   Re-marking on `limitSet` / `limitDelete` covers every non-terminal job of the type.
 *   The ordinary claim (`jobClaim`) never takes a limited job, and never takes any job of a queue
 *   that has a queue limit row; `jobClaimLimited` takes those, within the limits.
 * - Groups: a type concurrency limit counts per (type, concurrency key), the key being the job's
 *   `concurrency_key` or `''` when it has none; a type rate limit per (type, rate key); a queue
 *   limit per queue. A running job counts against every group it belongs to.
 * - Concurrency: a job may be claimed only while fewer than `concurrency` jobs of each of its
 *   concurrency groups are `running` (counted from the rows, so a crashed worker's jobs stop
 *   counting when `jobReclaimExpired` takes them back, and a job that suspends — sleep, signal
 *   wait, fan-out — gives its slot back until it is claimed again).
 * - Rate (GCRA that forgives a little lateness, on the database clock): a group with `rateLimit`
 *   starts per `ratePeriodMs` = P has an emission interval T = P / rateLimit (fractional ms), a
 *   catch-up allowance c = min(T, 1000 ms), and a theoretical arrival time `tat` (stored in
 *   `sdj_rate_state`; no row, or a tat older than now − c, means the same: no constraint). A job
 *   of the group may start at `now` iff tat <= now; its start sets tat = max(tat, now − c) + T.
 *   So a start that comes up to c late (the claim that could take it ran late) keeps its turn
 *   instead of losing the lateness for good, and a group that idled may start two jobs at once.
 *   A group starts at most one job per claim (a group still allowed after its start reports
 *   `retryInMs` 1); drivers prune rate rows only when older than now − 60 s (older than now − c).
 *   **Bound (the documented tolerance): at most `rateLimit` + 1 starts in any window of length P.**
 *   Proof: let s_1 <= … <= s_m be starts of one group within [a, a + P), and τ_i the tat after
 *   the i-th. Each start sets τ_i >= s_i − c + T, and τ_{i+1} >= τ_i + T (the max keeps τ_i), so
 *   τ_{m−1} >= s_1 − c + (m − 1)·T. The m-th start needs τ_{m−1} <= s_m < s_1 + P, hence
 *   (m − 1)·T − c < P = rateLimit·T, m < rateLimit + 1 + c/T <= rateLimit + 2: m <= rateLimit + 1.
 *   Over a long run of length D the same argument gives at most 1 + (D + c)/T starts.
 *   `limitSet` with a rate limit that differs from the stored one caps the stored tat of the
 *   limit's groups at now + the new T (a faster rate applies at once; a slower one keeps the
 *   spacing there); the same rate stored again leaves the state as it is: the bound holds for
 *   windows within one setting of the limit.
 * - A candidate is gated by the limit rows of its type and queue, whatever its `limited` mark
 *   (the mark only routes jobs to the limited claim).
 * - Where limits live: type limits in `sdj_type_limits`; queue limits on the queue's `sdj_queues` row
 *   (read by every claim with the pause flag, so a claim in flight is ordered with a limit change
 *   exactly as with a pause). `limitList` returns both as rows.
 * - `jobClaimLimited` is serialized with every other `jobClaimLimited` on the same storage, so the
 *   counts a claim decides on are exact when it commits. SQLite: one transaction under the write
 *   lock. PostgreSQL and MySQL/MariaDB: optimistic — a claim reads and plans without a lock and
 *   commits only if a version (generation) counter on one row is still the one its read saw;
 *   every limited claim that claims or moves rate state, every limit change and every pause moves
 *   it, so a plan made on counts another claim has changed is never applied (the claim reads
 *   again). What else changes the counts only frees slots (finishes, releases, reclaims,
 *   suspends, cancels), which makes a plan conservative, never over the limit.
 * - A limit applies to claims made after it is stored; jobs already running when a limit is set
 *   or lowered finish as they are (the limit may be exceeded until they do).
 * @module
 */
import type { JobRow } from './job-rows.js';

/** Scope of a limit row. */
export type LimitScope = 'type' | 'queue';

/** One limit: a `sdj_type_limits` row, or the limits on a `sdj_queues` row (never neither). */
export interface LimitRow {
  scope: LimitScope;
  /** The job type or the queue name. */
  name: string;
  /** Most jobs of one group running at once; null when none. */
  concurrency: number | null;
  /** Most starts of one group per `ratePeriodMs`; null when none (then `ratePeriodMs` is null). */
  rateLimit: number | null;
  ratePeriodMs: number | null;
  /** When the row was last written (ms, storage clock). */
  updatedAt: number;
}

/** `limitSet` parameters: upsert one limit row (at least one limit given). */
export interface LimitSetParams {
  scope: LimitScope;
  name: string;
  concurrency: number | null;
  rateLimit: number | null;
  ratePeriodMs: number | null;
}

/** How full one limit is (`limitUsage`). */
export interface LimitUsageRow {
  scope: LimitScope;
  name: string;
  /** Jobs running that count against this limit (all keys together). */
  running: number;
  /** Distinct concurrency keys with a running job (1 for a queue limit with any running). */
  keysRunning: number;
  /** Keys (groups) whose running count is at or above the concurrency limit. */
  keysFull: number;
  /** Pending limited jobs of this type (type scope) or pending jobs of this queue (queue scope). */
  pending: number;
  /**
   * The earliest instant (ms, storage clock) at which a rate-limited group of this limit that is
   * blocked now may start a job again; null when no group is rate-blocked (or no rate limit).
   */
  nextStartAt: number | null;
}

/** `jobClaimLimited` parameters. */
export interface JobClaimLimitedParams {
  workerId: string;
  /** Queues to claim from, each with how many jobs at most (limit >= 1). */
  queues: { name: string; limit: number }[];
  /** Lease length; lease_expires_at = now + leaseMs. */
  leaseMs: number;
}

/** `jobClaimLimited` result. */
export interface JobClaimLimitedResult {
  /** The claimed jobs, set `running` exactly as `jobClaim` sets them, in claim order. */
  rows: JobRow[];
  /**
   * Ms from now until a rate-blocked group that has a ready job may start one (the smallest
   * such wait, at least 1); null when no ready job waits on a rate limit.
   */
  retryInMs: number | null;
  /** True when a ready limited job was left unclaimed because a concurrency limit was full. */
  saturated: boolean;
}
