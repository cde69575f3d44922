/**
 * The fixed texts the storage contract writes into rows (`last_error`, a step's `error`) or
 * puts into typed errors, one wording each. Every driver uses these constants and builders and
 * the conformance suite asserts them exactly, so a reader of `last_error` sees the same text
 * whichever database ran the job.
 *
 * Internal to the storage layer: every export carries the JSDoc internal tag (so it is
 * stripped from the published declaration files), and none is exported from the package.
 */

/** `last_error` of a `running` job whose lease expired and that goes back to `pending` (attempts left). @internal */
export const LEASE_EXPIRED_RETRY = 'lease expired: the worker stopped heartbeating; the job will run again';

/** `last_error` of a `running` job whose lease expired and that ends `failed` (no attempts left). @internal */
export const LEASE_EXPIRED_FAILED = 'lease expired: the worker stopped heartbeating and no retries are left';

/** The `error` of a signal-wait step whose deadline passed before the signal arrived. @internal */
export const SIGNAL_WAIT_TIMED_OUT = 'signal wait timed out';

/** The message of a `storage.debug` entry for an operation that failed. @internal */
export const STORAGE_OPERATION_FAILED = 'storage operation failed';

/** `InvalidStateError` text of `jobPause` on a job that is not `pending`. @internal */
export function cannotPauseMessage(jobId: string, status: string): string {
  return `cannot pause job ${jobId}: it is ${status} (only a pending job can be paused)`;
}

/** `InvalidStateError` text of `jobResume` on a job that is not `paused`. @internal */
export function cannotResumeMessage(jobId: string, status: string): string {
  return `cannot resume job ${jobId}: it is ${status} (only a paused job can be resumed)`;
}

/** `InvalidStateError` text of `jobRetry` on a job that is neither `failed` nor `cancelled`. @internal */
export function cannotRetryMessage(jobId: string, status: string): string {
  return `cannot retry job ${jobId}: it is ${status} (only a failed or cancelled job can be retried)`;
}

/** `InvalidStateError` text of `signalSend` to a job in a terminal status. @internal */
export function cannotSignalMessage(jobId: string, status: string): string {
  return `cannot signal job ${jobId}: it is ${status}`;
}

/** `InvalidStateError` text of a checkpoint write over a step already recorded as finished. @internal */
export function stepAlreadyFinishedMessage(jobId: string, stepIndex: number): string {
  return `step ${stepIndex} of job ${jobId} is already recorded as finished`;
}

/** `StorageError` text when a driver's optional peer package is not installed. @internal */
export function missingDriverPackageMessage(storageClass: string, packageName: string): string {
  return `${storageClass} needs the "${packageName}" package: npm install ${packageName}`;
}

/** Bulk skip reason: no job has this id (any more). */
export const SKIP_NOT_FOUND = 'not found';

/** Bulk skip reason for retry: the job is not failed or cancelled. */
export function skipNotRetryable(status: string): string {
  return `${status}: only failed or cancelled jobs can be retried`;
}

/** Bulk skip reason for retry: another live job holds the job's unique key. */
export const SKIP_UNIQUE_HELD = 'its unique key is held by another live job';

/** Bulk skip reason for delete: the job is not finished. */
export function skipNotFinished(status: string): string {
  return `${status}: only finished jobs can be deleted`;
}

/** Bulk skip reason for delete: a job below it is not finished. */
export const SKIP_UNFINISHED_SUBJOBS = 'has unfinished sub-jobs';

/** Bulk skip reason for delete: its parent is not finished (a sub-job goes with its workflow). */
export const SKIP_PARENT_UNFINISHED = 'sub-job of an unfinished parent: delete or cancel the parent';

/** Bulk skip reason for cancel: the job had already finished. */
export const SKIP_ALREADY_FINISHED = 'already finished';

/** `InvalidStateError` text of a retry from the failed step whose fan-out lost children. */
export function childrenMissingMessage(jobId: string, fanOutId: string, have: number, total: number): string {
  return `cannot retry job ${jobId} from its failed step: fan-out ${fanOutId} has ${have} of its ${total} children (some were deleted); retry it from scratch`;
}
