/**
 * A model of the job state machine for model-based testing (fast-check commands) against a
 * real storage driver. The model is deliberately simple — a list of jobs and the storage's
 * documented rules (storage.ts) — and every command applies an operation to both, then the
 * whole visible state of the run's jobs is compared.
 *
 * Time is injected: the driver's clock reads `real.now`, which only the commands move, so lease
 * expiry and claim order are deterministic.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isDurableJobsError } from '../../../src/errors.js';
import type { Fence, JobRow, Storage } from '../../../src/storage/storage.js';
import { jobInsert } from '../../helpers/factories.js';

/** Lease length of every claim (ms of the injected clock). */
export const LEASE_MS = 1000;

/** A job as the model sees it. */
export interface MJob {
  id: string;
  queue: string;
  priority: number;
  maxRetries: number;
  uniqueKey: string | null;
  status: JobRow['status'];
  attempt: number;
  runCount: number;
  runAt: number;
  lockedBy: string | null;
  leaseExpiresAt: number | null;
  completedAt: number | null;
  /** Exact last error, or 'reclaim' for a lease-expiry text (driver-worded). */
  lastError: string | null;
  /**
   * After a reclaim back to pending the contract leaves last_error open: a driver may note the
   * lease expiry or keep the previous error (this value). Undefined when there is no choice.
   */
  lastErrorAlt?: string | null;
}

/** The model of one run. */
export interface Model {
  now: number;
  queues: readonly [string, string];
  keys: readonly [string, string];
  jobs: MJob[];
  fences: Fence[];
  paused: Set<string>;
}

/** The system under test. */
export interface Real {
  s: Storage;
  now: number;
  tally: Tally;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const NON_TERMINAL = new Set(['pending', 'running', 'waiting', 'paused']);
const WORKERS = ['worker-a', 'worker-b'] as const;

/** Claim order: priority desc, run_at asc, id asc. */
function claimOrder(a: MJob, b: MJob): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function holds(j: MJob, f: Fence): boolean {
  return j.status === 'running' && j.lockedBy === f.workerId && j.runCount === f.runCount;
}

function tick(m: Model, r: Real, ms = 1): void {
  m.now += ms;
  r.now = m.now;
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => isDurableJobsError(e, code as never), `expected ${code}`);
}

