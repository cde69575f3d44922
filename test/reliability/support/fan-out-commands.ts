/**
 * Commands of the model-based test for fan-outs and operator actions: a claimed job suspends
 * into a fan-out of 1–4 children (fail-fast, collect-all or a threshold, with or without a
 * deadline), waits again on it (a stale wake-up), fan-outs expire, due jobs wake, and an
 * operator retries, cancels, pauses and resumes jobs — children and parents alike.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { jobInsert, newId } from '../../helpers/factories.js';
import { cancelSubtree, expire, fanOutsOf, retry, wakeDue } from './fan-out-model.js';
import { cmd, compareSteps } from './model-check.js';
import { count, expectCode, holds, jobOf, LEASE_MS, liveRuns, NON_TERMINAL, pendingJob, pickLive, pickWhere, sorted, TERMINAL, type Cmd, type MFanOut, type MJob, type Model, type Real } from './model-core.js';

/** `jobCancel` of `j` on both sides; the ids returned are every job the cancel ended. */
export async function cancelBoth(m: Model, r: Real, j: MJob): Promise<void> {
  const want = TERMINAL.has(j.status) ? [] : cancelSubtree(m, j);
  const got = await r.s.jobCancel({ id: j.id });
  assert.equal(new Set(got).size, got.length, 'no id returned twice');
  assert.deepEqual(sorted(got), sorted(want), 'jobCancel returns every job it cancelled (subtree, and siblings of a fan-out it failed)');
  count(r.tally, 'jobs cancelled', want.length);
}

/** `jobRetry` of `j` on both sides: the state errors, or pending again with its subtree dropped. */
export async function retryBoth(m: Model, r: Real, j: MJob): Promise<void> {
  if (j.status !== 'failed' && j.status !== 'cancelled') return expectCode(r.s.jobRetry({ id: j.id }), 'INVALID_STATE');
  if (j.uniqueKey !== null && m.jobs.some((o) => o !== j && o.uniqueKey === j.uniqueKey && NON_TERMINAL.has(o.status))) {
    return expectCode(r.s.jobRetry({ id: j.id }), 'DUPLICATE_JOB');
  }
  await r.s.jobRetry({ id: j.id });
  const dropped = retry(m, j);
  const decided = j.fanOutId !== null && m.fanOuts.some((f) => f.id === j.fanOutId && f.status !== 'running');
  count(r.tally, j.fanOutId === null ? 'roots retried' : decided ? 'children of decided fan-outs retried' : 'children of running fan-outs retried');
  count(r.tally, 'jobs dropped by a retry', dropped.jobs.length);
  for (const d of dropped.jobs) {
    assert.equal(await r.s.jobGet({ id: d.id }), undefined, `descendant ${d.id} dropped by the retry`);
    if (m.stepped.delete(d.id)) assert.deepEqual(await r.s.stepList({ jobId: d.id }), [], `checkpoints of dropped job ${d.id}`);
  }
  for (const f of dropped.fanOuts) assert.equal(await r.s.fanOutGet({ id: f.id }), undefined, `fan-out ${f.id} dropped by the retry`);
  await compareSteps(m, r);
}

const STRATEGIES = ['fail-fast', 'collect-all', 0.25, 0.5, 0.75, 1] as const;

