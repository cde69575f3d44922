/**
 * A model of the job state machine for model-based testing (fast-check commands) against a
 * real storage driver. The model is deliberately simple — a list of jobs and fan-outs and the
 * storage's documented rules (storage.ts; the fan-out rules in `fan-out-model.ts`) — and every
 * command applies an operation to both, then the whole visible state of the run's jobs and
 * fan-outs is compared (`model-check.ts`).
 *
 * Time is injected: the driver's clock reads `real.now`, which only the commands move, so lease
 * expiry and claim order are deterministic.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LEASE_EXPIRED_FAILED, LEASE_EXPIRED_RETRY } from '../../../src/storage/shared/contract-messages.js';
import type { Fence, JobFinishItem } from '../../../src/storage/storage.js';
import { applied, jobInsert } from '../../helpers/factories.js';
import { cancelBoth, fanOutCommands, retryBoth } from './fan-out-commands.js';
import { ended } from './fan-out-model.js';
import { cmd } from './model-check.js';
import { claimOrder, count, expectCode, holds, jobOf, LEASE_MS, liveRuns, NON_TERMINAL, pendingJob, pickFence, pickJob, pickLive, tick, WORKERS, type Cmd, type MJob, type Model, type Real } from './model-core.js';

export { compare, compareSteps } from './model-check.js';
export { newModel, type Model, type Real } from './model-core.js';

/** Every command of the model, as fast-check arbitraries (the hot path ones listed several times, to weigh them). */
export function commands(): fc.Arbitrary<Cmd>[] {
  const all = commandList();
  const [enqueue, claim, , finishLive, finishMany, , , advance] = all;
  const fan = fanOutCommands();
  const times = <T>(n: number, x: T): T[] => Array.from({ length: n }, () => x);
  // About half of the commands drive jobs forward (enqueue, claim, finish, fan out); the rest
  // are the operator actions and the clock, each picked now and then.
  return [...all, ...fan.others, fan.wake, ...times(5, enqueue!), ...times(5, claim!), ...times(4, finishLive!), finishMany!, ...times(4, fan.suspend), advance!];
}

type Outcome = 'completed' | 'failed' | 'retry0' | 'retry7';

/** The finish item of a run for an outcome. */
function finishItem(m: Model, fence: Fence, outcome: Outcome): JobFinishItem {
  const error = `boom ${m.now}`;
  if (outcome === 'completed') return { ...fence, outcome: 'completed', resultJson: `{"t":${m.now}}` };
  if (outcome === 'failed') return { ...fence, outcome: 'failed', error };
  return { ...fence, outcome: 'retry', error, delayMs: outcome === 'retry0' ? 0 : 7 };
}

/**
 * Finishes runs in one `jobFinishMany` on both sides. Every fence is judged against the state
 * before the call (the items are one transaction: a child that completes in the same batch as
 * its sibling's failure is counted as completed, not cancelled); then failed jobs cancel their
 * unfinished descendants and the fan-outs account for everything that ended.
 */
async function finishBoth(m: Model, r: Real, fences: Fence[], outcomes: Outcome[]): Promise<void> {
  const items = fences.map((f, k) => finishItem(m, f, outcomes[k % outcomes.length]!));
  const want = items.map((item) => holds(jobOf(m, item.jobId), item));
  assert.deepEqual(applied(await r.s.jobFinishMany({ items })), want, 'each fenced finish applies iff its fence holds');
  count(r.tally, 'finishes applied', want.filter(Boolean).length);
  count(r.tally, 'stale finishes refused', want.filter((x) => !x).length);
  if (items.length > 1) count(r.tally, 'finish batches');
  const done: MJob[] = [];
  for (const [k, item] of items.entries()) {
    const j = jobOf(m, item.jobId);
    if (!want[k] || !j) continue;
    Object.assign(j, { lockedBy: null, leaseExpiresAt: null });
    if (item.outcome === 'completed') Object.assign(j, { status: 'completed', completedAt: m.now });
    else if (item.outcome === 'failed') Object.assign(j, { status: 'failed', completedAt: m.now, lastError: item.error });
    else Object.assign(j, { status: 'pending', runAt: m.now + item.delayMs, lastError: item.error });
    done.push(j);
  }
  count(r.tally, 'jobs cancelled by a failure', ended(m, done).length);
}

