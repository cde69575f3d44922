/**
 * `queue.waitForJob()`: resolves once a job is finished, woken at once by local outcomes and
 * polling (backing off) for workers in other processes.
 * @internal
 */
import { JobNotFoundError, WaitTimeoutError } from '../errors.js';
import type { QueueCore } from '../core/queue-core.js';
import { toJob } from '../core/job-mapper.js';
import { checkDuration, checkName, checkOptions, checkTimerDuration } from '../core/validate.js';
import { TERMINAL_STATUSES, type Job, type JobEvent, type WaitForJobOptions } from '../types.js';


async function readJob<Args, Result>(core: QueueCore, id: string): Promise<Job<Args, Result> | undefined> {
  const row = await core.storage.jobGet({ id });
  return row ? (toJob(row) as Job<Args, Result>) : undefined;
}

/** `queue.waitForJob()`. @throws (rejects) JobNotFoundError, WaitTimeoutError */
export async function waitForJob<Args, Result>(core: QueueCore, id: string, options: WaitForJobOptions): Promise<Job<Args, Result>> {
  checkName(id, 'job id');
  const o = checkOptions<WaitForJobOptions>(options, 'waitForJob options', ['timeout', 'pollInterval']);
  // The timeout is waited out in poll-sized steps, so it may be longer than a timer can wait.
  const timeout = o.timeout === undefined ? undefined : checkDuration(o.timeout, 'timeout');
  let interval = o.pollInterval === undefined ? 100 : checkTimerDuration(o.pollInterval, 'pollInterval', 1);
  const maxInterval = Math.max(interval, 1000);
  const deadline = timeout === undefined ? Infinity : Date.now() + timeout;
  // A local outcome wakes the wait at once. It may land while the job is being read (the read
  // then returns the state before it): `woken` keeps it for the next wait. The stream keeps
  // every event of a burst (a flush of a thousand outcomes emits them all in one turn), so
  // this job's own is never dropped.
  let woken = false;
  let wake: (() => void) | undefined;
  const stream = core.hub.stream({ bufferSize: Infinity });
  const watch = (async () => {
    for await (const e of stream) {
      if (!isTerminalEventFor(e, id)) continue;
      woken = true;
      wake?.();
    }
  })();
  try {
    for (;;) {
      woken = false;
      const job = await readJob<Args, Result>(core, id);
      if (!job) throw new JobNotFoundError(id);
      if (TERMINAL_STATUSES.includes(job.status)) return job;
      if (woken) continue;
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeoutError(`job ${id} is still ${job.status} after ${timeout} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(interval, left));
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      interval = Math.min(maxInterval, interval * 1.5);
    }
  } finally {
    await stream.return?.();
    await watch;
  }
}

function isTerminalEventFor(e: JobEvent, id: string): boolean {
  switch (e.type) {
    case 'job.completed':
    case 'job.failed':
      return e.job.id === id;
    case 'job.cancelled':
      return e.jobId === id;
    case 'job.reclaimed':
      return e.jobId === id && e.status === 'failed';
    case 'job.enqueued':
    case 'job.started':
    case 'job.retrying':
    case 'job.suspended':
    case 'job.progress':
    case 'job.released':
    case 'worker.error':
    case 'jobs.pruned':
      return false;
  }
}
