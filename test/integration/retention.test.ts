/**
 * Retention through the public API, on every selected driver: `queue.prune()` and its
 * `olderThan`, `retention: false`, the workers' maintenance pruning in small batches at most once
 * per interval, a failed prune that leaves the worker running, bad options, and several real
 * processes pruning one database at once.
 *
 * Ages are days long, so the storages here run on a clock the test shifts forward (time flows,
 * plus an offset): a jump of eight days takes no time, and no test waits for an age to pass.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { InvalidArgumentError, noRetry } from '../../src/errors.js';
import { Queue, type QueueOptions } from '../../src/queue/queue.js';
import type { JobPruneResult, Storage } from '../../src/storage/storage.js';
import type { JobEvent, JobStatus } from '../../src/types.js';
import { sub } from '../../src/workflow/fan-out.js';
import type { WorkerOptions } from '../../src/worker/worker.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { clockedDb } from '../helpers/schedule-helpers.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { StorageWatch } from '../helpers/workflow-harness.js';

const DAY = 24 * 3600_000;
const fast = { pollInterval: 20, maintenanceInterval: 20, heartbeatInterval: 50, drainTimeout: 1_000, handleSignals: false } as const;
const PRUNER = new URL('./fixtures/pruner.ts', import.meta.url).pathname;

/** A storage on a fresh database whose clock runs `offset` ms ahead of the host's. */
interface Shifted {
  storage: Storage;
  /** Moves the storage's clock forward. */
  shift(ms: number): void;
  cleanup(): Promise<void>;
}

async function shifted(dialect: string, label: string): Promise<Shifted> {
  const db = await clockedDb(dialect, label);
  let offset = 0;
  const storage = await db.open(() => Date.now() + offset);
  return { storage, shift: (ms) => void (offset += ms), cleanup: () => db.cleanup() };
}

/** Registers the handlers every test uses: `ok` returns 1, `bad` fails at once, `wf` fans out to two `ok`. */
function handlers(queue: Queue): void {
  queue.register('ok', async () => 1);
  queue.register('bad', async () => {
    throw noRetry(new Error('no'));
  });
  queue.register('wf', async (_args, ctx) => {
    await ctx.fanOut([sub('ok', {}), sub('ok', {})], { strategy: 'collect-all' });
    return 'done';
  });
}

/** Runs jobs until each id is finished, on a worker that does not prune. */
async function runAll(queue: Queue, ids: string[], options: WorkerOptions = {}): Promise<void> {
  const worker = queue.newWorker({ ...fast, pruneInterval: false, queues: { default: { concurrency: 20 } }, ...options });
  void worker.start();
  try {
    for (const id of ids) await queue.waitForJob(id, { timeout: 60_000 });
  } finally {
    await worker.stop();
  }
}

/** Enqueues `n` jobs of a type; returns their ids. */
async function many(queue: Queue, type: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 500) {
    ids.push(...(await queue.enqueueBatch(Array.from({ length: Math.min(500, n - i) }, () => ({ type, args: {} })))));
  }
  return ids;
}

/** Ids of a job's children. */
async function kidsOf(storage: Storage, parentId: string): Promise<string[]> {
  return (await storage.jobList({ parentId, limit: 100 })).map((r) => r.id);
}

/** Asserts which of `ids` exist. */
async function expectPresent(queue: Queue, ids: string[], present: boolean, what: string): Promise<void> {
  for (const id of ids) assert.equal((await queue.getJob(id)) !== undefined, present, `${what}: job ${id} ${present ? 'missing' : 'still there'}`);
}

/** Collects `jobs.pruned` and `worker.error` events of a queue until `stop()`. */
function watch(queue: Queue): { pruned: number[]; errors: string[]; stop: () => Promise<void> } {
  const stream = queue.events({ bufferSize: Infinity });
  const out = { pruned: [] as number[], errors: [] as string[] };
  const done = (async () => {
    for await (const e of stream as AsyncIterable<JobEvent>) {
      if (e.type === 'jobs.pruned') out.pruned.push(e.deleted);
      if (e.type === 'worker.error') out.errors.push(e.error);
    }
  })();
  return { ...out, stop: async () => void (await stream.return?.(), await done) };
}

/** Puts a job into `running` with a one-second lease, so the next maintenance pass after the clock moves reclaims it. */
async function expiringRun(queue: Queue, s: Shifted): Promise<string> {
  const id = await queue.enqueue('ok', {}, { queue: 'lease' });
  assert.equal((await s.storage.jobClaim({ workerId: 'gone', queues: [{ name: 'lease', limit: 1 }], leaseMs: 1_000 })).length, 1);
  return id;
}

