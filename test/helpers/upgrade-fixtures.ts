/**
 * What the upgrade tests of the SQLite and MySQL/MariaDB drivers share
 * (`test/storage/{sqlite,mysql}-upgrade.test.ts`). Each test makes a database at schema version 1
 * with its own SQL, then:
 * - {@link seedAtVersion1} fills it through the storage contract (the calls a worker makes) with
 *   jobs in every status: pending (one holding a unique key), paused, running with a lease, waiting
 *   on a timer, on a signal and on a fan-out, completed, failed and cancelled, a finished workflow
 *   with steps, a fan-out, its children and signals, and a finished root whose late fan-out child is
 *   still pending — old ones finished {@link AGE} and more before the others;
 * - {@link bulkRows} gives the many plain rows each driver inserts with its own SQL;
 * - {@link readThroughApi} reads everything through `Queue` and `Storage`, before and after;
 * - {@link checkLeasesHold}, {@link checkWorkflowsCarryOn} and {@link checkWorkerRuns} carry the
 *   migrated jobs on;
 * - {@link pruneModel} says which jobs a prune with {@link AGE} must delete, from the raw rows;
 * - {@link itCarriesOnAfterUpgrade} registers the tests both drivers run alike after the upgrade.
 * Every storage on the database shares one {@link ManualClock}.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { DuplicateJobError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import type { Fence, Storage } from '../../src/storage/storage.js';
import { applied, claim, claimChildren, claimOne, completedJob, failedJob, fenceOf, insertJob, mustGet, runningJob, stepRow, suspendIntoFanOut, uniqueName } from './factories.js';

/** The retention age of the prune after the upgrade: the old jobs are due, the others not (ms). */
export const AGE = 3_600_000;
/** When the old jobs finished. */
export const T_OLD = Date.UTC(2030, 0, 1);
/** When everything else happened, and the clock at the upgrade. */
export const T_NOW = T_OLD + 2 * AGE;
/** The lease of the runs left running at the upgrade (ms). */
export const LEASE_MS = 10 * 60_000;
/** The lease of the run that expires after the upgrade (ms). */
export const SHORT_LEASE_MS = 1_000;
/** Plain finished roots inserted with SQL: the first half finished before T_OLD (due), the rest before T_NOW. */
export const BULK_DONE = 2_000;
/** Plain pending jobs inserted with SQL, each with its own unique key, in queue `bulk`. */
export const BULK_LIVE = 200;

/** A clock every storage on the test database reads (`clock: () => at.now`). */
export interface ManualClock {
  now: number;
}

/** The jobs of {@link seedAtVersion1}, by role. */
export interface Seeded {
  /** Every job made, by role (children included). */
  readonly ids: Readonly<Record<Role, string>>;
  /** The run left running with a long lease, and the run whose short lease expires later. */
  readonly running: Fence;
  readonly expiring: Fence;
  /** The running child of the live fan-out. */
  readonly fanKid1: Fence;
  /** Fan-outs: the live one (collect-all, 3 children), the finished workflow's and the early-decided one's. */
  readonly fanOuts: { readonly live: string; readonly wf: string; readonly early: string };
  /** Queue of the live fan-out's children. */
  readonly kidQueue: string;
}

/** The roles of {@link Seeded.ids}. */
export type Role =
  | 'oldCompleted' | 'oldFailed' | 'oldCancelled' | 'wfRoot' | 'wfKid0' | 'wfKid1' | 'earlyRoot' | 'earlyKid0' | 'earlyKid1'
  | 'recentCompleted' | 'recentFailed' | 'recentCancelled' | 'pending' | 'paused' | 'work' | 'running' | 'expiring'
  | 'sleeping' | 'signalWait' | 'fanParent' | 'fanKid0' | 'fanKid1' | 'fanKid2';

/** The jobs a prune at {@link AGE} right after the upgrade deletes, and those it must keep. */
export const DUE_ROLES: readonly Role[] = ['oldCompleted', 'oldFailed', 'oldCancelled', 'wfRoot', 'wfKid0', 'wfKid1'];

/** Finishes fenced runs as completed with the given results; asserts each applied. */
async function complete(s: Storage, runs: readonly Fence[], results: readonly string[]): Promise<void> {
  const stored = await s.jobFinishMany({ items: runs.map((f, i) => ({ ...f, outcome: 'completed' as const, resultJson: results[i] ?? null })) });
  assert.deepEqual(applied(stored), runs.map(() => true));
}

