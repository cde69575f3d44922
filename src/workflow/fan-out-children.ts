/**
 * The sub-jobs of a fan-out through the enqueue middleware (`queue.useEnqueue`), in the
 * handler's async context: every child's chain must reach its end, then the children are built
 * and written together with the parent's suspension.
 * @internal
 */
import { InvalidStateError, messageOf } from '../errors.js';
import { enqueueThrough, optionsOf as requestOptions, requestFor } from '../core/middleware.js';
import type { QueueCore } from '../core/queue-core.js';
import type { JobInsert } from '../storage/storage.js';
import type { EnqueueOptions, Job } from '../types.js';
import type { SubJob } from './job-context.js';

/** Builds one child from its (possibly changed) type, args and options, at its fan-out index. */
export type BuildChild = (type: unknown, args: unknown, options: EnqueueOptions, index: number) => JobInsert;

/**
 * Builds the children and hands them to `write` (which stores them with the suspension); with
 * enqueue middleware, each child goes through its chain first. A chain that throws before its
 * `next()` writes nothing; one that throws after the write is logged (the fan-out stands).
 */
export async function writeChildren<R>(core: QueueCore, parent: Job, subJobs: readonly SubJob[], optionsOf: (s: SubJob) => EnqueueOptions, build: BuildChild, write: (children: JobInsert[]) => Promise<R>): Promise<R> {
  const layers = core.middleware?.enqueue;
  if (layers === undefined || layers.length === 0) return write(subJobs.map((s, i) => build(s.type, s.args, optionsOf(s), i)));
  const requests = subJobs.map((s) => requestFor(s.type, s.args, optionsOf(s), 'fan-out', parent.id));
  let written: { value: R } | undefined;
  try {
    await enqueueThrough(layers, requests, async (reached) => {
      if (reached.length !== requests.length) throw new InvalidStateError('an enqueue middleware returned without calling next() for a sub-job: every sub-job of a fan-out is enqueued');
      const children = reached.map((r, i) => build(r.type, r.args, requestOptions(r), i));
      written = { value: await write(children) };
      return children.map((c) => c.id);
    });
  } catch (e) {
    if (written === undefined) throw e;
    core.logger.warn('an enqueue middleware threw after the sub-jobs of a fan-out were stored', { jobId: parent.id, type: parent.type, queue: parent.queue, attempt: parent.attempt, error: messageOf(e) });
  }
  if (written === undefined) throw new InvalidStateError('the sub-jobs of the fan-out were not written');
  return written.value;
}
