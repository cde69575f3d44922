/**
 * The limited claim of a worker: when and for which queues it calls `jobClaimLimited`, the claim
 * that takes the jobs limits govern (jobs of a type with a type limit, every job of a queue with
 * a queue limit; the ordinary claim never takes those). Model: `storage/flow-rows.ts`.
 *
 * - **Limits.** At start, before the first claim, the worker stores the limits of the types its
 *   queue registered (`limitSet`), and removes the stored limits of a type registered without
 *   any (`limitDelete`): during a rolling deploy that changes a limit, the last worker started
 *   wins. It then keeps every stored limit in a cache, read again at most every
 *   {@link REFRESH_MS} (from the maintenance pass) and at once after this process's
 *   `setQueueLimits`.
 * - **When.** Only while the cache says limits may apply to this worker's queues (a type limit
 *   of any type, or a queue limit on one of its queues). A refresh that finds no limit for this
 *   worker still runs one limited claim (it picks up jobs left limited by a limit removed
 *   elsewhere), and so does a refresh that finds the limits changed; without any limit, that is
 *   the only limited claim a worker makes.
 * - **Sharing the free slots.** A cycle that makes both claims asks each with all the free slots
 *   of each queue, then keeps, per queue, the first jobs in claim order (priority desc, run_at,
 *   id: the order of both claims) up to the free slots, as one claim over both kinds of jobs
 *   would; the others are given back unrun (`jobRelease`: pending again, no attempt spent; see
 *   {@link shareSlots}). So a backlog of ordinary jobs never starves limited jobs of a higher
 *   priority, or of the same priority that waited longer, and the reverse. Never more jobs run
 *   than slots were free. A limited job given back has spent its rate start (its group's tat
 *   moved): a limited claim outranked so is not repeated until its next trigger or `pollMs`.
 * - **No spinning.** A limited claim that returned as many jobs as it asked for may run again at
 *   the next cycle (and freed slots of its queues refill in batches, as for the ordinary claim).
 *   One that returned fewer is not repeated until one of:
 *   - a job it claimed that holds a concurrency slot finishes here (the slot is free in the
 *     storage: this worker claims again at once, so the worker that frees a slot takes it);
 *   - a wake-up announcing jobs in one of the worker's queues (NOTIFY, a local enqueue, jobs
 *     woken or reclaimed by maintenance). A mere change of the database seen through
 *     `dataVersion` (any write of any process) counts only when the last limited claim found
 *     nothing ready, and at most once per `pollMs`: a full or rate-blocked limit stays so
 *     whatever other processes write;
 *   - the rate timer: `retryInMs` (the next claim reads the database clock a little after the
 *     start is due, which costs no start: up to one interval of lateness is caught up), plus up
 *     to 10 % random jitter so workers do not all ask at once (the jitter only adds: no worker
 *     asks before the start is due). Every worker of a busy group asks for each start, also
 *     after losing one, so a worker whose jobs sit in another queue than the others' still gets
 *     its share. A job
 *     under rate limits only frees no slot when it finishes, so its finish claims nothing;
 *   - a back-off timer, from `pollMs` doubling up to 8 × `pollMs` and reset when a limited claim
 *     fills, armed when a concurrency limit was full;
 *   - the poll, when nothing was ready at all: `pollMs` later, as the ordinary claim (delayed and
 *     retried limited jobs come due without a wake-up).
 * @internal
 */
import type { JobClaimLimitedResult, JobRow, LimitRow, Storage } from '../storage/storage.js';
import { sameLimits, typeLimitParams, typeLimitValues, type TypeFlow } from '../core/flow.js';
import { withMigrateHint } from '../core/migrate-hint.js';

/** Shortest time between two reads of the stored limits by one worker (ms). */
export const REFRESH_MS = 2_000;

/** The back-off of a limited claim that came back short grows up to this many poll intervals. */
const MAX_BACKOFF_POLLS = 8;

/** Share of random jitter added to the rate timer. */
const RATE_JITTER = 0.1;

/** Longest delay a timer takes (ms); a longer one fires at once, so a longer wait is cut to it. */
const MAX_TIMER_MS = 2_147_483_647;

/** Dependencies of the limited claim. @internal */
export interface LimitedClaimsDeps {
  storage: Storage;
  /** The worker's queues. */
  queues: readonly string[];
  pollMs: number;
  /** Runs a claim cycle soon (the claim loop's kick). */
  kick(): void;
  onError(message: string, err: unknown): void;
  /** Random number in [0, 1) for the jitter. @default Math.random */
  random?: () => number;
  /** Monotonic clock (ms). @default performance.now */
  now?: () => number;
}

/** One queue's share of a claim. */
export interface ClaimWant {
  name: string;
  limit: number;
}

