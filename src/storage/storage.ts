/**
 * The one storage contract. Every method is one atomic (usually batched) state change
 * spoken in queue and workflow terms; drivers implement it with their database's best tool.
 * Nothing above `storage/` sees SQL or driver error codes.
 *
 * Conventions every driver follows:
 * - Times are integers: milliseconds since the Unix epoch, UTC.
 * - "now" is the database clock unless the driver was built with an injected `clock`
 *   (tests); SQLite has no server, so its clock is the host's.
 * - Payload columns (`argsJson`, `resultJson`, `metaJson`, signal payloads, step outputs)
 *   are opaque JSON text, stored and returned byte for byte. `null` means absent.
 * - Every write to a claimed job is fenced by {@link Fence}: it applies only while the job is
 *   `running`, `locked_by = workerId` and `run_count = runCount`; otherwise it changes nothing.
 * - Fan-out accounting: whenever a job with a `fanOutId` reaches a terminal status (through
 *   `jobFinishMany`, `jobReclaimExpired`, `jobCancel`, `fanOutExpire` or sibling
 *   cancellation), the same transaction counts it on its fan-out, decides the fan-out when the
 *   strategy allows (see {@link FanOutRow}), and on the deciding transition turns the parent
 *   from `waiting` to `pending` exactly once; a failed decision also cancels the unfinished
 *   siblings (and their subtrees), which are counted as cancelled. Every job cancelled as part of
 *   a subtree (by `jobCancel`, or because an ancestor failed) is counted the same way on its own
 *   fan-out.
 * @module
 */
import type { JobStatus } from '../types.js';
import type { Fence, JobInsertManyParams, JobProgressManyParams, JobRow } from './job-rows.js';
import type { BulkResult, JobFilter, JobListParams, JobListScanParams, JobListScanResult, QueueSummaryRow, WorkerBeatParams, WorkerRow } from './operator-rows.js';
import type { EventAppendManyParams, EventPruneParams, EventReadAfterParams, EventRow, EventSubscriberBeatParams, EventSubscriberBeatResult } from './event-rows.js';
import type { JobClaimLimitedParams, JobClaimLimitedResult, LimitRow, LimitScope, LimitSetParams, LimitUsageRow } from './flow-rows.js';
import type { ScheduleFireParams, ScheduleRow, ScheduleUpsertParams, ScheduleUpsertResult } from './schedule-rows.js';
import type { PatchSummaryRow, StepPatchSummaryParams } from './patch-rows.js';
import type { FanOutCollected, FanOutRow, JobPruneParams, JobPruneResult, JobSuspendFanOutParams, JobSuspendParams, JobSuspendUntilParams, JobSuspendUntilResult, SignalConsumeParams, SignalConsumeResult, SignalRow, StepRecordParams, StepRow } from './workflow-rows.js';

export type { Fence, JobInsert, JobInsertManyParams, JobProgressItem, JobProgressManyParams, JobRow } from './job-rows.js';

export type { ScheduleFireParams, ScheduleRow, ScheduleUpsertParams, ScheduleUpsertResult } from './schedule-rows.js';

export type { JobClaimLimitedParams, JobClaimLimitedResult, LimitRow, LimitScope, LimitSetParams, LimitUsageRow } from './flow-rows.js';

export type { BulkResult, BulkSkip, JobFilter, JobListParams, JobListScanParams, JobListScanResult, QueueSummaryRow, WorkerBeatParams, WorkerRow } from './operator-rows.js';

export type { EventAppendItem, EventAppendManyParams, EventPruneParams, EventReadAfterParams, EventRow, EventSubscriberBeatParams, EventSubscriberBeatResult } from './event-rows.js';
export type { FanOutCollected, FanOutRow, JobPruneParams, JobPruneResult, JobSuspendFanOutParams, JobSuspendParams, JobSuspendUntilParams, JobSuspendUntilResult, SignalConsumeParams, SignalConsumeResult, SignalRow, StepRecordParams, StepRow } from './workflow-rows.js';
export { PATCH_STEP_PREFIX, type PatchSummaryRow, type StepPatchSummaryParams } from './patch-rows.js';
/** Reasons a bulk action gives for a job it left alone (stable texts). */
export { SKIP_ALREADY_FINISHED, SKIP_NOT_FOUND, SKIP_UNIQUE_HELD } from './shared/contract-messages.js';
export { scanBudgetApplies } from './shared/scan-budget.js';

