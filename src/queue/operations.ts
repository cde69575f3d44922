/**
 * Operator actions on jobs and queues: cancel, pause, resume, retry, signal.
 * @internal
 */
import type { QueueCore } from '../core/queue-core.js';
import { encodeJson } from '../storage/codec.js';
import { checkBoolean, checkName, checkOptions, checkQueueName } from '../core/validate.js';
import type { RetryJobOptions } from './operator-types.js';

/** Cancels a job and its subtree; emits `job.cancelled` per cancelled job. */
export async function cancelJob(core: QueueCore, id: string): Promise<string[]> {
  checkName(id, 'job id');
  const ids = await core.storage.jobCancel({ id });
  const at = new Date();
  if (core.hub.hasSubscribers) for (const jobId of ids) core.hub.emit({ type: 'job.cancelled', jobId, at });
  return ids;
}

/** pending → paused. */
export async function pauseJob(core: QueueCore, id: string): Promise<void> {
  checkName(id, 'job id');
  await core.storage.jobPause({ id });
}

/** paused → pending, waking local workers. */
export async function resumeJob(core: QueueCore, id: string): Promise<void> {
  checkName(id, 'job id');
  await core.storage.jobResume({ id });
  await wakeFor(core, id);
}

/** failed/cancelled → pending, from scratch or from the failed step, waking local workers. */
export async function retryJob(core: QueueCore, id: string, options: RetryJobOptions | undefined): Promise<void> {
  checkName(id, 'job id');
  const o = checkOptions<RetryJobOptions>(options, 'retryJob options', ['fromFailedStep']);
  const fromFailedStep = o.fromFailedStep === undefined ? false : checkBoolean(o.fromFailedStep, 'fromFailedStep');
  await core.storage.jobRetry(fromFailedStep ? { id, fromFailedStep } : { id });
  await wakeFor(core, id);
}

/** Pauses or resumes claiming from a queue. */
export async function setQueuePaused(core: QueueCore, queue: string, paused: boolean): Promise<void> {
  checkQueueName(queue);
  await core.storage.queueSetPaused({ queue, paused });
  if (!paused) for (const w of core.wakers) w.wake(queue);
}

/** Buffers a signal for a job and wakes it if it waits for that name. */
export async function sendSignal(core: QueueCore, jobId: string, name: string, payload: unknown): Promise<void> {
  checkName(jobId, 'job id');
  checkName(name, 'signal name');
  const payloadJson = encodeJson(payload, 'signal payload', core.defaults.maxPayloadBytes);
  await core.storage.signalSend({ jobId, name, payloadJson });
  await wakeFor(core, jobId);
}

async function wakeFor(core: QueueCore, id: string): Promise<void> {
  if (core.wakers.size === 0) return;
  const row = await core.storage.jobGet({ id });
  if (row && row.status === 'pending') for (const w of core.wakers) w.wake(row.queue);
}
