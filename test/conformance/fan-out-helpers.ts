/**
 * Small assertions shared by the fan-out conformance files.
 */
import assert from 'node:assert/strict';
import type { Fence, FanOutRow, JobRow, Storage } from '../../src/storage/storage.js';
import { applied, mustGet } from '../helpers/factories.js';

/** Reads a fan-out, checks the given fields and the counter invariant, and returns it. */
export async function expectFanOut(s: Storage, id: string, expected: Partial<FanOutRow>): Promise<FanOutRow> {
  const f = await s.fanOutGet({ id });
  assert.ok(f, `fan-out ${id} not found`);
  const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, f[k as keyof FanOutRow]]));
  assert.deepEqual(picked, expected, `fan-out ${id}`);
  assert.ok(f.succeeded + f.failed + f.cancelled <= f.total, `fan-out ${id} counted more children than it has`);
  assert.equal(f.decidedAt === null, f.status === 'running', 'decided_at is set exactly when the fan-out is decided');
  return f;
}

/** Finishes one run and asserts whether it applied. */
export async function finish(
  s: Storage,
  fence: Fence,
  outcome: 'completed' | 'failed' | 'retry',
  expectApplied = true,
): Promise<void> {
  const item =
    outcome === 'completed'
      ? { ...fence, outcome, resultJson: JSON.stringify(fence.jobId) }
      : outcome === 'failed'
        ? { ...fence, outcome, error: `failed ${fence.jobId}` }
        : { ...fence, outcome, error: 'again', delayMs: 0 };
  assert.deepEqual(applied(await s.jobFinishMany({ items: [item] })), [expectApplied], `${outcome} of ${fence.jobId}`);
}

/** Asserts a parent is still waiting on its fan-out. */
export async function expectWaiting(s: Storage, parentId: string): Promise<JobRow> {
  const row = await mustGet(s, parentId);
  assert.equal(row.status, 'waiting', 'the parent is still waiting');
  return row;
}

/** Asserts a parent was woken: pending, attempt given back, no wake time or signal wait left. */
export async function expectWoken(s: Storage, parentId: string): Promise<JobRow> {
  const row = await mustGet(s, parentId);
  assert.equal(row.status, 'pending', 'the parent was woken');
  assert.equal(row.attempt, 0, 'the suspension did not consume an attempt');
  assert.equal(row.leaseExpiresAt, null);
  return row;
}