/** Which SQL dialect a driver speaks. */
export type Dialect = 'sqlite' | 'postgres' | 'mysql';

/** `jobClaim` parameters: one round trip claims for every queue. */
export interface JobClaimParams {
  workerId: string;
  /** Queues to claim from, each with how many jobs at most (limit >= 1). */
  queues: { name: string; limit: number }[];
  /** Lease length; lease_expires_at = now + leaseMs. */
  leaseMs: number;
}

/** One fenced outcome of a run, for `jobFinishMany`. */
export type JobFinishItem = Fence &
  (
    | { outcome: 'completed'; resultJson: string | null }
    | { outcome: 'failed'; error: string }
    /** Back to pending for another attempt, run_at = now + delayMs. */
    | { outcome: 'retry'; error: string; delayMs: number }
  );

/** `jobFinishMany` parameters. */
export interface JobFinishManyParams {
  items: JobFinishItem[];
}

/** `jobHeartbeat` parameters. */
export interface JobHeartbeatParams {
  workerId: string;
  /** The runs this worker believes it holds. */
  runs: { jobId: string; runCount: number }[];
  leaseMs: number;
}

/** `jobRelease` parameters: give jobs back to `pending` (shutdown), attempt not consumed. */
export interface JobReleaseParams {
  runs: Fence[];
}

/** A job whose lease expired and that `jobReclaimExpired` took back. */
export interface ReclaimedJob {
  id: string;
  type: string;
  queue: string;
  /** `pending` (will run again) or `failed` (attempts spent). */
  status: 'pending' | 'failed';
  attempt: number;
  maxRetries: number;
}

/** Stops a `listen()` subscription. */
export type Unlisten = () => Promise<void>;

/**
 * The storage contract. Drivers: `SqliteStorage`, `PostgresStorage`, `MysqlStorage`.
 *
 * `Tx` is the handle of a caller's own open transaction that `jobInsertMany` accepts (a
 * `better-sqlite3` `Database`, a `pg` client, a `mysql2` connection).
 *
 * Wake-up support is reported one way only, by which optional method a driver has: `listen`
 * (pushed cross-process wake-ups) or `dataVersion` (a cheap counter workers poll); a driver with
 * neither is polled by claims on the worker's interval.
 */
export interface Storage<Tx = unknown> {
  /** The driver's SQL dialect. */
  readonly dialect: Dialect;

  /** Creates or upgrades the schema. Idempotent; safe from many processes at once. @throws SchemaTooNewError */
  migrate(): Promise<void>;
  /** Releases connections the driver opened (not a pool or database the user passed in). */
  close(): Promise<void>;
  /** The clock the driver compares leases and run-at against (ms). */
  clockNow(): Promise<number>;