function commandList(): fc.Arbitrary<Cmd>[] {
  const qIdx = fc.integer({ min: 0, max: 1 });
  const worker = fc.constantFrom(...WORKERS);
  const outcomes = fc.constantFrom<Outcome>('completed', 'failed', 'retry0', 'retry7');
  return [
    fc.record({ q: qIdx, prio: fc.integer({ min: -1, max: 1 }), retries: fc.integer({ min: 0, max: 2 }), key: fc.integer({ min: -1, max: 1 }) }).map(({ q, prio, retries, key }) =>
      cmd(`enqueue(q${q}, p${prio}, r${retries}, k${key})`, async (m, r) => {
        const uniqueKey = key < 0 ? null : m.keys[key]!;
        const ins = jobInsert({ queue: m.queues[q]!, priority: prio, maxRetries: retries, uniqueKey });
        if (uniqueKey !== null && m.jobs.some((j) => j.uniqueKey === uniqueKey && NON_TERMINAL.has(j.status))) {
          await expectCode(r.s.jobInsertMany({ jobs: [ins] }), 'DUPLICATE_JOB');
          return;
        }
        assert.deepEqual(await r.s.jobInsertMany({ jobs: [ins] }), { inserted: [ins.id], ids: [ins.id] });
        m.jobs.push(pendingJob(m, { id: ins.id, queue: ins.queue, priority: prio, maxRetries: retries, uniqueKey }));
      }),
    ),
    fc.record({ w: worker, a: fc.integer({ min: 0, max: 3 }), b: fc.integer({ min: 0, max: 3 }) }).map(({ w, a, b }) =>
      cmd(`claim(${w}, ${a}, ${b})`, async (m, r) => {
        const want: MJob[] = [];
        for (const [qi, limit] of [[0, a], [1, b]] as const) {
          const q = m.queues[qi]!;
          if (limit === 0 || m.paused.has(q)) continue;
          want.push(...m.jobs.filter((j) => j.queue === q && j.status === 'pending' && j.runAt <= m.now).sort(claimOrder).slice(0, limit));
        }
        want.sort(claimOrder);
        const queues = [{ name: m.queues[0], limit: a }, { name: m.queues[1], limit: b }].filter((x) => x.limit > 0);
        const got = queues.length === 0 ? [] : await r.s.jobClaim({ workerId: w, queues, leaseMs: LEASE_MS });
        // Claim order within each queue; across queues the contract (and the conformance suite)
        // leave the interleaving to the driver.
        for (const q of m.queues) {
          assert.deepEqual(got.filter((x) => x.queue === q).map((x) => x.id), want.filter((j) => j.queue === q).map((j) => j.id), `claimed ids of ${q} in claim order`);
        }
        assert.equal(got.length, want.length, 'number of jobs claimed');
        count(r.tally, 'jobs claimed', want.length);
        for (const j of want) {
          Object.assign(j, { status: 'running', attempt: j.attempt + 1, runCount: j.runCount + 1, lockedBy: w, leaseExpiresAt: m.now + LEASE_MS });
          m.fences.push({ jobId: j.id, workerId: w, runCount: j.runCount });
        }
      }),
    ),
    fc.record({ f: fc.nat(), outcome: outcomes }).map(({ f, outcome }) =>
      cmd(`finish(fence ${f}, ${outcome})`, async (m, r) => {
        const fence = pickFence(m, f);
        if (fence) await finishBoth(m, r, [fence], [outcome]);
      }),
    ),
    fc.record({ f: fc.nat(), outcome: outcomes }).map(({ f, outcome }) =>
      cmd(`finishLive(run ${f}, ${outcome})`, async (m, r) => {
        const fence = pickLive(m, f);
        if (fence) await finishBoth(m, r, [fence], [outcome]);
      }),
    ),
    fc.record({ order: fc.array(fc.nat(), { minLength: 2, maxLength: 4 }), outcomes: fc.array(outcomes, { minLength: 1, maxLength: 4 }) }).map(({ order, outcomes: outs }) =>
      cmd(`finishMany(runs ${order.join(' ')}, ${outs.join(' ')})`, async (m, r) => {
        // Several runs (children, their parent) finishing in one flush, in any order.
        const runs = liveRuns(m);
        const fences = [...new Set(order.map((i) => runs[i % Math.max(1, runs.length)]).filter((f): f is Fence => f !== undefined))];
        if (fences.length > 0) await finishBoth(m, r, fences, outs);
      }),
    ),
    worker.map((w) =>
      cmd(`heartbeat(${w})`, async (m, r) => {
        const runs = m.fences.filter((f) => f.workerId === w);
        const held = m.jobs.filter((j) => runs.some((f) => f.jobId === j.id && holds(j, f)));
        const got = runs.length === 0 ? [] : await r.s.jobHeartbeat({ workerId: w, runs: runs.map((f) => ({ jobId: f.jobId, runCount: f.runCount })), leaseMs: LEASE_MS });
        assert.deepEqual([...got].sort(), held.map((j) => j.id).sort(), 'heartbeat returns the runs still held');
        for (const j of held) j.leaseExpiresAt = m.now + LEASE_MS;
      }),
    ),
    fc.nat().map((f) =>
      cmd(`release(fence ${f})`, async (m, r) => {
        const fence = pickFence(m, f);
        if (!fence) return;
        const j = jobOf(m, fence.jobId);
        const applies = holds(j, fence);
        assert.deepEqual(await r.s.jobRelease({ runs: [fence] }), applies ? [fence.jobId] : []);
        if (applies) Object.assign(j!, { status: 'pending', attempt: Math.max(0, j!.attempt - 1), lockedBy: null, leaseExpiresAt: null });
      }),
    ),
    fc.constantFrom(1, LEASE_MS / 2, LEASE_MS + 1).map((ms) =>
      cmd(`advance(${ms})`, async (m, r) => {
        tick(m, r, ms);
      }),
    ),
    fc.constant(
      cmd('reclaim', async (m, r) => {
        const expired = m.jobs.filter((j) => j.status === 'running' && (j.leaseExpiresAt ?? Infinity) < m.now);
        const got = await r.s.jobReclaimExpired({ limit: 1000 });
        const mine = got.filter((x) => m.jobs.some((j) => j.id === x.id));
        const want = expired.map((j) => ({ id: j.id, status: j.attempt <= j.maxRetries ? 'pending' : 'failed' }));
        assert.deepEqual(mine.map((x) => ({ id: x.id, status: x.status })).sort((x, y) => x.id.localeCompare(y.id)), want.sort((x, y) => x.id.localeCompare(y.id)));
        count(r.tally, 'jobs reclaimed', expired.length);
        for (const j of expired) {
          const spent = j.attempt > j.maxRetries;
          // Every driver writes the one wording of the contract, whether the job runs again or not.
          const lastError = spent ? LEASE_EXPIRED_FAILED : LEASE_EXPIRED_RETRY;
          Object.assign(j, { status: spent ? 'failed' : 'pending', lockedBy: null, leaseExpiresAt: null, lastError, completedAt: spent ? m.now : null });
        }
        // Reclaimed to failed: their unfinished descendants are cancelled, and the fan-outs count them.
        count(r.tally, 'jobs cancelled by a failure', ended(m, expired).length);
      }),
    ),
    fc.nat().map((i) =>
      cmd(`cancel(job ${i})`, async (m, r) => {
        const j = pickJob(m, i);
        if (j) await cancelBoth(m, r, j);
      }),
    ),
    fc.nat().map((i) =>
      cmd(`pauseJob(job ${i})`, async (m, r) => {
        const j = pickJob(m, i);
        if (!j) return;
        if (j.status !== 'pending') return expectCode(r.s.jobPause({ id: j.id }), 'INVALID_STATE');
        await r.s.jobPause({ id: j.id });
        j.status = 'paused';
      }),
    ),
    fc.nat().map((i) =>
      cmd(`resumeJob(job ${i})`, async (m, r) => {
        const j = pickJob(m, i);
        if (!j) return;
        if (j.status !== 'paused') return expectCode(r.s.jobResume({ id: j.id }), 'INVALID_STATE');
        await r.s.jobResume({ id: j.id });
        j.status = 'pending';
      }),
    ),
    fc.nat().map((i) =>
      cmd(`retryJob(job ${i})`, async (m, r) => {
        const j = pickJob(m, i);
        if (j) await retryBoth(m, r, j);
      }),
    ),
    fc.record({ q: qIdx, paused: fc.boolean() }).map(({ q, paused }) =>
      cmd(`${paused ? 'pause' : 'resume'}Queue(q${q})`, async (m, r) => {
        const name = m.queues[q]!;
        await r.s.queueSetPaused({ queue: name, paused });
        if (paused) m.paused.add(name);
        else m.paused.delete(name);
      }),
    ),
  ];
}