/**
 * Fills a database at schema version 1 through `s` (which must not migrate), moving `at` from
 * {@link T_OLD} to {@link T_NOW}. Queues: `mq` (plain jobs), `up-work` (the job a worker runs after
 * the upgrade), fresh ones for the workflows.
 */
export async function seedAtVersion1(s: Storage, at: ManualClock): Promise<Seeded> {
  at.now = T_OLD;
  const ids: Partial<Record<Role, string>> = {};
  ids.oldCompleted = (await completedJob(s, { queue: 'mq', argsJson: '{"old":1}' }, '{"v":1}')).id;
  ids.oldFailed = (await failedJob(s, { queue: 'mq', maxRetries: 0 }, 'boom')).id;
  ids.oldCancelled = await insertJob(s, { queue: 'mq', uniqueKey: 'k-old' });
  assert.deepEqual(await s.jobCancel({ id: ids.oldCancelled }), [ids.oldCancelled]);

  // A workflow that finished: a step, a fan-out of two children, a signal it consumed, one it never read.
  const wf = await runningJob(s, { type: 'wf', argsJson: '{"order":7}' });
  ids.wfRoot = wf.row.id;
  assert.equal(await s.stepRecord({ fence: wf.fence, step: stepRow(wf.row.id, 0, { stepName: 'validate', outputJson: '{"ok":true}' }) }), true);
  const wfFan = await suspendIntoFanOut(s, wf.fence, { n: 2, stepIndex: 1 });
  [ids.wfKid0, ids.wfKid1] = wfFan.childIds as [string, string];
  await complete(s, await claimChildren(s, wfFan), ['1', '2']);
  const wf2 = fenceOf(await claimOne(s, wf.row.queue, wf.row.id));
  const wait = { stepIndex: 2, stepName: 'approve', signalName: 'approve', deadlineAt: null };
  assert.deepEqual(await s.signalConsumeOrWait({ fence: wf2, ...wait }), { kind: 'suspended' });
  await s.signalSend({ jobId: wf.row.id, name: 'approve', payloadJson: '"yes"' });
  const wf3 = fenceOf(await claimOne(s, wf.row.queue, wf.row.id));
  assert.deepEqual(await s.signalConsumeOrWait({ fence: wf3, ...wait }), { kind: 'consumed', payloadJson: '"yes"' });
  await s.signalSend({ jobId: wf.row.id, name: 'late', payloadJson: '1' });
  await complete(s, [wf3], ['"all"']);

  // A root decided early by a threshold and finished, its second child still pending.
  const early = await runningJob(s, { type: 'parent' });
  ids.earlyRoot = early.row.id;
  const earlyFan = await suspendIntoFanOut(s, early.fence, { n: 2, strategy: 'threshold', threshold: 0.5 });
  [ids.earlyKid0, ids.earlyKid1] = earlyFan.childIds as [string, string];
  await complete(s, [fenceOf(await claimOne(s, earlyFan.childQueue, ids.earlyKid0))], ['"e0"']);
  await complete(s, [fenceOf(await claimOne(s, early.row.queue, early.row.id))], ['"early"']);

  at.now = T_NOW;
  ids.recentCompleted = (await completedJob(s, { queue: 'mq' }, null)).id;
  ids.recentFailed = (await failedJob(s, { queue: 'mq', maxRetries: 0 }, 'recent boom')).id;
  ids.recentCancelled = await insertJob(s, { queue: 'mq', uniqueKey: 'k-live' });
  await s.jobCancel({ id: ids.recentCancelled });
  ids.pending = await insertJob(s, { queue: 'mq', uniqueKey: 'k-live', priority: 5, argsJson: '{"p":1}', metaJson: '{"m":1}', tenant: 't1' });
  ids.paused = await insertJob(s, { queue: uniqueName('pq') });
  await s.jobPause({ id: ids.paused });
  ids.work = await insertJob(s, { queue: 'up-work', type: 'up-echo', argsJson: '{"n":41}' });
  const running = await runningJob(s, { type: 'up-echo', argsJson: '{"n":1}' }, { workerId: 'w-old', leaseMs: LEASE_MS });
  ids.running = running.row.id;
  const expiring = await runningJob(s, {}, { workerId: 'w-old', leaseMs: SHORT_LEASE_MS });
  ids.expiring = expiring.row.id;

  const sleeping = await runningJob(s, { type: 'sleeper' });
  ids.sleeping = sleeping.row.id;
  const wakeAt = T_NOW + AGE;
  assert.equal(await s.jobSuspend({ fence: sleeping.fence, step: stepRow(sleeping.row.id, 0, { stepName: 'nap', outputJson: String(wakeAt) }), wakeAt, waitSignal: null }), true);

  const signalWait = await runningJob(s, { type: 'approver' });
  ids.signalWait = signalWait.row.id;
  assert.deepEqual(await s.signalConsumeOrWait({ fence: signalWait.fence, stepIndex: 0, stepName: 'approval', signalName: 'go', deadlineAt: null }), { kind: 'suspended' });
  await s.signalSend({ jobId: signalWait.row.id, name: 'other', payloadJson: '"buffered"' });

  // A live collect-all fan-out: child 0 completed, child 1 running, child 2 pending.
  const parent = await runningJob(s, { type: 'parent' });
  ids.fanParent = parent.row.id;
  const live = await suspendIntoFanOut(s, parent.fence, { n: 3, strategy: 'collect-all' });
  [ids.fanKid0, ids.fanKid1, ids.fanKid2] = live.childIds as [string, string, string];
  const kids = await claim(s, live.childQueue, 2, { workerId: 'w-old', leaseMs: LEASE_MS });
  assert.deepEqual(kids.map((k) => k.id), [ids.fanKid0, ids.fanKid1]);
  await complete(s, [fenceOf(kids[0]!)], ['"r0"']);

  return {
    ids: ids as Record<Role, string>,
    running: running.fence,
    expiring: expiring.fence,
    fanKid1: fenceOf(kids[1]!),
    fanOuts: { live: live.fanOutId, wf: wfFan.fanOutId, early: earlyFan.fanOutId },
    kidQueue: live.childQueue,
  };
}