  /**
   * Inserts jobs atomically (one round trip where the dialect allows); wakes listeners. Each
   * row's `limited` is 1 when its type has a type limit row (read in the same statement or
   * transaction). `inserted`: ids of rows inserted; `ids`, per item in order: the id the item
   * resolved to (its own when inserted, the replaced job's for a debounce, the holder's for
   * `onConflict: 'existing'`, null when skipped). @throws DuplicateJobError
   */
  jobInsertMany(p: JobInsertManyParams<Tx>): Promise<{ inserted: string[]; ids: (string | null)[] }>;
  /** One job by id. */
  jobGet(p: { id: string }): Promise<JobRow | undefined>;
  /**
   * Jobs by id (ids not found are left out; any order). One round trip for up to thousands of
   * ids; a repeated id yields its job once; an empty list reads nothing.
   */
  jobGetMany(p: { ids: string[] }): Promise<JobRow[]>;
  /**
   * Jobs matching the filter, ordered by id (newest first unless `order: 'asc'`), at most
   * `limit`, after `afterId` in that order (keyset pagination). Reads rows in any status.
   */
  jobList(p: JobListParams): Promise<JobRow[]>;
  /**
   * {@link jobList} on a scan budget: reads at most `scanLimit` jobs in the order after `afterId`
   * (every job counts, matching or not) and returns the matches among them, at most `limit`,
   * with where the read stopped (`scanEnd`). A listing its indexes already bound ignores the
   * budget and answers as `jobList` with `scanEnd` null: no filter, statuses alone, a parent or
   * a fan-out (see `scanBudgetApplies`), and statuses a driver reads through their own index
   * (each driver's `listing.ts`). One statement: the jobs read and the matches are one snapshot.
   */
  jobListScan(p: JobListScanParams): Promise<JobListScanResult>;
  /** How many jobs match the filter. */
  jobCount(p: JobFilter): Promise<number>;
  /** Job counts by status, all queues or one. */
  jobCountByStatus(p: { queue?: string }): Promise<Record<JobStatus, number>>;
  /**
   * Job counts by status, all queues or one, each exact up to `cap` (an integer >= 0) and
   * `cap + 1` for a status with more jobs. Each status is counted through an index holding its
   * rows, reading at most about `cap + 1` entries of it (each driver's `counts.ts` names the
   * exceptions), so the cost does not grow with the jobs kept.
   */
  jobCountByStatusCapped(p: { cap: number; queue?: string }): Promise<Record<JobStatus, number>>;
  /**
   * Claims ready jobs: `pending`, run_at <= now, queue not paused; ordered by priority desc,
   * run_at, id; at most `limit` per queue; never a row another claimer holds. Each claimed row
   * becomes `running` with attempt + 1, run_count + 1, locked_by, started_at = now,
   * heartbeat_at = now, lease_expires_at = now + leaseMs. Returned in claim order. Never takes
   * a `limited` job, nor any job of a queue that has a queue limit (those are for
   * {@link jobClaimLimited}).
   */
  jobClaim(p: JobClaimParams): Promise<JobRow[]>;
  /**
   * Claims ready jobs that limits govern — `limited` jobs, and every job of a queue with a queue
   * limit — in one transaction serialized with every other `jobClaimLimited` (see flow-rows.ts):
   * at most `limit` per queue, each set `running` as `jobClaim` sets it, only while every
   * concurrency group of the job stays within its limit and every rate group allows a start now
   * (rate state updated in the same transaction). Among the jobs allowed, claim order (priority
   * desc, run_at, id) within a queue; a group that is full or rate-blocked never hides another
   * group's ready jobs, however long its own backlog. Paused queues and paused jobs are skipped.
   */
  jobClaimLimited(p: JobClaimLimitedParams): Promise<JobClaimLimitedResult>;
  /**
   * Applies run outcomes in one transaction. Each item is fenced; returns, per item in order,
   * the database time the outcome was stored at (the row's completed_at for `completed` and
   * `failed`; the write time for `retry`), or `null` when the item's fence failed and nothing
   * was written. Events report this stored time, never the host's clock. Completed/failed rows set completed_at and clear the lease; retry rows
   * go back to `pending` with last_error set. Fan-out accounting applies (see module docs).
   *
   * A job that reaches `failed` here cancels, in the same transaction, every unfinished
   * descendant (pending, running, waiting or paused children, grandchildren, ...) exactly as
   * `jobCancel` cancels a subtree: cancelled fan-out children are counted on their own fan-outs
   * (which may decide them), while the failing job itself is counted as failed on its fan-out, if
   * it is a child. Their runs lose their fences, so their handlers see `abortSignal` at their
   * next heartbeat. A job that `completed` leaves its children alone (a fan-out decided early,
   * e.g. by a threshold, lets its late children finish and be counted), and so does a `retry`
   * (the job runs again and its checkpointed fan-out still owns them). An item whose fence
   * failed changes nothing, children included. Every item's fence is judged against the state
   * before the call: a child that completes in the same batch as a sibling whose failure decides
   * their fail-fast fan-out ends `completed` (and its item reports true), not cancelled. Items may
   * be written in several statements (split by size), always inside the one transaction.
   */
  jobFinishMany(p: JobFinishManyParams): Promise<(number | null)[]>;
  /** Extends leases of the given runs; returns the job ids this worker still holds. */
  jobHeartbeat(p: JobHeartbeatParams): Promise<string[]>;
  /**
   * Stores the latest progress of runs, in one transaction (one statement where the dialect
   * allows). Each item is fenced: it sets the job's progress value, message and progress time
   * (= now) only while the job is `running`, `locked_by = workerId` and `run_count = runCount`,
   * and changes nothing else. Returns, per item in order, the time it was stored at (now), or
   * `null` when its fence failed (nothing written) or a later item of its job applies instead.
   * @throws InvalidArgumentError a value not finite, a message neither text nor null (nothing written)
   */
  jobProgressMany(p: JobProgressManyParams): Promise<(number | null)[]>;
  /** Fenced: running → pending, attempt − 1, lease cleared. Returns the ids released. */
  jobRelease(p: JobReleaseParams): Promise<string[]>;
  /**
   * Takes back `running` jobs whose lease expired — strictly after it: `lease_expires_at < now`
   * on the database clock, so a lease is still held at the very millisecond it ends — to
   * `pending` when attempt <= maxRetries,
   * else `failed` with a last_error saying the lease expired and retries are spent (fan-out
   * accounting applies). A reclaim consumes the attempt. A job reclaimed to `failed` cancels its
   * unfinished descendants in the same transaction, as a failed outcome of `jobFinishMany` does;
   * one reclaimed to `pending` leaves them alone.
   */
  jobReclaimExpired(p: { limit: number }): Promise<ReclaimedJob[]>;
  /**
   * Wakes `waiting` jobs whose wake_at has passed (→ `pending`, wake_at and wait_signal
   * cleared), and parents still `waiting` on a fan-out already decided (recovery sweep).
   * Returns the ids woken.
   */
  jobWakeDue(p: { limit: number }): Promise<string[]>;
  /**
   * Cancels a non-terminal job and its whole subtree (children, grandchildren) in one
   * transaction; fan-out accounting applies to the job itself and to each cancelled descendant
   * (counted on its own fan-out). Returns every id the call cancelled: the job, its subtree, and
   * the siblings (with their subtrees) cancelled by a fan-out decision the cancel caused
   * (empty when the job was already terminal). @throws JobNotFoundError
   */
  jobCancel(p: { id: string }): Promise<string[]>;
  /** pending → paused. @throws JobNotFoundError, InvalidStateError */
  jobPause(p: { id: string }): Promise<void>;
  /** paused → pending. @throws JobNotFoundError, InvalidStateError */
  jobResume(p: { id: string }): Promise<void>;
  /**
   * failed/cancelled → pending with attempt 0, run_at now, last_error kept; drops the job's
   * checkpoints, fan-outs and fan-out children so a workflow starts clean.
   *
   * A retried fan-out child leaves its fan-out's counters in the same transaction (`failed` or
   * `cancelled` minus one, with the fan-out locked in the driver's lock order) and is counted
   * again when it reaches a terminal status, so every child is counted once, by its latest
   * outcome. A fan-out still `running` is then decided by the children's final outcomes only
   * (a collect-all fan-out waits for the retried child). A fan-out already decided keeps its
   * status, `decided_at` and parent as they are — the decision is not reopened and the parent is
   * not woken again — while its counters keep equalling its children's terminal statuses; the
   * rule applied to those final counters may then differ from the recorded decision.
   *
   * With `fromFailedStep: true` the workflow resumes where it failed instead: the job goes back
   * to `pending` (attempt 0, run_at now, last_error kept, fan-out accounting as above) and keeps
   * its checkpoints, fan-outs and sub-jobs, except that, looking at its last checkpoint (highest
   * step index):
   * - a `waiting` checkpoint, or a `failed` one other than a timed-out signal wait (step name
   *   `signal:…`, which the workflow went past), is deleted (that step runs again);
   * - a fan-out step (a `sdj_fan_outs` row of this parent at that step index) that was not
   *   decided `succeeded`, or has a failed or cancelled child, is reopened: those children are
   *   retried from scratch (each as `jobRetry` does, their own subtrees and checkpoints dropped),
   *   its completed and still-live children are kept (children retried by hand since the failure
   *   count as what they are now), its counters become succeeded = completed children, failed =
   *   cancelled = 0, status `running` (decided_at null) — or `succeeded` (decided_at now) when
   *   the completed children already decide it —, a deadline is moved to now + (deadline_at −
   *   created_at) and created_at to now; the parent then waits on it again when it replays.
   *   (Rules in `shared/retry-rules.ts`.) A fan-out whose children were deleted (fewer
   *   children than `total`) is refused with InvalidStateError and nothing changes.
   * Any other checkpoint is kept; a job without checkpoints simply runs again.
   * @throws JobNotFoundError, InvalidStateError, DuplicateJobError (its unique key is held again)
   */
  jobRetry(p: { id: string; fromFailedStep?: boolean }): Promise<void>;
  /**
   * Retries many jobs from scratch, as {@link jobRetry} does for each, in one short transaction
   * (callers pass at most a few hundred ids). A job that cannot be retried is skipped with a
   * reason, never an error: not found, not failed/cancelled, or its unique key held by a live
   * job. An id given twice is acted on once. Fan-out accounting as in `jobRetry`.
   */
  jobRetryMany(p: { ids: string[] }): Promise<BulkResult>;
  /**
   * Deletes many finished jobs in one short transaction, each with its whole subtree and every
   * checkpoint, signal and fan-out row of the jobs deleted (as retention does). Skipped with a
   * reason: not found, not finished, a descendant not finished, or a parent not finished (a
   * sub-job of a live workflow is not deleted alone). A given id deleted as part of another
   * given id's subtree in the same call counts as done. Rows locked by other transactions are
   * waited for (the transaction is short).
   */
  jobDeleteMany(p: { ids: string[] }): Promise<BulkResult>;

