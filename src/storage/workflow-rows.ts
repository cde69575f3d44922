/**
 * Storage rows and parameters of workflows (checkpoints, fan-outs, timers, signals) and of
 * retention, re-exported by `storage.ts`.
 * @module
 */
import type { Fence, JobInsert, JobRow } from './job-rows.js';

/** A checkpoint of a workflow step, keyed by `(jobId, stepIndex)`. */
export interface StepRow {
  jobId: string;
  stepIndex: number;
  stepName: string;
  /** `waiting`: started but not finished (a timer or signal wait holding its deadline). */
  status: 'completed' | 'failed' | 'waiting';
  outputJson: string | null;
  error: string | null;
  /** When the checkpoint was recorded (ms, storage clock); set on reads with `withTimes`, ignored on writes. */
  createdAt?: number;
}

/** `stepRecord` parameters. */
export interface StepRecordParams {
  fence: Fence;
  step: StepRow;
}

/** A fan-out and its counters. */
export interface FanOutRow {
  id: string;
  parentId: string;
  stepIndex: number;
  /**
   * Decision rule over `total` children:
   * - `fail-fast`: failed when failed + cancelled >= 1; succeeded when succeeded = total.
   * - `collect-all`: succeeded when succeeded + failed + cancelled = total; never fails.
   * - `threshold`: need = ceil(threshold * total); succeeded when succeeded >= need;
   *   failed when failed + cancelled > total - need.
   */
  strategy: 'fail-fast' | 'collect-all' | 'threshold';
  threshold: number | null;
  total: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  status: 'running' | 'succeeded' | 'failed';
  /** The fan-out fails when still running at this instant (`fanOutExpire`). */
  deadlineAt: number | null;
  createdAt: number;
  decidedAt: number | null;
}

/** `jobSuspendFanOut` parameters. */
export interface JobSuspendFanOutParams {
  fence: Fence;
  /** Checkpoint of the fan-out step (status `completed`, output: the fan-out id as JSON). */
  step: StepRow;
  fanOut: { id: string; strategy: FanOutRow['strategy']; threshold: number | null; timeoutMs: number | null };
  /** The children (parentId and fanOutId set). Inserted in batches. */
  children: JobInsert[];
}

/** `jobSuspend` parameters: sleep until `wakeAt` (and/or wait for a signal). */
export interface JobSuspendParams {
  fence: Fence;
  /** Step to record (or update from `waiting`) in the same transaction, if any. */
  step: StepRow | null;
  wakeAt: number | null;
  waitSignal: string | null;
}

/** Input of `jobPrune`: the retention age per finished status, in ms (`null` keeps forever). */
export interface JobPruneParams {
  readonly olderThanMs: { readonly completed: number | null; readonly failed: number | null; readonly cancelled: number | null };
  /** Most roots deleted by this call (their subtrees come with them). */
  readonly limit: number;
}

/** Outcome of `jobPrune`. */
export interface JobPruneResult {
  /** Jobs deleted: roots and their descendants. */
  readonly deleted: number;
  /** Roots deleted. */
  readonly roots: number;
  /** Another prune held the fleet-wide prune lock; nothing was deleted. */
  readonly busy: boolean;
}

/**
 * `jobSuspendUntil` parameters: a durable timer decided against the database clock. Exactly
 * one of `delayMs` (a first `ctx.sleep`: wake time = now + delayMs) and `wakeAt` (a
 * `sleepUntil`, or the wake time recorded by the first execution) is set.
 */
export interface JobSuspendUntilParams {
  fence: Fence;
  /** The timer's checkpoint position. */
  stepIndex: number;
  stepName: string;
  /** True when the checkpoint is already recorded (a replay): nothing is recorded. */
  recorded: boolean;
  delayMs?: number;
  wakeAt?: number;
}

/** `jobSuspendUntil` result; `wakeAt` is the timer's fixed wake time. */
export type JobSuspendUntilResult =
  /** The job is now `waiting` until `wakeAt`. */
  | { kind: 'suspended'; wakeAt: number }
  /** `wakeAt` has passed: the checkpoint is recorded, the run goes on holding the job. */
  | { kind: 'elapsed'; wakeAt: number }
  /** The fence failed: nothing was written. */
  | { kind: 'lost' };

/** `fanOutCollect` result: the fan-out and its children in index order. */
export interface FanOutCollected {
  fanOut: FanOutRow;
  children: JobRow[];
}

/** A signal sent to a job, buffered until a wait of its name consumes it (`signalList`). */
export interface SignalRow {
  /** Position in the signals table: increases with every signal sent (FIFO order). */
  seq: number;
  name: string;
  payloadJson: string | null;
  /** When it was sent (ms, storage clock). */
  createdAt: number;
  /** When a wait consumed it (ms, storage clock); null while buffered. */
  consumedAt: number | null;
}

/** `signalConsumeOrWait` parameters. */
export interface SignalConsumeParams {
  fence: Fence;
  stepIndex: number;
  stepName: string;
  signalName: string;
  /** The fixed deadline (absolute ms) or null for none; ignored when `timeoutMs` is set. */
  deadlineAt: number | null;
  /**
   * First execution of a wait with a timeout: the deadline is fixed in the transaction as the
   * database's now + timeoutMs (and stored in the waiting step, so a replay passes it as
   * `deadlineAt`).
   */
  timeoutMs?: number;
}

/** `signalConsumeOrWait` result. */
export type SignalConsumeResult =
  | { kind: 'consumed'; payloadJson: string | null }
  | { kind: 'timed-out' }
  | { kind: 'suspended' }
  | { kind: 'lost' };