/** One plain job row of {@link bulkRows}, by column. */
export interface BulkRow {
  id: string; type: string; queue: string; status: string; attempt: number; run_count: number; args: string;
  result: string | null; last_error: string | null; run_at: number; created_at: number; started_at: number | null;
  completed_at: number | null; unique_key: string | null;
}

/** {@link BULK_DONE} finished roots (completed, failed, cancelled in turn) then {@link BULK_LIVE} pending jobs. */
export function bulkRows(): BulkRow[] {
  const made = T_OLD - 10 * BULK_DONE;
  const rows: BulkRow[] = [];
  for (let i = 0; i < BULK_DONE; i++) {
    const status = (['completed', 'failed', 'cancelled'] as const)[i % 3]!;
    const end = (i < BULK_DONE / 2 ? T_OLD : T_NOW) - i;
    rows.push({
      id: `bulk-done-${String(i).padStart(5, '0')}`, type: 'bulk', queue: 'bulk', status, attempt: 1, run_count: 1, args: `{"n":${i}}`,
      result: status === 'completed' ? `"r${i}"` : null, last_error: status === 'failed' ? `bulk ${i}` : null,
      run_at: made, created_at: made, started_at: end - 1, completed_at: end, unique_key: null,
    });
  }
  for (let i = 1; i <= BULK_LIVE; i++) {
    rows.push({
      id: `bulk-live-${String(i).padStart(5, '0')}`, type: 'bulk', queue: 'bulk', status: 'pending', attempt: 0, run_count: 0, args: `{"n":${i}}`,
      result: null, last_error: null, run_at: made + i, created_at: made, started_at: null, completed_at: null, unique_key: `bulk-key-${i}`,
    });
  }
  return rows;
}

/** Ids of a few bulk rows read through the API before and after (old and recent, every status, live). */
export const BULK_SAMPLE = ['bulk-done-00000', 'bulk-done-00001', 'bulk-done-00002', 'bulk-done-01998', 'bulk-live-00001', `bulk-live-${String(BULK_LIVE).padStart(5, '0')}`];