  /**
   * Deletes finished workflows whose retention age has passed, in one short transaction: up to
   * `limit` root jobs (no parent) each of which, with its whole subtree (children at any depth),
   * is `completed`, `failed` or `cancelled` and past the age given for its own status, measured
   * against the database clock (`now - completed_at > age`). A status whose age is `null` is kept
   * forever, and so is any workflow holding a job of that status. Each such root is deleted
   * together with its subtree and every checkpoint, signal and fan-out row of the jobs deleted.
   * A job that is not a root is never a candidate itself; a root with any descendant not yet due
   * is skipped (and takes no place in the limit). Ages are whole ms from 0 to
   * `Number.MAX_SAFE_INTEGER` (fractions are floored); a limit of 0 deletes nothing.
   * Rows locked by other transactions are skipped, never waited for, and at most one prune runs
   * at a time across every process sharing the storage (a second caller returns `busy: true`
   * with nothing deleted). Returns the number of jobs deleted (roots and descendants) and of
   * roots deleted. A due root held by another transaction may take a place of the limit without
   * being deleted, so `roots < limit` does not prove that nothing else is due; a call that
   * deletes no root does (for the rows not held at that moment). The same call deletes rate
   * state rows whose tat passed more than a minute ago (an absent row behaves exactly like one
   * whose tat is that old; the minute covers a limited claim whose now was read a little earlier).
   * @throws InvalidArgumentError on an age or limit outside those bounds
   */
  jobPrune(p: JobPruneParams): Promise<JobPruneResult>;

