/**
 * Lease renewal: one statement extends every lease this worker holds. Runs the storage no
 * longer reports as held were cancelled or reclaimed: their handlers are aborted, after ONE read
 * of all their statuses (to tell a cancel from a lost lease).
 *
 * When heartbeats fail (the database is unreachable or slow), a run's lease runs out `leaseMs`
 * after it was last renewed, and another worker may then reclaim the job. So each lease is also
 * measured locally, conservatively: from the moment the last successful heartbeat was SENT (the
 * database renewed the lease no earlier), minus a margin for timer lateness. A watch timer set
 * for the earliest such expiry abandons the runs whose lease must have run out — their handlers
 * see `abortSignal` with a `LeaseLostError` and their writes stop being retried — before the
 * job can run elsewhere, whether heartbeats fail quickly or hang.
 *
 * Leases that run out this way are logged as one warning naming the jobs (up to 100): their
 * runs end without a stored outcome and the jobs run again, which an operator must be able to
 * tell from a handler's own failure.
 * @internal
 */
import { JobCancelledError, LeaseLostError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import type { Logger } from '../types.js';
import type { JobRun } from './executor.js';

/** Share of the lease given up early, for timer lateness (at most {@link MAX_MARGIN_MS}). */
const MARGIN_SHARE = 0.1;
const MAX_MARGIN_MS = 1000;
/** Job ids named in one warning at most (the count is always given). */
const MAX_IDS_LOGGED = 100;

/** Renews the leases of a worker's runs and abandons the ones lost. @internal */
export class Heartbeat {
  readonly #marginMs: number;
  #watch: NodeJS.Timeout | undefined;
  #watchAt = Infinity;

  /**
   * @param storage where leases live
   * @param workerId the lease owner
   * @param leaseMs lease length
   * @param runs the worker's runs (all of them: a newer run of a job must not hide an older one)
   * @param logger where lost leases are reported (warnings)
   */
  constructor(
    private readonly storage: Storage,
    private readonly workerId: string,
    private readonly leaseMs: number,
    private readonly runs: () => Iterable<JobRun>,
    private readonly logger?: Logger,
  ) {
    this.#marginMs = Math.min(MAX_MARGIN_MS, Math.floor(leaseMs * MARGIN_SHARE));
  }

  /** One heartbeat: extends the leases held; abandons the runs lost or run out. */
  async beat(): Promise<void> {
    let live = this.#expire();
    if (live.length === 0) return;
    // A job this worker runs twice (claimed again after its lease was lost) is held by the newest run only.
    const newest = new Map<string, number>();
    for (const r of live) newest.set(r.fence.jobId, Math.max(newest.get(r.fence.jobId) ?? 0, r.fence.runCount));
    if (live.some((r) => newest.get(r.fence.jobId) !== r.fence.runCount)) {
      for (const r of live) if (newest.get(r.fence.jobId) !== r.fence.runCount) r.leaseLost(new LeaseLostError('the job was claimed again by this worker: this run lost its lease'));
      live = live.filter((r) => r.leaseHeld);
    }
    const sentAt = Date.now();
    let held: Set<string>;
    try {
      held = new Set(await this.storage.jobHeartbeat({ workerId: this.workerId, leaseMs: this.leaseMs, runs: live.map((r) => ({ jobId: r.fence.jobId, runCount: r.fence.runCount })) }));
    } catch (err) {
      this.#expire();
      throw err;
    }
    const lost: JobRun[] = [];
    for (const run of live) {
      if (held.has(run.fence.jobId)) run.leaseFrom = Math.max(run.leaseFrom, sentAt);
      else if (run.leaseHeld) lost.push(run);
    }
    this.#expire();
    if (lost.length === 0) return;
    const rows = await this.storage.jobGetMany({ ids: lost.map((r) => r.fence.jobId) });
    const cancelled = new Set(rows.filter((r) => r.status === 'cancelled').map((r) => r.id));
    for (const run of lost) {
      const reason = cancelled.has(run.fence.jobId) ? new JobCancelledError() : new LeaseLostError('the job lease was lost (reclaimed or taken by another worker)');
      run.leaseLost(reason, true);
    }
  }

  /** Abandons the runs whose lease must have run out; re-arms the watch; returns the runs still holding theirs. */
  #expire(): JobRun[] {
    const now = Date.now();
    const live: JobRun[] = [];
    let next = Infinity;
    const ranOut: string[] = [];
    for (const run of this.runs()) {
      if (!run.leaseHeld) continue;
      const end = run.leaseFrom + this.leaseMs - this.#marginMs;
      if (now >= end) {
        ranOut.push(run.fence.jobId);
        run.leaseLost(new LeaseLostError(`the job lease ran out: heartbeats failed for longer than the lease (${this.leaseMs} ms)`));
      } else {
        live.push(run);
        next = Math.min(next, end);
      }
    }
    this.#arm(next, now);
    if (ranOut.length > 0) {
      this.logger?.warn('job leases ran out: heartbeats did not renew them in time (failing or too slow); their runs are abandoned, and a job whose outcome is not stored yet will run again', {
        workerId: this.workerId,
        leaseMs: this.leaseMs,
        count: ranOut.length,
        jobIds: ranOut.slice(0, MAX_IDS_LOGGED),
      });
    }
    return live;
  }

  #arm(at: number, now: number): void {
    if (at === this.#watchAt) return;
    if (this.#watch) clearTimeout(this.#watch);
    this.#watch = undefined;
    this.#watchAt = at;
    if (at === Infinity) return;
    this.#watch = setTimeout(() => {
      this.#watch = undefined;
      this.#watchAt = Infinity;
      this.#expire();
    }, at - now);
    this.#watch.unref();
  }
}