/** The fan-out and operator commands, as fast-check arbitraries. */
export function fanOutCommands(): { suspend: fc.Arbitrary<Cmd>; wake: fc.Arbitrary<Cmd>; others: fc.Arbitrary<Cmd>[] } {
  const suspend = fc
    .record({
      run: fc.nat(),
      n: fc.integer({ min: 1, max: 4 }),
      strategy: fc.constantFrom(...STRATEGIES),
      q: fc.integer({ min: 0, max: 1 }),
      retries: fc.integer({ min: 0, max: 1 }),
      timeout: fc.constantFrom(null, null, LEASE_MS / 2, 3 * LEASE_MS),
    })
    .map(({ run, n, strategy, q, retries, timeout }) =>
      cmd(`fanOut(run ${run}, ${n} children, ${strategy}, q${q}, r${retries}, timeout ${timeout})`, async (m, r) => {
        // Every other time, prefer a resumed parent (its next fan-out) or a child (a nested one).
        const deep = liveRuns(m).filter((f) => fanOutsOf(m, f.jobId).length > 0 || jobOf(m, f.jobId)!.fanOutId !== null);
        const fence = run % 2 === 0 && deep.length > 0 ? deep[(run >> 1) % deep.length] : pickLive(m, run >> 1);
        if (!fence) return;
        const j = jobOf(m, fence.jobId)!;
        // A workflow reaches its next fan-out only once the previous one is decided.
        if (fanOutsOf(m, j.id).some((f) => f.status === 'running')) return;
        const stepIndex = (fanOutsOf(m, j.id).at(-1)?.stepIndex ?? -1) + 1;
        const id = newId();
        const children = Array.from({ length: n }, (_, k) => jobInsert({ queue: m.queues[q]!, priority: 0, maxRetries: retries, parentId: j.id, fanOutId: id, fanOutIndex: k }));
        const threshold = typeof strategy === 'number' ? strategy : null;
        const ok = await r.s.jobSuspendFanOut({
          fence,
          step: { jobId: j.id, stepIndex, stepName: 'fan-out', status: 'completed', outputJson: JSON.stringify(id), error: null },
          fanOut: { id, strategy: threshold === null ? (strategy as MFanOut['strategy']) : 'threshold', threshold, timeoutMs: timeout },
          children,
        });
        assert.equal(ok, true, 'a fan-out under a held fence is written');
        count(r.tally, 'fan-outs', 1);
        if (stepIndex > 0) count(r.tally, 'later fan-outs of a resumed parent');
        if (j.fanOutId !== null) count(r.tally, 'nested fan-outs');
        count(r.tally, 'children', n);
        const deadlineAt = timeout === null ? null : m.now + timeout;
        Object.assign(j, { status: 'waiting', attempt: Math.max(0, j.attempt - 1), lockedBy: null, leaseExpiresAt: null, wakeAt: deadlineAt });
        m.fanOuts.push({ id, parentId: j.id, stepIndex, strategy: threshold === null ? (strategy as MFanOut['strategy']) : 'threshold', threshold, total: n, status: 'running', deadlineAt, createdAt: m.now, decidedAt: null });
        m.stepped.add(j.id);
        for (const c of children) m.jobs.push(pendingJob(m, { id: c.id, queue: c.queue, priority: 0, maxRetries: retries, uniqueKey: null, parentId: j.id, fanOutId: id, fanOutIndex: c.fanOutIndex }));
        await compareSteps(m, r);
      }),
    );
  const staleSuspend = fc.nat().map((i) =>
    cmd(`fanOutStale(fence ${i})`, async (m, r) => {
      const stale = m.fences.filter((f) => !holds(jobOf(m, f.jobId), f));
      const fence = stale[i % Math.max(1, stale.length)];
      if (!fence) return;
      const id = newId();
      const child = jobInsert({ queue: m.queues[0], parentId: fence.jobId, fanOutId: id, fanOutIndex: 0 });
      const step = { jobId: fence.jobId, stepIndex: 99, stepName: 'fan-out', status: 'completed' as const, outputJson: JSON.stringify(id), error: null };
      assert.equal(await r.s.jobSuspendFanOut({ fence, step, fanOut: { id, strategy: 'fail-fast', threshold: null, timeoutMs: null }, children: [child] }), false, 'a stale fence writes no fan-out');
      assert.equal(await r.s.fanOutGet({ id }), undefined, 'no fan-out row from a stale fence');
      assert.equal(await r.s.jobGet({ id: child.id }), undefined, 'no child from a stale fence');
      await compareSteps(m, r);
    }),
  );
  const rewait = fc.nat().map((i) =>
    cmd(`waitAgain(run ${i})`, async (m, r) => {
      // A parent that read its fan-out as undecided (maybe stale) waits again, until its deadline.
      const runs = m.fences.filter((f) => holds(jobOf(m, f.jobId), f) && fanOutsOf(m, f.jobId).length > 0);
      const fence = runs[i % Math.max(1, runs.length)];
      if (!fence) return;
      const j = jobOf(m, fence.jobId)!;
      const wakeAt = fanOutsOf(m, j.id).at(-1)!.deadlineAt;
      assert.equal(await r.s.jobSuspend({ fence, step: null, wakeAt, waitSignal: null }), true);
      Object.assign(j, { status: 'waiting', attempt: Math.max(0, j.attempt - 1), lockedBy: null, leaseExpiresAt: null, wakeAt });
    }),
  );
  const fanOutExpire = fc.nat().map((i) =>
    cmd(`fanOutExpire(fan-out ${i})`, async (m, r) => {
      // Mostly a fan-out that could expire (running, with a deadline); now and then any.
      const open = m.fanOuts.filter((x) => x.status === 'running' && x.deadlineAt !== null);
      const from = i % 4 === 0 || open.length === 0 ? m.fanOuts : open;
      const f = from[(i >> 2) % Math.max(1, from.length)];
      if (!f) return;
      const want = expire(m, f);
      assert.equal(await r.s.fanOutExpire({ id: f.id }), want.applied, `fanOutExpire applies iff the fan-out runs and its deadline ${f.deadlineAt} <= now ${m.now}`);
      count(r.tally, want.applied ? 'fan-outs expired' : 'expiries refused');
    }),
  );
  const wake = fc.constant(
    cmd('wakeDue', async (m, r) => {
      const want = wakeDue(m);
      const ours = new Set(m.jobs.map((j) => j.id));
      const got = (await r.s.jobWakeDue({ limit: 1000 })).filter((id) => ours.has(id));
      assert.deepEqual(sorted(got), sorted(want), 'jobWakeDue wakes the due waiters and parents of decided fan-outs only');
      count(r.tally, 'jobs woken by wakeDue', want.length);
    }),
  );
  const op = (name: string, ok: (j: MJob) => boolean, body: (m: Model, r: Real, j: MJob) => Promise<void>): fc.Arbitrary<Cmd> =>
    fc.nat().map((i) =>
      cmd(`${name}(${i})`, async (m, r) => {
        const j = pickWhere(m, i, ok);
        if (j) await body(m, r, j);
      }),
    );
  const isChild = (j: MJob): boolean => j.fanOutId !== null;
  const isParent = (m: Model, j: MJob): boolean => m.fanOuts.some((f) => f.parentId === j.id);
  return {
    suspend,
    wake,
    others: [
      staleSuspend,
      rewait,
      fanOutExpire,
      wake,
      op('retryEnded', (j) => j.status === 'failed' || j.status === 'cancelled', (m, r, j) => retryBoth(m, r, j)),
      fc.nat().map((i) =>
        cmd(`retryEndedChild(${i})`, async (m, r) => {
          // Mostly a child whose fan-out is still undecided (it must wait for the retried child).
          const ended = (j: MJob): boolean => isChild(j) && (j.status === 'failed' || j.status === 'cancelled');
          const open = (j: MJob): boolean => ended(j) && m.fanOuts.some((f) => f.id === j.fanOutId && f.status === 'running');
          const j = pickWhere(m, i >> 1, i % 2 === 0 && m.jobs.some(open) ? open : ended);
          if (j) await retryBoth(m, r, j);
        }),
      ),
      fc.nat().map((i) =>
        cmd(`cancelParent(${i})`, async (m, r) => {
          const j = pickWhere(m, i, (x) => isParent(m, x) && NON_TERMINAL.has(x.status));
          if (j) await cancelBoth(m, r, j);
        }),
      ),
      op('pausePending', (j) => j.status === 'pending', async (_m, r, j) => {
        await r.s.jobPause({ id: j.id });
        j.status = 'paused';
      }),
      op('resumePaused', (j) => j.status === 'paused', async (_m, r, j) => {
        await r.s.jobResume({ id: j.id });
        j.status = 'pending';
      }),
    ],
  };
}
