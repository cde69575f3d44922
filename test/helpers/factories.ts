/**
 * Test factories: job inserts with sensible defaults, and helpers that put a job into a given
 * state through the storage contract only (insert → claim → finish/suspend/cancel/pause), so the
 * same helpers work on every driver.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { IdGenerator } from '../../src/internal/ids.js';
import type { Fence, JobInsert, JobRow, ReclaimedJob, StepRow, Storage } from '../../src/storage/storage.js';
import type { TestStorage } from './storages.js';
import { waitFor } from './wait-for.js';

/** One id generator for the whole test process: ids made in order are strictly increasing. */
const ids = new IdGenerator();
let nameSeq = 0;

/** A fresh UUIDv7 id, greater than every id made before in this process. */
export function newId(): string {
  return ids.next();
}

/** A short name unique within the test run (queue, type, schedule, unique key...). */
export function uniqueName(prefix = 'q'): string {
  nameSeq++;
  return `${prefix}_${nameSeq}_${randomBytes(3).toString('hex')}`;
}

/** Default lease of the helpers: long enough that no test reclaims it by accident. */
export const LONG_LEASE_MS = 60_000;

/** A `JobInsert` with defaults: type `test`, queue `default`, priority 0, 3 retries, no payloads. */
export function jobInsert(overrides: Partial<JobInsert> = {}): JobInsert {
  return {
    id: newId(),
    type: 'test',
    queue: 'default',
    priority: 0,
    maxRetries: 3,
    argsJson: null,
    metaJson: null,
    delayMs: 0,
    runAt: null,
    timeoutMs: null,
    uniqueKey: null,
    tenant: null,
    parentId: null,
    fanOutId: null,
    fanOutIndex: null,
    ...overrides,
  };
}

/** The fence of a claimed row. */
export function fenceOf(row: JobRow): Fence {
  assert.ok(row.lockedBy !== null, `job ${row.id} is not locked`);
  return { jobId: row.id, workerId: row.lockedBy, runCount: row.runCount };
}

/** A step checkpoint with defaults (completed, output `null`). */
export function stepRow(jobId: string, stepIndex: number, overrides: Partial<StepRow> = {}): StepRow {
  return { jobId, stepIndex, stepName: `step-${stepIndex}`, status: 'completed', outputJson: null, error: null, ...overrides };
}

/** Inserts one job and returns its id. */
export async function insertJob(s: Storage, overrides: Partial<JobInsert> = {}): Promise<string> {
  const job = jobInsert(overrides);
  const { inserted } = await s.jobInsertMany({ jobs: [job] });
  assert.deepEqual(inserted, [job.id]);
  return job.id;
}

/** `jobGet` that fails the test when the job does not exist. */
export async function mustGet(s: Storage, id: string): Promise<JobRow> {
  const row = await s.jobGet({ id });
  assert.ok(row, `job ${id} not found`);
  return row;
}

/** Options of the claim helpers. */
export interface ClaimOpts {
  workerId?: string;
  leaseMs?: number;
}

/** Claims up to `limit` jobs of one queue. */
export async function claim(s: Storage, queue: string, limit: number, opts: ClaimOpts = {}): Promise<JobRow[]> {
  return s.jobClaim({ workerId: opts.workerId ?? 'worker-a', queues: [{ name: queue, limit }], leaseMs: opts.leaseMs ?? LONG_LEASE_MS });
}

/** Claims exactly one job from `queue` and checks it is `expectedId` when given. */
export async function claimOne(s: Storage, queue: string, expectedId?: string, opts: ClaimOpts = {}): Promise<JobRow> {
  const rows = await claim(s, queue, 1, opts);
  assert.equal(rows.length, 1, `expected one job claimed from ${queue}, got ${rows.length}`);
  const row = rows[0]!;
  if (expectedId !== undefined) assert.equal(row.id, expectedId);
  return row;
}

/** A job and the fence of its current run. */
export interface RunningJob {
  row: JobRow;
  fence: Fence;
}

/**
 * Inserts a job and claims it. The job goes to a fresh queue unless `overrides.queue` is given
 * (that queue must then hold no other ready job ahead of it).
 */
export async function runningJob(s: Storage, overrides: Partial<JobInsert> = {}, opts: ClaimOpts = {}): Promise<RunningJob> {
  const queue = overrides.queue ?? uniqueName('q');
  const id = await insertJob(s, { ...overrides, queue });
  const row = await claimOne(s, queue, id, opts);
  return { row, fence: fenceOf(row) };
}

/** A job that ran and completed with `resultJson`. */
export async function completedJob(s: Storage, overrides: Partial<JobInsert> = {}, resultJson: string | null = '"ok"'): Promise<JobRow> {
  const { fence } = await runningJob(s, overrides);
  assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'completed', resultJson }] })), [true]);
  return mustGet(s, fence.jobId);
}