for (const [dialect] of storageMatrix()) {
  describe(`retention (${dialect})`, () => {
    it('queue.prune() deletes what the ages say is due, prune({ olderThan: 0 }) every finished job; live jobs stay', async () => {
      const s = await shifted(dialect, 'retention-prune');
      try {
        const queue = new Queue(s.storage, { retention: { completed: DAY, failed: false, cancelled: 30 * DAY } });
        handlers(queue);
        const ok = await many(queue, 'ok', 3);
        const bad = await many(queue, 'bad', 2);
        const wf = await queue.enqueue('wf', {});
        const live = await queue.enqueue('ok', {}, { delay: 365 * DAY });
        const cancelled = await queue.enqueue('ok', {}, { delay: 365 * DAY });
        await queue.cancelJob(cancelled);
        await runAll(queue, [...ok, ...bad, wf]);
        const kids = await kidsOf(s.storage, wf);
        assert.equal(kids.length, 2);
        const events = watch(queue);

        s.shift(DAY - 60_000);
        assert.equal(await queue.prune(), 0, 'a minute before the completed age');
        s.shift(2 * 60_000);
        assert.equal(await queue.prune(), 6, 'three completed jobs and the workflow of three');
        await expectPresent(queue, [...ok, wf, ...kids], false, 'completed past one day');
        await expectPresent(queue, [...bad, cancelled, live], true, 'failed (kept forever), cancelled (30 days), live');
        assert.equal(await queue.prune({ olderThan: 0 }), 3, 'every finished job: the failed and the cancelled');
        assert.equal(await queue.prune({ olderThan: 0 }), 0);
        const stats = await queue.stats();
        assert.deepEqual([stats.completed, stats.failed, stats.cancelled, stats.pending], [0, 0, 0, 1]);
        assert.equal((await queue.getJob(live))?.status, 'pending');
        await events.stop();
        assert.deepEqual(events.pruned, [6, 3], 'one jobs.pruned event per prune that deleted something');
      } finally {
        await s.cleanup();
      }
    });

    it('retention: false keeps every finished job: prune() and workers delete nothing, olderThan still does', async () => {
      const s = await shifted(dialect, 'retention-off');
      try {
        const queue = new Queue(s.storage, { retention: false });
        handlers(queue);
        const ids = [...(await many(queue, 'ok', 3)), ...(await many(queue, 'bad', 1))];
        await runAll(queue, ids);
        const lease = await expiringRun(queue, s);
        s.shift(400 * DAY);
        assert.equal(await queue.prune(), 0);
        const reclaimed = new Promise<void>((resolve) => {
          const off = queue.events();
          void (async () => {
            for await (const e of off) if (e.type === 'job.reclaimed' && e.jobId === lease) break;
            resolve();
          })();
        });
        const worker = queue.newWorker({ ...fast, pruneInterval: 10, queues: { lease: { concurrency: 1 } } });
        void worker.start();
        await reclaimed; // the pass that reclaimed it also had its turn to prune
        await queue.waitForJob(lease, { timeout: 30_000 });
        await worker.stop();
        await expectPresent(queue, ids, true, 'retention off, 400 days later');
        s.shift(1); // a job is due once strictly older than the age: the last one may have finished this very millisecond
        assert.equal(await queue.prune({ olderThan: 0 }), ids.length + 1, 'an explicit olderThan prunes anyway');
      } finally {
        await s.cleanup();
      }
    });

    it("workers' maintenance prunes batches of 100 roots with the queue's ages: back to back on a backlog, else once per interval", async () => {
      const s = await shifted(dialect, 'retention-worker');
      try {
        const sw = new StorageWatch(s.storage);
        const queue = new Queue(sw.storage);
        handlers(queue);
        const done = await many(queue, 'ok', 130);
        const bad = await many(queue, 'bad', 2);
        await runAll(queue, [...done, ...bad]);
        s.shift(8 * DAY);
        const lease = await expiringRun(queue, s);
        const events = watch(queue);
        const emptied = sw.next('jobPrune', 1, { when: (_p, r: JobPruneResult) => !r.busy && r.roots === 0 });
        const w1 = queue.newWorker({ ...fast, queues: { lease: { concurrency: 1 } } });
        void w1.start();
        await waitFor(() => events.pruned.reduce((a, b) => a + b, 0) === 130, { message: 'the completed jobs past 7 days are pruned' });
        assert.deepEqual(events.pruned, [100, 30], 'a full batch of 100 roots, then the rest at the next pass');
        await emptied; // a batch that deletes something is followed by one more, which finds nothing: the backlog is over
        s.shift(23 * DAY); // the failed jobs are now past 30 days, and the claimed job's lease has run out
        await waitFor(async () => (await queue.getJob(lease))?.status === 'completed', { message: 'a later pass reclaimed the lease' });
        await w1.stop();
        assert.deepEqual(events.pruned, [100, 30], 'after a batch that deleted nothing, nothing more within the interval');
        await expectPresent(queue, bad, true, 'due, but not within the interval');

        const w2 = queue.newWorker({ ...fast, pruneInterval: 10, queues: { lease: { concurrency: 1 } } });
        void w2.start();
        await waitFor(() => events.pruned.length === 3, { message: 'a worker with a short interval prunes the failed jobs' });
        await w2.stop();
        await events.stop();
        assert.deepEqual(events.pruned, [100, 30, 2], 'the two failed jobs (the reclaimed one completed just now)');
        await expectPresent(queue, bad, false, 'failed jobs past 30 days');
        s.shift(8 * DAY);
        assert.equal(await queue.prune(), 1, 'the reclaimed job, past 7 days');
      } finally {
        await s.cleanup();
      }
    });

    it('a failing prune is reported and the worker goes on running jobs', async () => {
      const s = await shifted(dialect, 'retention-fault');
      try {
        const faulty = new FaultyStorage(s.storage);
        faulty.fail({ method: 'jobPrune', times: Infinity });
        const logged: string[] = [];
        const logger = { debug: () => {}, info: () => {}, warn: () => {}, error: (m: string) => void logged.push(m) };
        const queue = new Queue(faulty.storage, { logger });
        handlers(queue);
        const events = watch(queue);
        const worker = queue.newWorker({ ...fast, pruneInterval: 10 });
        void worker.start();
        await waitFor(() => faulty.calls('jobPrune') >= 3, { message: 'the worker keeps trying to prune' });
        const id = await queue.enqueue('ok', {});
        assert.equal((await queue.waitForJob(id, { timeout: 30_000 })).status, 'completed', 'the worker still runs jobs');
        await worker.stop();
        await events.stop();
        assert.ok(logged.includes('pruning finished jobs failed'), `logged: ${logged.join(' | ')}`);
        assert.ok(events.errors.some((e) => e.startsWith('pruning finished jobs failed')), 'a worker.error event names it');
      } finally {
        await s.cleanup();
      }
    });

    it("a prune that takes long holds back neither the worker's timers nor its jobs; stop() waits for it", async () => {
      const s = await shifted(dialect, 'retention-slow');
      let release = (): void => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      try {
        let entered = 0;
        // The storage's own jobPrune, entered at once but answering only when the test says so.
        const slow = new Proxy(s.storage, {
          get: (target, prop) => {
            if (prop === 'jobPrune') {
              return async (p: Parameters<Storage['jobPrune']>[0]) => {
                entered++;
                await gate;
                return target.jobPrune(p);
              };
            }
            const value: unknown = Reflect.get(target, prop, target);
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        });
        const queue = new Queue(slow);
        queue.register('nap', async (_a, ctx) => {
          await ctx.sleep(100);
          return 'woke';
        });
        const worker = queue.newWorker({ ...fast, pruneInterval: 10 });
        void worker.start();
        await waitFor(() => entered === 1, { message: 'the first prune started' });
        const id = await queue.enqueue('nap', {});
        const done = await queue.waitForJob(id, { timeout: 30_000 });
        assert.equal(done.result, 'woke', 'the sleep was woken by maintenance passes while the prune hung');
        assert.equal(entered, 1, 'no second batch while one is running');
        let stopped = false;
        const stopping = worker.stop().then(() => void (stopped = true));
        await new Promise<void>((resolve) => setImmediate(resolve));
        assert.equal(stopped, false, 'stop() waits for the batch in flight');
        release();
        await stopping;
      } finally {
        release();
        await s.cleanup();
      }
    });

    it('bad retention, prune and pruneInterval options throw InvalidArgumentError and delete nothing', async () => {
      const s = await shifted(dialect, 'retention-options');
      try {
        const bad: unknown[] = [true, null, [], 7, { completed: -1 }, { failed: 1.5 }, { cancelled: '1d' }, { completed: true }, { kept: 1 }, { completed: 101 * 365 * DAY }];
        for (const retention of bad) {
          assert.throws(() => new Queue(s.storage, { retention } as unknown as QueueOptions), InvalidArgumentError, `retention ${JSON.stringify(retention)}`);
        }
        const queue = new Queue(s.storage, { retention: { completed: 0, failed: false } });
        handlers(queue);
        const [id] = await many(queue, 'ok', 1);
        await runAll(queue, [id!]);
        s.shift(1_000);
        for (const options of [{ olderThan: -1 }, { olderThan: 0.5 }, { olderThan: '0' }, { older: 0 }, 'all', null]) {
          await assert.rejects(() => queue.prune(options as never), InvalidArgumentError, `prune(${JSON.stringify(options)})`);
        }
        await expectPresent(queue, [id!], true, 'after rejected prunes');
        for (const pruneInterval of [0, 9, true, -5, Infinity]) {
          assert.throws(() => queue.newWorker({ pruneInterval } as unknown as WorkerOptions), InvalidArgumentError, `pruneInterval ${String(pruneInterval)}`);
        }
        assert.equal(await queue.prune(), 1);
      } finally {
        await s.cleanup();
      }
    });

    it('three processes pruning at once delete each finished job exactly once and no live job', async (t) => {
      const shared = await sharedStorage(dialect);
      const kids: { lines: string[]; send: () => void; exited: Promise<number | null>; kill: () => void }[] = [];
      try {
        const queue = new Queue(shared.storage);
        handlers(queue);
        const done = [...(await many(queue, 'ok', 2_400)), ...(await many(queue, 'bad', 60))];
        const wfs = await many(queue, 'wf', 30);
        const live = await Promise.all(Array.from({ length: 10 }, () => queue.enqueue('ok', {}, { delay: DAY })));
        // A workflow left waiting: one child finished, one on a queue no worker serves.
        queue.register('half', async (_a, ctx) => void (await ctx.fanOut([sub('ok', {}), sub('ok', {}, { queue: 'nobody' })], { strategy: 'collect-all' })));
        const half = await queue.enqueue('half', {});
        const worker = queue.newWorker({ ...fast, pruneInterval: false, queues: { default: { concurrency: 20 } } });
        void worker.start();
        try {
          for (const id of [...done, ...wfs]) await queue.waitForJob(id, { timeout: 120_000 });
          await waitFor(
            async () => {
              const rows = await shared.storage.jobList({ parentId: half, limit: 10 });
              return rows.length === 2 && rows.some((r) => r.queue === 'default' && r.status === 'completed');
            },
            { timeout: 30_000, message: 'the half-done workflow has one child finished' },
          );
        } finally {
          await worker.stop();
        }
        assert.equal((await queue.getJob(half))?.status, 'waiting');
        const halfKids = await kidsOf(shared.storage, half);
        const wfKids = (await Promise.all(wfs.map((w) => kidsOf(shared.storage, w)))).flat();
        const finished = [...done, ...wfs, ...wfKids];
        const before = await queue.stats();
        const liveBefore = await Promise.all([...live, half, ...halfKids].map((id) => queue.getJob(id)));
        const last = Math.max(...(await Promise.all(finished.map(async (id) => (await queue.getJob(id))!.completedAt!.getTime()))));
        await waitFor(async () => (await shared.storage.clockNow()) > last, { message: 'clock past the last completion' });

        for (let i = 0; i < 3; i++) {
          const proc = spawn(process.execPath, ['--import', 'tsx', PRUNER], { env: { ...process.env, ...shared.env }, stdio: ['pipe', 'pipe', 'inherit'] });
          const lines: string[] = [];
          createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
          kids.push({
            lines,
            send: () => void proc.stdin!.write('go\n'),
            exited: new Promise((resolve) => proc.on('exit', (code) => resolve(code))),
            kill: () => void proc.kill('SIGKILL'),
          });
        }
        await waitFor(() => kids.every((k) => k.lines.includes('ready')), { timeout: 60_000, message: 'pruners ready' });
        for (const k of kids) k.send();
        assert.deepEqual(await Promise.all(kids.map((k) => k.exited)), [0, 0, 0]);
        const counts = kids.map((k) => Number(/^deleted (\d+)$/.exec(k.lines.find((l) => l.startsWith('deleted ')) ?? '')?.[1] ?? NaN));
        t.diagnostic(`jobs deleted per process: ${counts.join(', ')} of ${finished.length}`);
        assert.equal(counts.reduce((a, b) => a + b, 0), finished.length, `each finished job deleted once (per process: ${counts.join(', ')})`);
        await expectPresent(queue, finished, false, 'after the pruners');
        const after = await queue.stats();
        const finishedBefore = (st: Record<JobStatus, number>): number => st.completed + st.failed + st.cancelled;
        assert.equal(finishedBefore(before) - finishedBefore(after), finished.length);
        assert.deepEqual(await Promise.all([...live, half, ...halfKids].map((id) => queue.getJob(id))), liveBefore, 'live workflow and jobs untouched');
      } finally {
        for (const k of kids) k.kill();
        await Promise.all(kids.map((k) => k.exited));
        await shared.cleanup();
      }
    });
  });
}