/** Everything readable through `Queue` and `Storage` about the seeded jobs: compared before and after the upgrade. */
export async function readThroughApi(queue: Queue, s: Storage, seeded: Seeded): Promise<Record<string, unknown>> {
  const ids = [...Object.values(seeded.ids), ...BULK_SAMPLE].sort();
  const jobs: Record<string, unknown> = {};
  const steps: Record<string, unknown> = {};
  for (const id of ids) {
    jobs[id] = await queue.getJob(id);
    assert.ok(jobs[id], `job ${id} readable`);
    steps[id] = await s.stepList({ jobId: id });
  }
  const rows = (await s.jobGetMany({ ids })).sort((a, b) => a.id.localeCompare(b.id));
  const fanOuts = await Promise.all(Object.values(seeded.fanOuts).map((id) => s.fanOutGet({ id })));
  const children = await s.jobList({ parentId: seeded.ids.fanParent, limit: 10, order: 'asc' });
  const failed = await s.jobList({ statuses: ['failed'], queue: 'mq', limit: 10, order: 'asc' });
  return { jobs, rows, steps, fanOuts, children, failed, stats: await queue.stats(), bulkStats: await queue.stats({ queue: 'bulk' }) };
}

/**
 * After the upgrade: the runs keep their leases. Stale fences (other worker, older run) change
 * nothing; the right fence heartbeats and finishes the run, which `waitForJob` sees with its
 * result; the short lease expires on the database clock and the reclaim takes exactly that run.
 * Moves `at` past the short lease.
 */
export async function checkLeasesHold(queue: Queue, s: Storage, at: ManualClock, seeded: Seeded): Promise<void> {
  const { running, expiring, fanKid1 } = seeded;
  const before = await mustGet(s, running.jobId);
  assert.equal(before.status, 'running');
  assert.equal(before.lockedBy, 'w-old');
  assert.equal(before.leaseExpiresAt, T_NOW + LEASE_MS);
  assert.deepEqual(await s.jobReclaimExpired({ limit: 100 }), [], 'no lease has expired');
  const stale: Fence[] = [{ ...running, runCount: running.runCount + 1 }, { ...running, workerId: 'w-new' }];
  for (const f of stale) {
    assert.deepEqual(await s.jobHeartbeat({ workerId: f.workerId, runs: [f], leaseMs: LEASE_MS }), []);
    assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...f, outcome: 'completed', resultJson: '0' }] })), [false]);
  }
  assert.deepEqual((await s.jobHeartbeat({ workerId: 'w-old', runs: [running, fanKid1], leaseMs: LEASE_MS })).sort(), [running.jobId, fanKid1.jobId].sort());
  assert.deepEqual(await s.jobHeartbeat({ workerId: 'w-old', runs: [expiring], leaseMs: SHORT_LEASE_MS }), [expiring.jobId]);
  const waited = queue.waitForJob<unknown, { echo: number }>(running.jobId, { timeout: 10_000, pollInterval: 5 });
  assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...running, outcome: 'completed', resultJson: '{"echo":2}' }] })), [true]);
  const done = await waited;
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.result, { echo: 2 });
  assert.equal(done.completedAt?.getTime(), T_NOW);

  at.now = T_NOW + SHORT_LEASE_MS;
  assert.deepEqual(await s.jobReclaimExpired({ limit: 100 }), [], 'a lease is held at its very last millisecond');
  at.now += 1;
  assert.deepEqual((await s.jobReclaimExpired({ limit: 100 })).map((r) => r.id), [expiring.jobId]);
  const back = await mustGet(s, expiring.jobId);
  assert.equal(back.status, 'pending');
  assert.equal(back.lockedBy, null);
  assert.equal((await mustGet(s, fanKid1.jobId)).lockedBy, 'w-old', 'the long lease is kept');
}

/**
 * After the upgrade: the workflows carry on. The live fan-out's running child finishes by its
 * fence and the pending one runs, which decides the fan-out and resumes its parent; a signal
 * resumes the job waiting for it, whose run consumes it; the paused job resumes; finished jobs
 * answer `waitForJob` at once with their result or error; unique keys keep their meaning.
 */