/** When and where a worker runs its limited claim. @internal */
export class LimitedClaims {
  readonly #d: LimitedClaimsDeps;
  /** Any type limit is stored: limited jobs may be in any queue. */
  #anyType = false;
  /** This worker's queues that have a queue limit. */
  #limitedQueues = new Set<string>();
  /** The stored limits by scope and name (`type:t`, `queue:q`). */
  #byName = new Map<string, LimitRow>();
  /** A limited claim may run at the next cycle. */
  #armed = true;
  /** The last limited claim found nothing ready (no full limit, no rate-blocked group). */
  #idle = false;
  /** When the last limited claim returned (monotonic ms). */
  #lastClaimAt = -Infinity;
  /** Run one limited claim at the next cycle even when no limit is known (after a refresh). */
  #force = true;
  /** The stored limits last read, as text (a refresh that finds them changed claims once). */
  #seen = '';
  #backoffMs: number;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  /**
   * Jobs claimed by a limited claim that have not finished here yet, each with whether it holds
   * a concurrency slot (a job under rate limits only frees none when it finishes).
   */
  readonly #ids = new Map<string, boolean>();
  /** Rate-timed limited claims in a row that took nothing (another worker took the start). */
  #lastRefresh = -Infinity;
  #refreshing: Promise<void> | undefined;
  #refreshAgain = false;
  #stopped = false;

  readonly #now: () => number;

