/**
 * Compares the model with the driver after every command: every job of the run (status,
 * attempt, run count, run-at, lease, wake time, tree links, last error), the counts by status
 * and every fan-out (counters, status, decision time); and the checkpoints of every job that
 * ever held one, after the commands that write or drop them.
 */
import assert from 'node:assert/strict';
import type { JobRow } from '../../../src/storage/storage.js';
import { countsOf, fanOutsOf, modelInvariants } from './fan-out-model.js';
import { count, tick, type Cmd, type Model, type Real } from './model-core.js';

/** Asserts that the storage holds exactly the model's jobs, fan-outs and checkpoints. */
export async function compare(m: Model, r: Real): Promise<void> {
  assert.equal(modelInvariants(m), null, 'the model is consistent');
  const rows = new Map<string, JobRow>();
  for (const q of m.queues) for (const row of await r.s.jobList({ queue: q, limit: 10_000 })) rows.set(row.id, row);
  assert.equal(rows.size, m.jobs.length, 'number of jobs');
  for (const j of m.jobs) {
    const row = rows.get(j.id);
    assert.ok(row, `job ${j.id} exists`);
    const got = {
      status: row.status,
      attempt: row.attempt,
      runCount: row.runCount,
      runAt: row.runAt,
      lockedBy: row.lockedBy,
      lease: row.leaseExpiresAt,
      completedAt: row.completedAt,
      wakeAt: row.status === 'waiting' ? row.wakeAt : null,
      priority: row.priority,
      maxRetries: row.maxRetries,
      tree: [row.parentId, row.fanOutId, row.fanOutIndex],
    };
    const want = {
      status: j.status,
      attempt: j.attempt,
      runCount: j.runCount,
      runAt: j.runAt,
      lockedBy: j.lockedBy,
      lease: j.leaseExpiresAt,
      completedAt: j.completedAt,
      wakeAt: j.wakeAt,
      priority: j.priority,
      maxRetries: j.maxRetries,
      tree: [j.parentId, j.fanOutId, j.fanOutIndex],
    };
    assert.deepEqual(got, want, `job ${j.id}${j.fanOutId === null ? '' : ` (child ${j.fanOutIndex} of fan-out ${j.fanOutId})`}`);
    assert.equal(row.lastError, j.lastError, `job ${j.id} last error: ${String(row.lastError)}, expected ${String(j.lastError)}`);
  }
  for (const q of m.queues) {
    const c = await r.s.jobCountByStatus({ queue: q });
    for (const st of ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'paused'] as const) {
      assert.equal(c[st], m.jobs.filter((j) => j.queue === q && j.status === st).length, `${st} count of ${q}`);
    }
  }
  for (const f of m.fanOuts) {
    const row = await r.s.fanOutGet({ id: f.id });
    assert.ok(row, `fan-out ${f.id} exists`);
    const got = { ...pickFanOut(row), succeeded: row.succeeded, failed: row.failed, cancelled: row.cancelled };
    const want = { ...pickFanOut(f), ...countsOf(m, f) };
    assert.deepEqual(got, want, `fan-out ${f.id} of job ${f.parentId} (${f.strategy}${f.threshold === null ? '' : ` ${f.threshold}`}): counters are the children's current outcomes`);
  }
}

/**
 * Asserts the checkpoints of every job that ever held one: its fan-out steps, none once a retry
 * dropped them. Called after the commands that write or drop checkpoints, and at the end of a run.
 */
export async function compareSteps(m: Model, r: Real): Promise<void> {
  for (const id of m.stepped) {
    const want = fanOutsOf(m, id).map((f) => ({ jobId: id, stepIndex: f.stepIndex, stepName: 'fan-out', status: 'completed', outputJson: JSON.stringify(f.id), error: null }));
    assert.deepEqual(await r.s.stepList({ jobId: id }), want, `checkpoints of job ${id}`);
  }
}

function pickFanOut(f: { parentId: string; stepIndex: number; strategy: string; threshold: number | null; total: number; status: string; deadlineAt: number | null; createdAt: number; decidedAt: number | null }): object {
  const { parentId, stepIndex, strategy, threshold, total, status, deadlineAt, createdAt, decidedAt } = f;
  return { parentId, stepIndex, strategy, threshold, total, status, deadlineAt, createdAt, decidedAt };
}

/** Builds a command from a label and a body (the bodies update the model and check the driver). */
export function cmd(label: string, run: (m: Model, r: Real) => Promise<void>): Cmd {
  return {
    check: () => true,
    run: async (m, r) => {
      tick(m, r);
      count(r.tally, label.split('(')[0]!);
      await run(m, r);
      for (const [k, n] of Object.entries(m.notes)) count(r.tally, k, n);
      m.notes = {};
      await compare(m, r);
    },
    toString: () => label,
  };
}