  /**
   * Upserts a limit row (type limits in `sdj_type_limits`, queue limits on the `sdj_queues` row). A
   * type row that did not exist marks the type's non-terminal jobs `limited` in the same
   * transaction. Rate state: without a rate limit it is deleted; with a rate that differs from
   * the stored one, a tat later than now + the new interval (period / limit) is set to that, so
   * a faster rate applies at once and a slower one keeps the spacing already there.
   */
  limitSet(p: LimitSetParams): Promise<void>;
  /**
   * Removes a limit (a queue's limits are cleared on its `sdj_queues` row, the row kept) and its
   * rate state; for a type, its non-terminal jobs are marked not `limited` in the same transaction.
   * Returns whether a limit existed.
   */
  limitDelete(p: { scope: LimitScope; name: string }): Promise<boolean>;
  /** Every limit, type rows then queue rows, each by name. */
  limitList(): Promise<LimitRow[]>;
  /** How full each limit of `limitList` is, same order. Reads running rows and pending counts through indexes. */
  limitUsage(): Promise<LimitUsageRow[]>;

  /** Marks a queue paused (claims skip it) or not. */
  queueSetPaused(p: { queue: string; paused: boolean }): Promise<void>;
  /**
   * Every queue that has a live or failed job or a `sdj_queues` row, by name, with its counts
   * and oldest due pending age. Reads finished rows only through an index of failed jobs (never
   * counting completed ones).
   */
  queueSummary(): Promise<QueueSummaryRow[]>;
  /**
   * {@link queueSummary}'s rows (same queues, order and oldest pending age), with each count
   * (pending, running, waiting, pausedJobs, failed) exact up to `cap` (an integer >= 0) and
   * `cap + 1` when the queue has more jobs in that status. Reads each queue's pending, paused
   * and failed jobs through indexes keyed by queue, at most about `cap + 1` entries each; running
   * and waiting jobs are read once for every queue (see each driver's `counts.ts`).
   */
  queueSummaryCapped(p: { cap: number }): Promise<QueueSummaryRow[]>;