/** A job that ran and failed terminally with `error`. */
export async function failedJob(s: Storage, overrides: Partial<JobInsert> = {}, error = 'boom'): Promise<JobRow> {
  const { fence } = await runningJob(s, overrides);
  assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fence, outcome: 'failed', error }] })), [true]);
  return mustGet(s, fence.jobId);
}

/** A pending job that was cancelled. */
export async function cancelledJob(s: Storage, overrides: Partial<JobInsert> = {}): Promise<JobRow> {
  const id = await insertJob(s, { queue: uniqueName('q'), ...overrides });
  const cancelled = await s.jobCancel({ id });
  assert.ok(cancelled.includes(id));
  return mustGet(s, id);
}

/** A pending job that was paused. */
export async function pausedJob(s: Storage, overrides: Partial<JobInsert> = {}): Promise<JobRow> {
  const id = await insertJob(s, { queue: uniqueName('q'), ...overrides });
  await s.jobPause({ id });
  return mustGet(s, id);
}

/** A job that ran and suspended (sleep and/or signal wait) through `jobSuspend`. */
export async function waitingJob(
  s: Storage,
  overrides: Partial<JobInsert> = {},
  wait: { wakeAt?: number | null; waitSignal?: string | null; step?: StepRow | null } = {},
): Promise<{ row: JobRow; previousFence: Fence }> {
  const { fence } = await runningJob(s, overrides);
  const ok = await s.jobSuspend({ fence, step: wait.step ?? null, wakeAt: wait.wakeAt ?? null, waitSignal: wait.waitSignal ?? null });
  assert.equal(ok, true);
  return { row: await mustGet(s, fence.jobId), previousFence: fence };
}

/** Makes `n` more storage instances on the same database (other "processes"). */
export async function instances(ts: TestStorage, n: number): Promise<Storage[]> {
  return Promise.all(Array.from({ length: n }, () => ts.another()));
}

/** Waits until the storage clock is past `t`. */
export async function waitForClockPast(s: Storage, t: number, timeout = 5_000): Promise<void> {
  await waitFor(async () => (await s.clockNow()) > t, { timeout, message: `storage clock past ${t}` });
}

/** Calls `jobReclaimExpired` until every id in `ids` was reclaimed; returns their reclaim records. */
export async function reclaimUntil(s: Storage, jobIds: string[], timeout = 5_000): Promise<Map<string, ReclaimedJob>> {
  const seen = new Map<string, ReclaimedJob>();
  await waitFor(
    async () => {
      for (const r of await s.jobReclaimExpired({ limit: 1000 })) {
        if (jobIds.includes(r.id)) {
          assert.ok(!seen.has(r.id), `job ${r.id} reclaimed twice`);
          seen.set(r.id, r);
        }
      }
      return jobIds.every((id) => seen.has(id));
    },
    { timeout, message: `reclaim of ${jobIds.join(', ')}` },
  );
  return seen;
}

/** Calls `jobWakeDue` until every id in `ids` was woken; returns how often each was reported. */
export async function wakeUntil(s: Storage, jobIds: string[], timeout = 5_000): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  await waitFor(
    async () => {
      for (const id of await s.jobWakeDue({ limit: 1000 })) {
        if (jobIds.includes(id)) seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      return jobIds.every((id) => seen.has(id));
    },
    { timeout, message: `wake of ${jobIds.join(', ')}` },
  );
  return seen;
}

/**
 * A JSON text of exactly `bytes` UTF-8 bytes, with multi-byte characters (2-, 3- and 4-byte)
 * and spacing that a JSON column type would normalise away.
 */
export function bigJson(bytes: number): string {
  const head = '{ "k": "é€😀 ';
  const tail = '" ,"z":1 }';
  const fixed = Buffer.byteLength(head + tail, 'utf8');
  assert.ok(bytes >= fixed, 'bigJson: too small');
  const text = head + 'x'.repeat(bytes - fixed) + tail;
  assert.equal(Buffer.byteLength(text, 'utf8'), bytes);
  return text;
}

/** Tolerance (ms) between the clock read by `clockNow()` and the clock a statement used. */
export const CLOCK_SLACK_MS = 2;

/** Asserts `lo - slack <= value <= hi + slack`. */
export function assertBetween(value: number | null, lo: number, hi: number, what: string, slack = CLOCK_SLACK_MS): void {
  assert.ok(value !== null, `${what} is null`);
  assert.ok(value >= lo - slack && value <= hi + slack, `${what} = ${value}, expected within [${lo}, ${hi}] (±${slack} ms)`);
}

