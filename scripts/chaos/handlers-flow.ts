/**
 * The flow job types (see flow.ts): each registered with its limits; each run records its
 * `run` effect (`tracked`) and its `chaos_flow` row, works for `ms`, fails its first attempt
 * when planned (a retryable error), and returns `{ n, attempt }`.
 */
import type { Queue } from '../../src/queue/queue.js';
import { FLOW_TYPES, registerOptions, type FlowArgs, type FlowRecorder } from './flow.js';
import { tracked, work, type HandlerHost } from './handlers.js';

/** The error a planned first-attempt failure throws. */
export const FLOW_FLAKY = 'flow job fails its first attempt by design';

/**
 * Registers every flow job type on `queue`, with its limits — or without any when `limits` is
 * false (`--fault flow`, the audit's self-check: the worker then removes the type limits as it
 * starts, and only the queue limit is left).
 */
export function registerFlowHandlers(queue: Queue, host: HandlerHost, flow: FlowRecorder, limits = true): void {
  for (const t of FLOW_TYPES) {
    const handler = tracked(host, async (a: FlowArgs, ctx, run) => {
      const end = await flow.begin({
        jobId: ctx.job.id,
        type: t.type,
        queue: ctx.job.queue,
        args: a,
        runCount: run.runCount,
        attempt: ctx.job.attempt,
        claimedAt: ctx.job.startedAt?.getTime() ?? null,
      });
      let how = 'returned';
      try {
        await work(a.ms, ctx.abortSignal);
        if (a.failFirst && ctx.job.attempt === 1) throw new Error(FLOW_FLAKY);
        return { n: a.n, attempt: ctx.job.attempt };
      } catch (e) {
        how = `threw: ${e instanceof Error ? e.message : String(e)}`;
        throw e;
      } finally {
        await end(how).catch(() => {});
      }
    });
    queue.register(t.type, handler, limits ? registerOptions(t) : {});
  }
}