  /**
   * Upserts a worker's registry row: `started_at` kept from the first beat, `last_seen_at` =
   * now, expiry = now + `ttlMs`; deletes rows of other workers whose expiry passed. One statement
   * (or one short transaction).
   */
  workerBeat(p: WorkerBeatParams): Promise<void>;
  /** Workers whose expiry has not passed, by name then id. */
  workerList(): Promise<WorkerRow[]>;
  /** Deletes a worker's registry row (a worker that stops). */
  workerRemove(p: { id: string }): Promise<void>;

  /**
   * Appends fleet events in one atomic write, with consecutive ids in item order taken from the
   * head counter inside it (see `event-rows.ts`), `at` = now; PostgreSQL also notifies
   * `eventListen` at commit. Returns the ids, in item order. @throws InvalidArgumentError
   */
  eventAppendMany(p: EventAppendManyParams): Promise<number[]>;
  /** Feed events with id > `afterId`, in id order, at most `limit`. @throws InvalidArgumentError */
  eventReadAfter(p: EventReadAfterParams): Promise<EventRow[]>;
  /** Deletes events stored over `olderThanMs` ago and ids <= head − `keep`; returns how many. @throws InvalidArgumentError */
  eventPrune(p: EventPruneParams): Promise<number>;
  /** Upserts a subscriber's presence (expiry now + `ttlMs`), deletes expired others, returns the head id. @throws InvalidArgumentError */
  eventSubscriberBeat(p: EventSubscriberBeatParams): Promise<EventSubscriberBeatResult>;
  /** How many fleet subscribers' presence rows have not expired (relays write only while some have). */
  eventSubscribersActive(): Promise<number>;
  /** Deletes a fleet subscriber's presence row (an unknown id does nothing). @throws InvalidArgumentError */
  eventSubscriberRemove(p: { id: string }): Promise<void>;

  /**
   * Every checkpoint of a job, by step index; with `withTimes`, each row carries `createdAt`
   * (drivers return it always; the facade leaves it out otherwise, so rows compare equal to
   * what was recorded). A page: with `afterIndex`, only the checkpoints whose index is greater;
   * with `limit` (a positive integer), at most that many, the lowest indexes first.
   */
  stepList(p: { jobId: string; withTimes?: boolean; afterIndex?: number; limit?: number }): Promise<StepRow[]>;
  /**
   * Fenced insert of a checkpoint; an existing `waiting` row at that index is replaced,
   * any other existing row is kept. Returns false when the fence failed or a finished row exists.
   */
  stepRecord(p: StepRecordParams): Promise<boolean>;
  /** Many fenced {@link stepRecord}s in one transaction (workers coalesce concurrent checkpoints); per item, applied. */
  stepRecordMany(p: { items: StepRecordParams[] }): Promise<boolean[]>;
  /** Per job type and patch id, what runs stored for `ctx.patched`, read in one statement (see {@link PatchSummaryRow}). */
  stepPatchSummary(p: StepPatchSummaryParams): Promise<PatchSummaryRow[]>;
  /**
   * Fenced, one transaction: records the fan-out step, inserts the fan-out and all children
   * (batched), turns the parent `waiting` (attempt − 1, lease cleared, wake_at = deadline).
   * Returns false (and writes nothing) when the fence failed.
   */
  jobSuspendFanOut(p: JobSuspendFanOutParams): Promise<boolean>;
  /** Fenced, one transaction: records `step`, turns the job `waiting` (attempt − 1). */
  jobSuspend(p: JobSuspendParams): Promise<boolean>;
  /**
   * Fenced, one transaction, on the database clock: wake time = `wakeAt` ?? now + `delayMs`;
   * unless `recorded`, records the step `{ status: 'completed', outputJson: JSON of the wake
   * time }` (kept if a finished row exists there); then, when now >= the wake time, returns
   * `elapsed` (the job stays `running`), else suspends like `jobSuspend` with wake_at = the wake
   * time and returns `suspended`. `lost` (nothing written) when the fence failed. At most one
   * call per `ctx.sleep` / `ctx.sleepUntil`: a replayed timer whose recorded wake time is not
   * after the run's stored `started_at` (database time) has passed and needs no call.
   */
  jobSuspendUntil(p: JobSuspendUntilParams): Promise<JobSuspendUntilResult>;
  /** One fan-out by id. */
  fanOutGet(p: { id: string }): Promise<FanOutRow | undefined>;
  /**
   * Fails a still-running fan-out whose deadline passed, cancelling its unfinished children.
   * Returns true if it applied.
   */
  fanOutExpire(p: { id: string }): Promise<boolean>;
  /**
   * One transaction, on the database clock: expires the fan-out as {@link fanOutExpire} does
   * when it is still running and its deadline has passed, then reads it and its children
   * (index order). `undefined` when no such fan-out exists. One call per fan-out resume.
   */
  fanOutCollect(p: { id: string }): Promise<FanOutCollected | undefined>;