/** Asserts that the storage holds exactly the model's jobs in the run's queues. */
export async function compare(m: Model, r: Real): Promise<void> {
  const rows = new Map<string, JobRow>();
  for (const q of m.queues) for (const row of await r.s.jobList({ queue: q, limit: 10_000 })) rows.set(row.id, row);
  assert.equal(rows.size, m.jobs.length, 'number of jobs');
  for (const j of m.jobs) {
    const row = rows.get(j.id);
    assert.ok(row, `job ${j.id} exists`);
    const got = { status: row.status, attempt: row.attempt, runCount: row.runCount, runAt: row.runAt, lockedBy: row.lockedBy, lease: row.leaseExpiresAt, completedAt: row.completedAt, priority: row.priority, maxRetries: row.maxRetries };
    const want = { status: j.status, attempt: j.attempt, runCount: j.runCount, runAt: j.runAt, lockedBy: j.lockedBy, lease: j.leaseExpiresAt, completedAt: j.completedAt, priority: j.priority, maxRetries: j.maxRetries };
    assert.deepEqual(got, want, `job ${j.id}`);
    if (j.lastError === 'reclaim' && j.lastErrorAlt !== undefined && row.lastError === j.lastErrorAlt) continue;
    if (j.lastError === 'reclaim') assert.match(row.lastError ?? '', /^lease expired/, `job ${j.id} last error: ${String(row.lastError)}, expected a lease expiry`);
    else assert.equal(row.lastError, j.lastError, `job ${j.id} last error: ${String(row.lastError)}, expected ${String(j.lastError)}`);
  }
  for (const q of m.queues) {
    const c = await r.s.jobCountByStatus({ queue: q });
    for (const st of ['pending', 'running', 'completed', 'failed', 'cancelled', 'paused'] as const) {
      assert.equal(c[st], m.jobs.filter((j) => j.queue === q && j.status === st).length, `${st} count of ${q}`);
    }
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

/** How often each kind of command and outcome happened (a run report, not an assertion). */
export type Tally = Record<string, number>;

function count(t: Tally, key: string, n = 1): void {
  t[key] = (t[key] ?? 0) + n;
}

/** Builds a command from a label and a body (the bodies update the model and check the driver). */
function cmd(label: string, run: (m: Model, r: Real) => Promise<void>): Cmd {
  return {
    check: () => true,
    run: async (m, r) => {
      tick(m, r);
      count(r.tally, label.split('(')[0]!);
      await run(m, r);
      await compare(m, r);
    },
    toString: () => label,
  };
}

const pickJob = (m: Model, i: number): MJob | undefined => m.jobs[i % Math.max(1, m.jobs.length)];
/** Recent fences are picked most often (small numbers are generated most): they are the ones still valid. */
const pickFence = (m: Model, i: number): Fence | undefined => m.fences[m.fences.length - 1 - (i % Math.max(1, m.fences.length))];

/** Every command of the model, as fast-check arbitraries (the hot path ones listed several times, to weigh them). */
export function commands(): fc.Arbitrary<Cmd>[] {
  const all = commandList();
  const [enqueue, claim, finish] = all;
  return [...all, enqueue!, enqueue!, claim!, claim!, finish!, finish!];
}

function commandList(): fc.Arbitrary<Cmd>[] {
  const qIdx = fc.integer({ min: 0, max: 1 });
  const worker = fc.constantFrom(...WORKERS);
  return [
    fc.record({ q: qIdx, prio: fc.integer({ min: -1, max: 1 }), retries: fc.integer({ min: 0, max: 2 }), key: fc.integer({ min: -1, max: 1 }) }).map(({ q, prio, retries, key }) =>
      cmd(`enqueue(q${q}, p${prio}, r${retries}, k${key})`, async (m, r) => {
        const uniqueKey = key < 0 ? null : m.keys[key]!;
        const ins = jobInsert({ queue: m.queues[q]!, priority: prio, maxRetries: retries, uniqueKey });
        if (uniqueKey !== null && m.jobs.some((j) => j.uniqueKey === uniqueKey && NON_TERMINAL.has(j.status))) {
          await expectCode(r.s.jobInsertMany({ jobs: [ins] }), 'DUPLICATE_JOB');
          return;
        }
        assert.deepEqual(await r.s.jobInsertMany({ jobs: [ins] }), { inserted: [ins.id] });
        m.jobs.push({ id: ins.id, queue: ins.queue, priority: prio, maxRetries: retries, uniqueKey, status: 'pending', attempt: 0, runCount: 0, runAt: m.now, lockedBy: null, leaseExpiresAt: null, completedAt: null, lastError: null });
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
    fc.record({ f: fc.nat(), outcome: fc.constantFrom('completed', 'failed', 'retry0', 'retry7') }).map(({ f, outcome }) =>
      cmd(`finish(fence ${f}, ${outcome})`, async (m, r) => {
        const fence = pickFence(m, f);
        if (!fence) return;
        const j = m.jobs.find((x) => x.id === fence.jobId)!;
        const applies = holds(j, fence);
        const error = `boom ${m.now}`;
        const item =
          outcome === 'completed'
            ? { ...fence, outcome: 'completed' as const, resultJson: `{"t":${m.now}}` }
            : outcome === 'failed'
              ? { ...fence, outcome: 'failed' as const, error }
              : { ...fence, outcome: 'retry' as const, error, delayMs: outcome === 'retry0' ? 0 : 7 };
        assert.deepEqual(await r.s.jobFinishMany({ items: [item] }), [applies], 'fenced finish applies iff the fence holds');
        count(r.tally, applies ? 'finishes applied' : 'stale finishes refused');
        if (!applies) return;
        Object.assign(j, { lockedBy: null, leaseExpiresAt: null });
        if (item.outcome === 'completed') Object.assign(j, { status: 'completed', completedAt: m.now });
        else if (item.outcome === 'failed') Object.assign(j, { status: 'failed', completedAt: m.now, lastError: error, lastErrorAlt: undefined });
        else Object.assign(j, { status: 'pending', runAt: m.now + item.delayMs, lastError: error, lastErrorAlt: undefined });
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
        const j = m.jobs.find((x) => x.id === fence.jobId)!;
        const applies = holds(j, fence);
        assert.deepEqual(await r.s.jobRelease({ runs: [fence] }), applies ? [j.id] : []);
        if (applies) Object.assign(j, { status: 'pending', attempt: Math.max(0, j.attempt - 1), lockedBy: null, leaseExpiresAt: null });
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
          const failed = j.attempt > j.maxRetries;
          // Failed: the contract requires a reason saying the lease expired. Pending: see lastErrorAlt.
          const alt = failed ? undefined : j.lastError === 'reclaim' ? j.lastErrorAlt : j.lastError;
          Object.assign(j, { status: failed ? 'failed' : 'pending', lockedBy: null, leaseExpiresAt: null, lastError: 'reclaim', lastErrorAlt: alt, completedAt: failed ? m.now : null });
        }
      }),
    ),
    fc.nat().map((i) =>
      cmd(`cancel(job ${i})`, async (m, r) => {
        const j = pickJob(m, i);
        if (!j) return;
        const live = !TERMINAL.has(j.status);
        assert.deepEqual(await r.s.jobCancel({ id: j.id }), live ? [j.id] : []);
        if (live) Object.assign(j, { status: 'cancelled', completedAt: m.now, lockedBy: null, leaseExpiresAt: null });
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
        if (!j) return;
        if (j.status !== 'failed' && j.status !== 'cancelled') return expectCode(r.s.jobRetry({ id: j.id }), 'INVALID_STATE');
        if (j.uniqueKey !== null && m.jobs.some((o) => o !== j && o.uniqueKey === j.uniqueKey && NON_TERMINAL.has(o.status))) {
          return expectCode(r.s.jobRetry({ id: j.id }), 'DUPLICATE_JOB');
        }
        await r.s.jobRetry({ id: j.id });
        Object.assign(j, { status: 'pending', attempt: 0, runAt: m.now, completedAt: null, lockedBy: null, leaseExpiresAt: null });
      }),
    ),
    fc.record({ q: qIdx, paused: fc.boolean() }).map(({ q, paused }) =>
      cmd(`${paused ? 'pause' : 'resume'}Queue(q${q})`, async (m, r) => {
        const name = m.queues[q]!;
        await r.s.queueSetPaused({ queue: name, paused });
        if (paused) m.paused.add(name);
        else m.paused.delete(name);
        const listed = new Set(await r.s.queueListPaused());
        for (const x of m.queues) assert.equal(listed.has(x), m.paused.has(x), `queue ${x} paused`);
      }),
    ),
  ];
}
