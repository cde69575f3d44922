/**
 * Lease renewal: one statement extends every lease this worker holds. Runs the storage no
 * longer reports as held were cancelled or reclaimed: their handlers are aborted.
 * @internal
 */
import { JobCancelledError, LeaseLostError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import type { JobRun } from './executor.js';

/** Extends the leases of `runs`; abandons the ones lost. @internal */
export async function heartbeat(storage: Storage, workerId: string, leaseMs: number, runs: readonly JobRun[]): Promise<void> {
  if (runs.length === 0) return;
  const held = new Set(
    await storage.jobHeartbeat({ workerId, leaseMs, runs: runs.map((r) => ({ jobId: r.fence.jobId, runCount: r.fence.runCount })) }),
  );
  for (const run of runs) {
    if (held.has(run.fence.jobId)) continue;
    const row = await storage.jobGet({ id: run.fence.jobId });
    // A fenced write in flight settles the run itself: a suspension that just committed (the
    // job is `waiting`, so no longer held) is not a lost lease; a refused write is one.
    if (run.writing) continue;
    run.abandon(row?.status === 'cancelled' ? new JobCancelledError() : new LeaseLostError('the job lease was lost (reclaimed or taken by another worker)'));
  }
}