export async function checkWorkflowsCarryOn(queue: Queue, s: Storage, seeded: Seeded): Promise<void> {
  const { ids } = seeded;
  await complete(s, [seeded.fanKid1], ['"r1"']);
  assert.equal((await s.fanOutGet({ id: seeded.fanOuts.live }))?.status, 'running');
  await complete(s, [fenceOf(await claimOne(s, seeded.kidQueue, ids.fanKid2, { workerId: 'w-new' }))], ['"r2"']);
  const fo = await s.fanOutCollect({ id: seeded.fanOuts.live });
  assert.equal(fo?.fanOut.status, 'succeeded');
  assert.equal(fo?.fanOut.succeeded, 3);
  assert.deepEqual(fo?.children.map((k) => k.resultJson), ['"r0"', '"r1"', '"r2"']);
  assert.equal((await mustGet(s, ids.fanParent)).status, 'pending', 'the parent is resumed');

  await s.signalSend({ jobId: ids.signalWait, name: 'go', payloadJson: '"now"' });
  const resumed = await mustGet(s, ids.signalWait);
  assert.equal(resumed.status, 'pending');
  const run = fenceOf(await claimOne(s, resumed.queue, ids.signalWait, { workerId: 'w-new' }));
  assert.deepEqual(await s.signalConsumeOrWait({ fence: run, stepIndex: 0, stepName: 'approval', signalName: 'go', deadlineAt: null }), { kind: 'consumed', payloadJson: '"now"' });
  assert.deepEqual(await s.signalConsumeOrWait({ fence: run, stepIndex: 1, stepName: 'other', signalName: 'other', deadlineAt: null }), { kind: 'consumed', payloadJson: '"buffered"' });
  assert.deepEqual((await s.stepList({ jobId: ids.signalWait })).map((x) => [x.stepName, x.status, x.outputJson]), [['approval', 'completed', '"now"'], ['other', 'completed', '"buffered"']]);

  await queue.resumeJob(ids.paused);
  assert.equal((await queue.getJob(ids.paused))?.status, 'pending');
  assert.deepEqual(await s.jobWakeDue({ limit: 100 }), [], 'the timer is not due');

  const wfDone = await queue.waitForJob(ids.wfRoot, { timeout: 1_000 });
  assert.equal(wfDone.result, 'all');
  assert.equal((await queue.waitForJob(ids.oldFailed, { timeout: 1_000 })).lastError, 'boom');
  assert.equal((await queue.waitForJob(ids.wfKid1, { timeout: 1_000 })).result, 2);

  await assert.rejects(queue.enqueue('x', {}, { queue: 'mq', unique: 'k-live' }), DuplicateJobError);
  await assert.rejects(queue.retryJob(ids.recentCancelled), DuplicateJobError, 'the key is still held by the pending job');
  assert.equal((await queue.getJob(ids.recentCancelled))?.status, 'cancelled');
  await queue.enqueue('x', {}, { queue: uniqueName('q'), unique: 'k-old' }); // a finished job's key is free

  const bulk = await s.jobClaim({ workerId: 'w-new', queues: [{ name: 'bulk', limit: BULK_LIVE + 10 }], leaseMs: LEASE_MS });
  assert.equal(bulk.length, BULK_LIVE);
  assert.equal(bulk[0]!.id, 'bulk-live-00001', 'claim order kept');
}

/** After the upgrade: a worker runs the pending job of `up-work`, and `waitForJob` answers with its result. */
export async function checkWorkerRuns(s: Storage, seeded: Seeded): Promise<void> {
  const queue = new Queue(s, { retention: false });
  queue.register('up-echo', async (args: { n: number }) => ({ echo: args.n + 1 }));
  const worker = queue.newWorker({ queues: { 'up-work': { concurrency: 1 } }, pruneInterval: false, handleSignals: false, pollInterval: 20 });
  const started = worker.start();
  try {
    const done = await queue.waitForJob<{ n: number }, { echo: number }>(seeded.ids.work, { timeout: 10_000, pollInterval: 10 });
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { echo: 42 });
    assert.deepEqual(done.args, { n: 41 });
  } finally {
    await worker.stop();
    await started;
  }
}

/** A job as the prune model needs it. */
export interface PruneRow {
  id: string;
  parentId: string | null;
  status: string;
  completedAt: number | null;
}

const FINISHED = new Set(['completed', 'failed', 'cancelled']);

/**
 * The jobs a prune deletes when every status has age `age` at database time `now`: each finished
 * root whose whole subtree (itself included) is finished with `now - completed_at > age`.
 */
export function pruneModel(rows: readonly PruneRow[], now: number, age: number): Set<string> {
  const kids = new Map<string, PruneRow[]>();
  for (const r of rows) if (r.parentId !== null) kids.set(r.parentId, [...(kids.get(r.parentId) ?? []), r]);
  const out = new Set<string>();
  for (const root of rows) {
    if (root.parentId !== null) continue;
    const tree: PruneRow[] = [];
    const todo = [root];
    for (let r = todo.pop(); r !== undefined; r = todo.pop()) {
      tree.push(r);
      todo.push(...(kids.get(r.id) ?? []));
    }
    if (tree.every((r) => FINISHED.has(r.status) && r.completedAt !== null && now - r.completedAt > age)) for (const r of tree) out.add(r.id);
  }
  return out;
}