  /**
   * Buffers a signal for a job (FIFO per job and name) and, if the job is `waiting` for that
   * name, turns it `pending`. @throws JobNotFoundError, InvalidStateError (terminal job)
   */
  signalSend(p: { jobId: string; name: string; payloadJson: string | null }): Promise<void>;
  /**
   * The signals sent to a job, consumed or still buffered, oldest first (by `seq`), at most
   * `limit` (a positive integer); with `afterSeq`, only those whose `seq` is greater (the next
   * page). A read: an unknown job has none.
   */
  signalList(p: { jobId: string; limit: number; afterSeq?: number }): Promise<SignalRow[]>;
  /**
   * Fenced, one transaction, in this order:
   * 1. the oldest unconsumed signal of that name exists → mark it consumed, record the step
   *    `{ status: 'completed', outputJson: <the signal's payloadJson>, error: null }`, return consumed;
   * (deadline: now + `timeoutMs` when given, else `deadlineAt`)
   * 2. else the deadline is set and now >= deadline → record the step
   *    `{ status: 'failed', outputJson: null, error: 'signal wait timed out' }`, return timed-out;
   * 3. else record (or keep) the step `{ status: 'waiting', outputJson: JSON of the deadline (or 'null') }`
   *    and suspend like `jobSuspend` with wait_signal = signalName, wake_at = the deadline; return suspended.
   * When the fence fails nothing is written and the result is `lost`.
   */
  signalConsumeOrWait(p: SignalConsumeParams): Promise<SignalConsumeResult>;

  /**
   * Creates or replaces a schedule definition, deciding against the stored row in one atomic
   * statement or transaction (so definitions racing with fires from other processes never
   * fire a slot twice):
   * - no row: inserted with next_run_at = `nextRunAt`;
   * - same `specJson` as stored: options replaced, next_run_at and last_run_at kept (a late
   *   definition never moves next_run_at back to a slot another process already fired);
   * - another spec: spec, options and next_run_at = `nextRunAt` replaced — unless `nextRunAt` is
   *   at or before last_run_at: then nothing is written and the result carries last_run_at.
   * So next_run_at is always after last_run_at.
   */
  scheduleUpsert(p: ScheduleUpsertParams): Promise<ScheduleUpsertResult>;
  /** Removes a schedule. Returns whether it existed. */
  scheduleDelete(p: { name: string }): Promise<boolean>;
  /** Every schedule, by name. */
  scheduleList(): Promise<ScheduleRow[]>;
  /** Schedules with next_run_at <= now. */
  scheduleListDue(p: { limit: number }): Promise<ScheduleRow[]>;
  /** Compare-and-set fire: returns the inserted job ids, or null when another scheduler won. */
  scheduleFire(p: ScheduleFireParams): Promise<string[] | null>;

  /**
   * Subscribes to cross-process wake-ups: `onWake(queue)` when jobs in a queue became ready.
   * Present only on drivers that can push them (PostgreSQL LISTEN/NOTIFY); the driver reconnects
   * by itself after errors.
   */
  listen?(onWake: (queue: string) => void): Promise<Unlisten>;

  /** `onAppend()` after any process committed `eventAppendMany` (PostgreSQL LISTEN/NOTIFY); else absent: subscribers poll. */
  eventListen?(onAppend: () => void): Promise<Unlisten>;

  /**
   * Optional, for drivers without `listen()`: a cheap counter that moves when another connection
   * committed (SQLite `PRAGMA data_version`); workers poll it every few ms and claim when it moved.
   */
  dataVersion?(): Promise<number>;
}
