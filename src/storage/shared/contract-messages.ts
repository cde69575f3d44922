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