/** What a driver's upgrade test hands {@link itCarriesOnAfterUpgrade}: its state once its `before` hook has run. */
export interface UpgradedDatabase {
  queue: Queue;
  s: Storage;
  at: ManualClock;
  seeded: Seeded;
  /** What {@link readThroughApi} answered before the upgrade. */
  apiBefore: unknown;
  /** Every job as the prune model needs it, read with the driver's own SQL. */
  pruneRows(): PruneRow[] | Promise<PruneRow[]>;
  /** The owning job of every step, signal and fan-out row, sorted, under `steps`, `signals` and `fanOuts`. */
  owners(): Record<string, string[]> | Promise<Record<string, string[]>>;
}

/**
 * Registers, in this order, the tests every driver's upgrade runs alike: every read answers as
 * before, leases hold, workflows carry on, a worker runs a pending job, and a prune deletes exactly
 * the due finished roots (then a workflow once its last child is old enough). `get` is called
 * inside each test, so after the suite's `before` hook.
 */
export function itCarriesOnAfterUpgrade(get: () => UpgradedDatabase): void {
  it('answers every read through the queue and the storage as before', async () => {
    const { queue, s, seeded, apiBefore } = get();
    assert.deepEqual(await readThroughApi(queue, s, seeded), apiBefore);
  });

  it('keeps the leases of running jobs: stale fences change nothing, the fence finishes the run, an expired lease is reclaimed', async () => {
    const { queue, s, at, seeded } = get();
    await checkLeasesHold(queue, s, at, seeded);
  });

  it('carries the workflows on: fan-out children, signals, resume, unique keys, claims', async () => {
    const { queue, s, seeded } = get();
    await checkWorkflowsCarryOn(queue, s, seeded);
  });

  it('runs a pending job on a worker', async () => {
    const { s, seeded } = get();
    await checkWorkerRuns(s, seeded);
  });

  it('prunes exactly the due finished roots with their subtrees, steps, signals and fan-outs', async () => {
    const { queue, s, at, seeded, pruneRows, owners } = get();
    const all = await pruneRows();
    const had = await owners();
    const due = pruneModel(all, await s.clockNow(), AGE);
    for (const role of DUE_ROLES) assert.ok(due.has(seeded.ids[role]), `${role} is due`);
    assert.equal(due.size, DUE_ROLES.length + BULK_DONE / 2);
    assert.equal(await queue.prune({ olderThan: AGE }), due.size);
    assert.deepEqual((await pruneRows()).map((r) => r.id).sort(), all.map((r) => r.id).filter((id) => !due.has(id)).sort());
    const keep = (ids: string[]) => ids.filter((id) => !due.has(id));
    assert.deepEqual(await owners(), { steps: keep(had['steps']!), signals: keep(had['signals']!), fanOuts: keep(had['fanOuts']!) });
    assert.equal(await queue.getJob(seeded.ids.wfRoot), undefined);
    assert.equal((await queue.getJob(seeded.ids.earlyRoot))?.status, 'completed', 'a root with a pending child is kept');

    // Its last child finishes: the whole workflow is due.
    const kid = await claimOne(s, (await queue.getJob(seeded.ids.earlyKid1))!.queue, seeded.ids.earlyKid1);
    assert.deepEqual(applied(await s.jobFinishMany({ items: [{ ...fenceOf(kid), outcome: 'completed', resultJson: null }] })), [true]);
    assert.equal(await queue.prune({ olderThan: AGE }), 0, 'the workflow waits for its youngest job to pass the age');
    at.now += AGE + 1;
    const dueLater = pruneModel(await pruneRows(), await s.clockNow(), AGE);
    for (const role of ['earlyRoot', 'earlyKid0', 'earlyKid1'] as const) assert.ok(dueLater.has(seeded.ids[role]), `${role} is due once its last job is old enough`);
    assert.equal(await queue.prune({ olderThan: AGE }), dueLater.size);
    for (const role of ['earlyRoot', 'earlyKid0', 'earlyKid1'] as const) assert.equal(await queue.getJob(seeded.ids[role]), undefined);
    assert.equal(await queue.prune({ olderThan: AGE }), 0);
  });
}