/** Asserts that every numeric field of a row is a JS number (not a string or bigint) or null. */
export function assertRowTypes(row: JobRow): void {
  const ints = ['priority', 'attempt', 'maxRetries', 'runCount', 'runAt', 'createdAt'] as const;
  for (const k of ints) assert.ok(Number.isSafeInteger(row[k]), `${k} should be an integer number, got ${typeof row[k]} ${String(row[k])}`);
  const nullableInts = ['startedAt', 'completedAt', 'timeoutMs', 'fanOutIndex', 'leaseExpiresAt', 'heartbeatAt', 'wakeAt'] as const;
  for (const k of nullableInts) {
    const v = row[k];
    assert.ok(v === null || Number.isSafeInteger(v), `${k} should be an integer number or null, got ${typeof v} ${String(v)}`);
  }
}

/** Options of {@link suspendIntoFanOut}. */
export interface FanOutOpts {
  /** Number of children. */
  n: number;
  strategy?: 'fail-fast' | 'collect-all' | 'threshold';
  threshold?: number | null;
  timeoutMs?: number | null;
  /** Step index of the fan-out checkpoint. @default 0 */
  stepIndex?: number;
  /** Queue of the children. @default a fresh queue */
  childQueue?: string;
  /** Extra fields of every child insert. */
  child?: Partial<JobInsert>;
}

/** A fan-out made by {@link suspendIntoFanOut}. */
export interface FanOutSetup {
  fanOutId: string;
  /** Children ids, by fan-out index. */
  childIds: string[];
  childQueue: string;
}

/** Suspends the running job of `fence` into a fan-out of `n` children (asserts it applied). */
export async function suspendIntoFanOut(s: Storage, fence: Fence, opts: FanOutOpts): Promise<FanOutSetup> {
  const fanOutId = newId();
  const childQueue = opts.childQueue ?? uniqueName('kids');
  const children = Array.from({ length: opts.n }, (_, i) =>
    jobInsert({ type: 'child', ...opts.child, queue: childQueue, parentId: fence.jobId, fanOutId, fanOutIndex: i }),
  );
  const stepIndex = opts.stepIndex ?? 0;
  const ok = await s.jobSuspendFanOut({
    fence,
    step: stepRow(fence.jobId, stepIndex, { stepName: 'fan-out', outputJson: JSON.stringify(fanOutId) }),
    fanOut: { id: fanOutId, strategy: opts.strategy ?? 'fail-fast', threshold: opts.threshold ?? null, timeoutMs: opts.timeoutMs ?? null },
    children,
  });
  assert.equal(ok, true, 'jobSuspendFanOut applied');
  return { fanOutId, childIds: children.map((c) => c.id), childQueue };
}

/** A parent job (claimed, then suspended) waiting on a fresh fan-out. */
export interface FanOutParent extends FanOutSetup {
  parentId: string;
  /** The parent's queue. */
  queue: string;
  /** The fence of the run that suspended (stale once suspended). */
  fence: Fence;
}

/** Inserts and claims a parent, then suspends it into a fan-out. */
export async function fanOutParent(s: Storage, opts: FanOutOpts, parent: Partial<JobInsert> = {}): Promise<FanOutParent> {
  const { row, fence } = await runningJob(s, { type: 'parent', ...parent });
  const setup = await suspendIntoFanOut(s, fence, opts);
  return { ...setup, parentId: row.id, queue: row.queue, fence };
}

/** Claims every child of a fan-out (they are ready in index order) and returns their fences by index. */
export async function claimChildren(s: Storage, setup: FanOutSetup, opts: ClaimOpts = {}): Promise<Fence[]> {
  const rows = await claim(s, setup.childQueue, setup.childIds.length, opts);
  assert.deepEqual(
    rows.map((r) => r.id),
    setup.childIds,
    'children are claimed in fan-out order',
  );
  return rows.map(fenceOf);
}

/**
 * Polls `jobWakeDue` until job `id` is woken, failing if a call woke it while the storage clock
 * (read right after the call) was still before `wakeAt`, and if a later call reports it again.
 */
export async function expectWakeAt(s: Storage, id: string, wakeAt: number, timeout = 5_000): Promise<void> {
  let woken = false;
  await waitFor(
    async () => {
      const ids = await s.jobWakeDue({ limit: 1000 });
      const after = await s.clockNow();
      if (ids.includes(id)) {
        assert.ok(after >= wakeAt, `job ${id} woken at ${after}, before its wake time ${wakeAt}`);
        woken = true;
      }
      return woken;
    },
    { timeout, message: `wake of ${id}` },
  );
  assert.ok(!(await s.jobWakeDue({ limit: 1000 })).includes(id), `job ${id} woken twice`);
}

/** Per item of a `jobFinishMany` result: whether it applied (a stored time rather than null). */
export function applied(stored: readonly (number | null)[]): boolean[] {
  return stored.map((at) => at !== null);
}