  constructor(deps: LimitedClaimsDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => performance.now());
    this.#backoffMs = deps.pollMs;
  }

  /**
   * Stores the limits of the registered types (`limitSet` where the stored row differs,
   * `limitDelete` where a type registered without limits has one), then reads every limit into
   * the cache. Runs before the worker's first claim.
   */
  async sync(types: Iterable<string>, flows: ReadonlyMap<string, TypeFlow> | undefined): Promise<void> {
    const s = this.#d.storage;
    try {
      let rows = await s.limitList();
      const stored = new Map(rows.filter((r) => r.scope === 'type').map((r) => [r.name, r]));
      let changed = false;
      for (const type of types) {
        const flow = flows?.get(type);
        const row = stored.get(type);
        if (flow) {
          if (row && sameLimits(row, typeLimitValues(flow))) continue;
          await s.limitSet(typeLimitParams(type, flow));
          changed = true;
        } else if (row) {
          await s.limitDelete({ scope: 'type', name: type });
          changed = true;
        }
      }
      if (changed) rows = await s.limitList();
      this.#apply(rows);
    } catch (e) {
      throw withMigrateHint(e);
    }
    this.#lastRefresh = this.#now();
  }

  /** Reads the stored limits again when the last read is older than {@link REFRESH_MS}. */
  maybeRefresh(): void {
    if (this.#now() - this.#lastRefresh >= REFRESH_MS) this.refresh();
  }

  /** Reads the stored limits again now (a read in flight is followed by one more), then runs one limited claim. */
  refresh(): void {
    if (this.#stopped) return;
    if (this.#refreshing) {
      this.#refreshAgain = true;
      return;
    }
    this.#lastRefresh = this.#now();
    this.#refreshing = this.#d.storage
      .limitList()
      .then(
        (rows) => {
          const changed = this.#apply(rows);
          if (!changed && this.#applies()) return;
          this.#force = true;
          this.#armed = true;
          this.#d.kick();
        },
        (err: unknown) => this.#d.onError('reading the stored limits failed', withMigrateHint(err)),
      )
      .finally(() => {
        this.#refreshing = undefined;
        if (this.#refreshAgain) {
          this.#refreshAgain = false;
          this.refresh();
        }
      });
  }

  /** Takes the stored limits into the cache; returns whether they differ from the last read. */
  #apply(rows: readonly LimitRow[]): boolean {
    const ours = new Set(this.#d.queues);
    this.#anyType = rows.some((r) => r.scope === 'type');
    this.#limitedQueues = new Set(rows.filter((r) => r.scope === 'queue' && ours.has(r.name)).map((r) => r.name));
    this.#byName = new Map(rows.map((r) => [`${r.scope}:${r.name}`, r]));
    const seen = JSON.stringify(rows.map((r) => [r.scope, r.name, r.concurrency, r.rateLimit, r.ratePeriodMs]));
    const changed = seen !== this.#seen;
    this.#seen = seen;
    return changed;
  }

  /** Whether limits may apply to this worker's queues. */
  #applies(): boolean {
    return this.#anyType || this.#limitedQueues.size > 0;
  }

  /**
   * The queues (with their free slots) the limited claim of this cycle asks for, or `null` when
   * it should not run now.
   */
  plan(free: readonly ClaimWant[]): ClaimWant[] | null {
    if (!this.#armed || free.length === 0) return null;
    if (this.#force || this.#anyType) return [...free];
    const want = free.filter((w) => this.#limitedQueues.has(w.name));
    return want.length > 0 ? want : null;
  }

  /**
   * Records what a limited claim asked for and returned, and decides when the next one runs.
   */
  claimed(asked: readonly ClaimWant[], r: JobClaimLimitedResult): void {
    this.#force = false;
    this.#lastClaimAt = this.#now();
    this.#idle = false;
    for (const row of r.rows) this.#ids.set(row.id, this.#holdsSlot(row.type, row.queue));
    const wanted = asked.reduce((n, w) => n + w.limit, 0);
    if (r.rows.length >= wanted) {
      // Filled: more may be ready; the next cycle may claim again.
      this.#backoffMs = this.#d.pollMs;
      this.#armed = true;
      this.#clearTimer();
      return;
    }
    this.#armed = false;
    this.#idle = !r.saturated && r.retryInMs === null;
    if (r.retryInMs !== null) {
      // The next start is due retryInMs after the database read its clock; the claim that takes
      // it reads the clock a little later still, which costs nothing: a start up to one interval
      // late keeps its turn (flow-rows.ts), while one a moment early would find nothing.
      // Every worker of a busy group asks for each start (one wins, the others find the next one
      // due): a worker that lost does not hold back, so a worker joining a group served by others
      // gets its share of the starts.
      const jitter = r.retryInMs * RATE_JITTER * (this.#d.random ?? Math.random)();
      this.#armIn(r.retryInMs + jitter);
    }
    // A full concurrency limit: back off. Nothing ready at all: the poll's pace (delayed and
    // retried limited jobs come due without a wake-up). A rate-blocked group alone waits for its timer.
    if (r.saturated) {
      this.#armIn(this.#backoffMs);
      this.#backoffMs = Math.min(this.#backoffMs * 2, this.#d.pollMs * MAX_BACKOFF_POLLS);
    } else if (r.retryInMs === null) this.#armIn(this.#d.pollMs);
  }

  /**
   * Jobs this worker claimed and gave back unrun: no longer counted as running here. `outranked`:
   * given back because jobs that come first in claim order took the free slots; then the limited
   * claim waits for its next trigger, or `pollMs` at most, instead of the next cycle.
   */
  gaveBack(rows: readonly JobRow[], outranked: boolean): void {
    let limited = false;
    for (const row of rows) limited = this.#ids.delete(row.id) || limited;
    if (!limited || !outranked) return;
    this.#armed = false;
    this.#armIn(this.#d.pollMs);
  }

  /** A limited claim failed: try again at the next cycle. */
  failed(): void {
    this.#armed = true;
  }

  /**
   * Jobs may be ready in `queue` (a wake-up): the next cycle may run a limited claim. A wake-up
   * that is only a change of the database (`news` false) arms it when the last limited claim
   * found nothing ready and `pollMs` has passed since: a full or rate-blocked limit stays so
   * whatever other processes write, and those writes come at the fleet's pace. Returns whether a
   * limited claim is due at the next cycle.
   */
  woken(queue: string, news = true): boolean {
    if (!this.#d.queues.includes(queue)) return false;
    if (news || (this.#idle && this.#now() - this.#lastClaimAt >= this.#d.pollMs)) this.#armed = true;
    return this.#armed && (this.#force || this.#anyType || this.#limitedQueues.has(queue));
  }

  /**
   * A job claimed by this worker finished here (its outcome written or given up). Returns true
   * when it was a limited job: its slot is free in the storage, and the caller claims again now.
   */
  finished(jobId: string): boolean {
    const slot = this.#ids.get(jobId);
    if (slot === undefined) return false;
    this.#ids.delete(jobId);
    if (!slot) return false;
    this.#armed = true;
    return true;
  }

  /** Stops the timers; a refresh in flight ends without a claim. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    await this.#refreshing;
  }

  /**
   * Whether a job of this type and queue counts against a concurrency limit (by the cache; a job
   * the cache knows no limit of was limited by one stored since: assumed to).
   */
  #holdsSlot(type: string, queue: string): boolean {
    const t = this.#byName.get(`type:${type}`);
    const q = this.#byName.get(`queue:${queue}`);
    if (t === undefined && q === undefined) return true;
    return (t?.concurrency ?? null) !== null || (q?.concurrency ?? null) !== null;
  }

  /** Arms the timer to fire in `ms`, unless it fires sooner already. */
  #armIn(ms: number): void {
    if (this.#stopped) return;
    const at = this.#now() + ms;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    this.#clearTimer();
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#armed = true;
      this.#d.kick();
    }, Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(ms))));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }
}

/** Claim order: priority desc, run_at, id (the order of both claims). */
function claimOrder(a: JobRow, b: JobRow): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Shares a cycle's free slots between the jobs of its two claims, each asked with all of them:
 * per queue, the first jobs in claim order up to the queue's free slots run (`run`, in claim
 * order); the rest go back (`back`). Without limited jobs the ordinary claim's rows run as they
 * came (it never returns more than it was asked for). @internal
 */
export function shareSlots(free: readonly ClaimWant[], ordinary: readonly JobRow[], limited: readonly JobRow[]): { run: JobRow[]; back: JobRow[] } {
  if (limited.length === 0) return { run: [...ordinary], back: [] };
  const left = new Map(free.map((w) => [w.name, w.limit]));
  const run: JobRow[] = [];
  const back: JobRow[] = [];
  for (const row of [...ordinary, ...limited].sort(claimOrder)) {
    const n = left.get(row.queue) ?? 0;
    if (n > 0) {
      left.set(row.queue, n - 1);
      run.push(row);
    } else back.push(row);
  }
  return { run, back };
}
