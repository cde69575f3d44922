/**
 * Writes run outcomes. Outcomes of many concurrent handlers are coalesced into one fenced
 * `jobFinishMany` per flush (see `Batcher`): items pushed while a flush is in flight go into the
 * next one, so under load each round trip carries many jobs. A job counts as done only once its
 * flush committed.
 *
 * A failed write loses nothing while the run holds its lease (see `writeWhileHeld`): the flush
 * is split so one bad outcome cannot sink its neighbours, and each outcome not written is
 * retried with backoff while its run stays in the worker's active set (so its lease keeps being
 * renewed). An outcome that can never be stored (it alone keeps failing while its lease is
 * confirmed) is replaced by a `failed` outcome saying why; if even that cannot be written the
 * outcome is given up and the lease left to expire. At shutdown (`drain()`), outcomes still
 * waiting for a retry are given up too. A retried write that reports "not applied" may have
 * committed before its reply was lost: the job row tells.
 *
 * The time reported with a stored outcome is the database's (`jobFinishMany` returns when it
 * stored each item; an outcome recognised from the job row takes the row's completed_at, or for
 * a retry its run_at less the delay), never this host's clock.
 * @internal
 */
import { messageOf } from '../errors.js';
import { Batcher } from '../internal/batcher.js';
import { storableErrorText } from '../internal/error-text.js';
import { writeWhileHeld, type Applied } from '../internal/write-retry.js';
import type { JobFinishItem, JobRow, Storage } from '../storage/storage.js';
import type { Logger } from '../types.js';

const MAX_BATCH = 1000;

/** What a retrying outcome write needs to know about its run. @internal */
export interface LeaseHolder {
  /** False once the run lost its lease or was given up: retrying stops. */
  readonly leaseHeld: boolean;
  /** The job as this run claimed it: its attempt tells this run's outcome from an operator's retry. */
  readonly row: { readonly attempt: number };
  /** The run's logger, with the job's fields on every line (default: the completer's logger). */
  readonly logger?: Logger;
}

/** An outcome as stored: the item (or the failure that replaced it) and the database time it was stored at. @internal */
export interface StoredOutcome {
  readonly item: JobFinishItem;
  /** When the database stored it (ms): the row's completed_at, or for a retry the time it was written. */
  readonly at: number;
}

/** Writes outcomes, coalesced and retried. @internal */
export class Completer {
  readonly #batch: Batcher<JobFinishItem, Applied>;
  readonly #reads: Batcher<string, JobRow | undefined>;
  readonly #giveUp = new AbortController();
  /** The stored time of each item a `jobFinishMany` applied, until `#write` takes it. */
  readonly #storedAt = new WeakMap<JobFinishItem, number>();
  /** `jobFinishMany` calls that succeeded (evidence that outcome writes work). */
  #written = 0;
  #failedCalls = 0;
  #warnedAt = 0;

  /**
   * @param storage where outcomes go
   * @param logger for failed writes
   * @param leaseMs the lease a probe renews (a heartbeat of the run whose outcome failed)
   */
  constructor(
    private readonly storage: Storage,
    private readonly logger: Logger,
    private readonly leaseMs: number,
  ) {
    this.#batch = new Batcher<JobFinishItem, Applied>((items) => this.#finishMany(items), MAX_BATCH, false, 'unsure');
    this.#reads = new Batcher(
      async (ids) => {
        const rows = new Map((await storage.jobGetMany({ ids })).map((r) => [r.id, r]));
        return ids.map((id) => rows.get(id));
      },
      MAX_BATCH,
      undefined,
    );
  }

  /**
   * Writes an outcome of `run`; resolves with the outcome stored (the item, or the failure that
   * replaced an unwritable one), or undefined when none was (the run no longer owns the job,
   * or the write was given up). Never rejects.
   */
  async finish(item: JobFinishItem, run: LeaseHolder): Promise<StoredOutcome | undefined> {
    const first = await this.#write(item, run);
    if (!('unwritable' in first)) return first.stored;
    // The outcome itself cannot be stored (too large, refused by the database): fail the job
    // with a reason instead, so it does not wait for its lease to expire and run again.
    const why = storableErrorText(`the outcome could not be stored: ${messageOf(first.unwritable)}`);
    const failed: JobFinishItem = { jobId: item.jobId, workerId: item.workerId, runCount: item.runCount, outcome: 'failed', error: why };
    const log = run.logger ?? this.logger;
    log.error('a job outcome cannot be stored; failing the job instead', { jobId: item.jobId, outcome: item.outcome, error: why });
    const second = await this.#write(failed, run);
    if (!('unwritable' in second)) return second.stored;
    log.error('the failure replacing an unstorable outcome cannot be stored either; giving up (the lease will expire)', {
      jobId: item.jobId,
      error: messageOf(second.unwritable),
    });
    return undefined;
  }

  /**
   * Waits until everything queued is written. Outcomes waiting for a retry are given up (their
   * leases will expire): `stop()` must not outlast its drain timeout.
   */
  async drain(): Promise<void> {
    this.#giveUp.abort();
    await this.#batch.drain();
  }

  async #write(item: JobFinishItem, run: LeaseHolder): Promise<{ stored: StoredOutcome | undefined } | { unwritable: unknown }> {
    const giveUp = this.#giveUp.signal;
    const r = await writeWhileHeld<JobFinishItem, Applied>({
      item,
      first: (i) => this.#batch.push(i),
      alone: async (i) => (await this.#finishMany([i]))[0] ?? false,
      probe: async () => (await this.storage.jobHeartbeat({ workerId: item.workerId, leaseMs: this.leaseMs, runs: [{ jobId: item.jobId, runCount: item.runCount }] })).includes(item.jobId),
      progress: () => this.#written,
      held: () => run.leaseHeld && !giveUp.aborted,
      signal: giveUp,
    });
    switch (r.kind) {
      case 'written': {
        const at = this.#storedAt.get(item);
        if (r.value === true && at !== undefined) return { stored: { item, at } };
        return { stored: r.value === 'unsure' || r.retried ? await this.#committedEarlier(item, run.row.attempt) : undefined };
      }
      case 'lost': {
        // An earlier attempt may have committed before its reply was lost (then the lease is
        // gone because the outcome was applied).
        const earlier = await this.#committedEarlier(item, run.row.attempt);
        if (earlier) return { stored: earlier };
        (run.logger ?? this.logger).warn('job outcome not written: the run no longer holds the job (its lease will expire or was taken)', { jobId: item.jobId, error: messageOf(r.error) });
        return { stored: undefined };
      }
      case 'unwritable':
        return { unwritable: r.error };
    }
  }

  async #finishMany(items: JobFinishItem[]): Promise<boolean[]> {
    let stored: (number | null)[];
    try {
      stored = await this.storage.jobFinishMany({ items });
    } catch (err) {
      // One line per second at most: a failed flush is split and retried in many calls.
      this.#failedCalls++;
      const now = Date.now();
      if (now - this.#warnedAt >= 1000) {
        this.logger.warn('writing job outcomes failed; retrying while the jobs are held', { failedCalls: this.#failedCalls, jobs: items.length, error: messageOf(err) });
        this.#warnedAt = now;
        this.#failedCalls = 0;
      }
      throw err;
    }
    this.#written++;
    return items.map((item, i) => {
      const at = stored[i];
      if (at === null || at === undefined) return false;
      this.#storedAt.set(item, at);
      return true;
    });
  }

  /**
   * Whether the job row shows this very outcome, applied by an attempt whose reply was lost.
   * An outcome keeps the run's run count and attempt; an operator's cancel and `retryJob` keep
   * the run count and the last error but reset the attempt, so a `pending` row with the same
   * error text is this run's retry only at this run's attempt.
   */
  async #committedEarlier(item: JobFinishItem, attempt: number): Promise<StoredOutcome | undefined> {
    let row: JobRow | undefined;
    try {
      row = await this.#reads.push(item.jobId);
    } catch {
      return undefined;
    }
    if (row === undefined || row.runCount !== item.runCount || row.attempt !== attempt) return undefined;
    const shows =
      item.outcome === 'completed'
        ? row.status === 'completed'
        : item.outcome === 'failed'
          ? row.status === 'failed' && row.lastError === item.error
          : row.status === 'pending' && row.lastError === item.error;
    if (!shows) return undefined;
    // A retry row keeps no write time, but its run_at is that time plus the delay.
    const at = item.outcome === 'retry' ? row.runAt - item.delayMs : row.completedAt;
    return at === null ? undefined : { item, at };
  }
}
