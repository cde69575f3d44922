/**
 * Retention under attack, through the public API, on every selected driver: what operators and
 * users do around a prune (retry, cancel, signal, wait, enqueue with a reused unique key), ages
 * at their limits, several queues with different retention sharing one database, a per-status
 * `false` next to a workflow of mixed statuses, a skewed application clock, and a worker
 * finishing workflows while another instance prunes everything it can.
 *
 * Each case pins behaviour a change must keep; those whose comment names a former failure were
 * breaks found by review and fixed.
 *
 * Storages run on a clock the test shifts forward (time flows, plus an offset), as in
 * retention.test.ts, except the clock-skew test, which needs the database's own clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, InvalidStateError, JobNotFoundError, MAX_DELAY_MS, isDurableJobsError, noRetry } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import type { JobEvent } from '../../src/types.js';
import { sub } from '../../src/workflow/fan-out.js';
import { clockedDb } from '../helpers/schedule-helpers.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, StorageWatch } from '../helpers/workflow-harness.js';

const DAY = 24 * 3600_000;
const fast = { pollInterval: 20, maintenanceInterval: 20, heartbeatInterval: 50, drainTimeout: 2_000, handleSignals: false } as const;

/** Storages on one fresh database whose clocks run `offset` ms ahead of the host's. */
interface Shifted {
  storage: Storage;
  /** Another storage instance on the same database and clock (another process). */
  open(): Promise<Storage>;
  /** Moves the clock forward. */
  shift(ms: number): void;
  /** Stops the clock at `t` (ms since the epoch); `shift` moves it from there. */
  freeze(t: number): void;
  cleanup(): Promise<void>;
}

async function shifted(dialect: string, label: string): Promise<Shifted> {
  const db = await clockedDb(dialect, label);
  let offset = 0;
  let frozen: number | null = null;
  const clock = (): number => (frozen ?? Date.now()) + offset;
  const storage = await db.open(clock);
  return {
    storage,
    open: () => db.open(clock),
    shift: (ms) => void (offset += ms),
    freeze: (t) => {
      frozen = t;
      offset = 0;
    },
    cleanup: () => db.cleanup(),
  };
}

/** `ok` returns 1, `bad` fails at once; `wf` fans out to an `ok` and a `bad` child, catches the failure and completes. */
function handlers(queue: Queue): void {
  queue.register('ok', async () => 1);
  queue.register('bad', async () => {
    throw noRetry(new Error('no'));
  });
  queue.register('wf', async (_a, ctx) => {
    try {
      await ctx.fanOut([sub('ok', {}), sub('bad', {})], { strategy: 'collect-all' });
      return 'all fine';
    } catch {
      return 'handled a failed sub-job';
    }
  });
}

/** Runs jobs until each id is finished, on a worker that does not prune. */
async function runAll(queue: Queue, ids: string[], queues: Record<string, { concurrency: number }> = { default: { concurrency: 20 } }): Promise<void> {
  const worker = queue.newWorker({ ...fast, pruneInterval: false, queues });
  void worker.start();
  try {
    for (const id of ids) await queue.waitForJob(id, { timeout: 60_000 });
  } finally {
    await worker.stop();
  }
}

/** Ids of a job's children. */
async function kidsOf(storage: Storage, parentId: string): Promise<string[]> {
  return (await storage.jobList({ parentId, limit: 100 })).map((r) => r.id);
}

/** Collects `jobs.pruned` counts until `stop()`. */
function prunedEvents(queue: Queue): { counts: number[]; stop: () => Promise<void> } {
  const stream = queue.events({ bufferSize: Infinity });
  const counts: number[] = [];
  const done = (async () => {
    for await (const e of stream as AsyncIterable<JobEvent>) if (e.type === 'jobs.pruned') counts.push(e.deleted);
  })();
  return { counts, stop: async () => void (await stream.return?.(), await done) };
}

for (const [dialect, make] of storageMatrix()) {
  describe(`retention, adversarial (${dialect})`, () => {
    it('retention.failed = false keeps failed jobs forever, also a failed sub-job of a workflow that completed (and so its whole workflow)', async () => {
      // docs/retention.md, settings: "`retention.<status>: false` — keep jobs of that status forever".
      // A workflow that handles a failed sub-job completes; it may go only once every job in it
      // is past its own status's age, so a failed sub-job kept forever keeps its workflow.
      const s = await shifted(dialect, 'radv-failed-kept');
      try {
        const queue = new Queue(s.storage, { retention: { completed: DAY, failed: false } });
        handlers(queue);
        const wf = await queue.enqueue('wf', {});
        const plainFailure = await queue.enqueue('bad', {});
        await runAll(queue, [wf, plainFailure]);
        assert.equal((await queue.getJob(wf))?.status, 'completed');
        const kids = await Promise.all((await kidsOf(s.storage, wf)).map(async (id) => (await queue.getJob(id))!));
        const failedKid = kids.find((k) => k.status === 'failed');
        assert.ok(failedKid, `a failed sub-job: ${kids.map((k) => k.status).join(', ')}`);
        s.shift(2 * DAY);
        await queue.prune();
        assert.equal((await queue.getJob(plainFailure))?.status, 'failed', 'a failed root job is kept');
        assert.equal((await queue.getJob(failedKid.id))?.status, 'failed', 'the failed sub-job was deleted although failed jobs are kept forever');
        assert.equal((await queue.getJob(wf))?.status, 'completed', 'its workflow stays whole');
      } finally {
        await s.cleanup();
      }
    });

    it("retention belongs to the database: another Queue's worker prunes with its own ages the jobs a retention: false Queue enqueued, as documented", async () => {
      // Two applications (or two Queue objects of one) share a database; the audit one keeps
      // everything (`retention: false`), the other runs on the defaults on its own named queue.
      // Pruning is database-wide and uses the pruner's own ages (docs/retention.md, "Retention
      // belongs to the database"): this pins that documented behaviour.
      const s = await shifted(dialect, 'radv-two-queues');
      try {
        const audit = new Queue(s.storage, { retention: false });
        handlers(audit);
        const kept = await audit.enqueue('ok', {}, { queue: 'audit' });
        await runAll(audit, [kept], { audit: { concurrency: 1 } });
        const watch = new StorageWatch(await s.open());
        const other = new Queue(watch.storage);
        handlers(other);
        const events = prunedEvents(other);
        s.shift(8 * DAY);
        const worker = other.newWorker({ ...fast, pruneInterval: 10, queues: { emails: { concurrency: 1 } } });
        const twoPrunes = watch.next('jobPrune', 2, { timeout: 30_000 });
        void worker.start();
        await twoPrunes;
        await worker.stop();
        await events.stop();
        assert.equal(await audit.getJob(kept), undefined, `the pruner's ages apply database-wide (pruned events: ${events.counts.join(', ')})`);
        assert.deepEqual(events.counts, [1]);
      } finally {
        await s.cleanup();
      }
    });

    it('a pruned job: getJob undefined, waitForJob/retryJob/signal/cancelJob/pauseJob reject with JobNotFoundError; its unique key and a finished unpruned one are free', async () => {
      const s = await shifted(dialect, 'radv-operator');
      try {
        const queue = new Queue(s.storage, { retention: { completed: DAY, failed: DAY, cancelled: DAY } });
        handlers(queue);
        const failed = await queue.enqueue('bad', {}, { unique: 'k-pruned' });
        const wf = await queue.enqueue('wf', {});
        await runAll(queue, [failed, wf]);
        const kids = await kidsOf(s.storage, wf);
        assert.equal(kids.length, 2);
        await assert.rejects(queue.signal(failed, 'go'), InvalidStateError, 'a finished job refuses signals before it is pruned');
        s.shift(DAY + 1_000);
        const young = await queue.enqueue('ok', {}, { unique: 'k-finished' });
        await runAll(queue, [young]);
        assert.equal(await queue.prune(), 4, 'the failed job and the workflow of three; the young job stays');
        for (const id of [failed, wf, ...kids]) assert.equal(await queue.getJob(id), undefined, `getJob(${id})`);
        await assert.rejects(queue.waitForJob(failed, { timeout: 1_000 }), JobNotFoundError);
        await assert.rejects(queue.waitForJob(kids[0]!, { timeout: 1_000 }), JobNotFoundError, 'a fan-out child of a pruned workflow');
        await assert.rejects(queue.retryJob(failed), JobNotFoundError);
        await assert.rejects(queue.signal(failed, 'go'), JobNotFoundError);
        await assert.rejects(queue.cancelJob(wf), JobNotFoundError);
        await assert.rejects(queue.pauseJob(kids[1]!), JobNotFoundError);
        assert.deepEqual(await s.storage.stepList({ jobId: wf }), [], 'no checkpoint of the pruned workflow is left');
        const again = await queue.enqueue('ok', {}, { unique: 'k-pruned' });
        const sameAsFinished = await queue.enqueue('ok', {}, { unique: 'k-finished' });
        assert.equal((await queue.getJob(young))?.status, 'completed', 'the finished job with that key is still there');
        await runAll(queue, [again, sameAsFinished]);
      } finally {
        await s.cleanup();
      }
    });

    it('a job finished and pruned while another process waits for it makes that wait reject with JobNotFoundError', async () => {
      const s = await shifted(dialect, 'radv-wait');
      try {
        const queue = new Queue(s.storage, { retention: { completed: 0 } });
        handlers(queue);
        const watch = new StorageWatch(await s.open());
        const waiter = new Queue(watch.storage);
        const id = await queue.enqueue('ok', {});
        const firstRead = watch.next('jobGet', 1);
        const waiting = waiter.waitForJob(id, { timeout: 30_000, pollInterval: 3_000 });
        await firstRead; // the waiter saw the job pending
        await runAll(queue, [id]);
        s.shift(1);
        assert.equal(await queue.prune(), 1);
        await assert.rejects(waiting, JobNotFoundError, 'the wait learns the job is gone, not that it completed');
      } finally {
        await s.cleanup();
      }
    });

    it('cancelling a workflow while its sub-jobs are still running, then pruning it at once: the sub-jobs that finish later write nothing back', async () => {
      const s = await shifted(dialect, 'radv-cancel-prune');
      try {
        const queue = new Queue(s.storage, { retention: { completed: 0, failed: 0, cancelled: 0 } });
        const gate = new Gate();
        const started: string[] = [];
        const after: string[] = [];
        queue.register('late', async () => 'written after the prune');
        queue.register('kid', async (_a, ctx) => {
          started.push(ctx.job.id);
          await gate.promise; // work that does not look at its abort signal
          try {
            await ctx.call('late');
            after.push('step written');
          } catch (e) {
            after.push(isDurableJobsError(e) ? e.code : String(e));
          }
          return 'late result';
        });
        queue.register('parent', async (_a, ctx) => {
          await ctx.fanOut([sub('kid', {}), sub('kid', {}), sub('kid', {})], { strategy: 'collect-all' });
          return 'resumed';
        });
        const parent = await queue.enqueue('parent', {});
        const worker = queue.newWorker({ ...fast, pruneInterval: false, queues: { default: { concurrency: 10 } } });
        void worker.start();
        try {
          await waitFor(() => started.length === 3, { message: 'three sub-jobs running' });
          const fanOutStep = (await s.storage.stepList({ jobId: parent })).find((x) => x.stepName === 'fan-out');
          const fanOutId = JSON.parse(fanOutStep!.outputJson!) as string;
          await queue.cancelJob(parent);
          s.shift(1);
          assert.equal(await queue.prune(), 4, 'the cancelled workflow, whole, while its sub-jobs still run');
          gate.open();
          await waitFor(() => after.length === 3, { message: 'the sub-jobs went on and returned' });
          await worker.stop();
          for (const id of [parent, ...started]) {
            assert.equal(await queue.getJob(id), undefined, `job ${id} came back`);
            assert.deepEqual(await s.storage.stepList({ jobId: id }), [], `checkpoints of ${id} written after the prune`);
          }
          assert.equal(await s.storage.fanOutGet({ id: fanOutId }), undefined, 'the fan-out came back');
          assert.ok(!after.includes('step written'), `a checkpoint was accepted for a pruned job: ${after.join(', ')}`);
          const st = await queue.stats();
          assert.deepEqual([st.pending, st.running, st.waiting, st.completed, st.failed, st.cancelled], [0, 0, 0, 0, 0, 0]);
        } finally {
          gate.open();
          await worker.stop();
        }
      } finally {
        await s.cleanup();
      }
    });

    it('cancel racing sub-jobs that finish, then a prune: each round leaves nothing behind (5 rounds)', async () => {
      const s = await shifted(dialect, 'radv-cancel-race');
      try {
        const queue = new Queue(s.storage, { retention: false });
        let gate = new Gate();
        let started = 0;
        queue.register('kid', async () => {
          started++;
          await gate.promise;
          return 1;
        });
        queue.register('parent', async (_a, ctx) => {
          await ctx.fanOut([sub('kid', {}), sub('kid', {}), sub('kid', {}), sub('kid', {})], { strategy: 'collect-all' });
          return 'resumed';
        });
        const worker = queue.newWorker({ ...fast, pruneInterval: false, queues: { default: { concurrency: 10 } } });
        void worker.start();
        try {
          for (let round = 0; round < 5; round++) {
            started = 0;
            gate = new Gate();
            const parent = await queue.enqueue('parent', {});
            await waitFor(() => started === 4, { message: `round ${round}: sub-jobs running` });
            const kids = await kidsOf(s.storage, parent);
            gate.open();
            await queue.cancelJob(parent);
            const done = ['completed', 'failed', 'cancelled'];
            await waitFor(async () => (await Promise.all([parent, ...kids].map((k) => queue.getJob(k)))).every((k) => k && done.includes(k.status)), {
              message: `round ${round}: the workflow settled`,
            });
            s.shift(1);
            // A cancelled sub-job's late outcome write may hold its row for a moment: the prune
            // then skips the workflow, whole, and a later prune takes it (docs/retention.md).
            let deleted = 0;
            await waitFor(async () => (deleted += await queue.prune({ olderThan: 0 })) >= 5, { message: `round ${round}: the workflow pruned` });
            assert.equal(deleted, 5, `round ${round}: the workflow, whole`);
            for (const id of [parent, ...kids]) assert.equal(await queue.getJob(id), undefined, `round ${round}: ${id}`);
          }
        } finally {
          gate.open();
          await worker.stop();
        }
      } finally {
        await s.cleanup();
      }
    });

    it('retryJob racing queue.prune() on a failed job: either the retry wins and the job is live, or the prune wins and the retry says not found (20 rounds)', async () => {
      const s = await shifted(dialect, 'radv-retry-race');
      try {
        const queue = new Queue(s.storage, { retention: false });
        handlers(queue);
        const pruner = new Queue(await s.open(), { retention: false });
        const outcomes = { retried: 0, pruned: 0 };
        for (let round = 0; round < 20; round++) {
          const id = await queue.enqueue('bad', {}, { queue: 'r' });
          await runAll(queue, [id], { r: { concurrency: 1 } });
          s.shift(1);
          const [p, r] = await Promise.allSettled(round % 2 ? [pruner.prune({ olderThan: 0 }), queue.retryJob(id)] : [Promise.resolve().then(() => pruner.prune({ olderThan: 0 })), queue.retryJob(id)]);
          assert.equal(p.status, 'fulfilled', `round ${round}: prune rejected: ${p.status === 'rejected' ? String(p.reason) : ''}`);
          const job = await queue.getJob(id);
          if (r.status === 'fulfilled') {
            outcomes.retried++;
            assert.equal(job?.status, 'pending', `round ${round}: a retried job was lost`);
            await queue.cancelJob(id); // out of the way of the next rounds
          } else {
            outcomes.pruned++;
            assert.ok(r.reason instanceof JobNotFoundError, `round ${round}: ${String(r.reason)}`);
            assert.equal(job, undefined, `round ${round}`);
          }
        }
        assert.equal(outcomes.retried + outcomes.pruned, 20);
      } finally {
        await s.cleanup();
      }
    });

    it('ages at their limits: 0 and 1 ms are strict, the largest age (100 years) is accepted and reached exactly', async () => {
      const s = await shifted(dialect, 'radv-limits');
      try {
        const queue = new Queue(s.storage, { retention: { completed: MAX_DELAY_MS, failed: 1, cancelled: 0 } });
        handlers(queue);
        const ok = await queue.enqueue('ok', {});
        const bad = await queue.enqueue('bad', {});
        await runAll(queue, [ok, bad]);
        const okAt = (await queue.getJob(ok))!.completedAt!.getTime();
        const badAt = (await queue.getJob(bad))!.completedAt!.getTime();
        s.freeze(badAt + 1);
        assert.equal(await queue.prune(), 0, 'a job exactly 1 ms old is not older than 1 ms');
        s.freeze(badAt + 2);
        assert.equal(await queue.prune(), 1, 'failed, older than 1 ms');
        assert.equal(await queue.getJob(bad), undefined);
        s.freeze(okAt + MAX_DELAY_MS);
        assert.equal(await queue.prune(), 0, 'exactly 100 years old');
        assert.ok(await queue.getJob(ok));
        assert.equal(await queue.prune({ olderThan: MAX_DELAY_MS }), 0, 'olderThan at its largest value, exactly reached');
        s.freeze(okAt + MAX_DELAY_MS + 1);
        assert.equal(await queue.prune(), 1, 'past 100 years');
      } finally {
        await s.cleanup();
      }
    });

    it('jobPrune refuses an age beyond Number.MAX_SAFE_INTEGER with InvalidArgumentError on every driver, and accepts the largest', async () => {
      // Before the bound, SQLite found nothing due while PostgreSQL (bigint cast, 22003) and
      // MySQL (BIGINT UNSIGNED overflow) rejected with a StorageError. The queue caps ages at
      // 100 years, so only direct `Storage` callers reach this.
      const s = await shifted(dialect, 'radv-huge-age');
      try {
        const queue = new Queue(s.storage);
        handlers(queue);
        const ok = await queue.enqueue('ok', {});
        await runAll(queue, [ok]);
        s.shift(1_000);
        for (const age of [2 ** 63, Number.MAX_VALUE]) {
          const r = await s.storage.jobPrune({ olderThanMs: { completed: age, failed: age, cancelled: age }, limit: 10 }).catch((e: unknown) => e);
          assert.ok(r instanceof InvalidArgumentError, `age ${age}: ${String(r)}`);
        }
        const max = Number.MAX_SAFE_INTEGER;
        assert.deepEqual(await s.storage.jobPrune({ olderThanMs: { completed: max, failed: max, cancelled: max }, limit: 10 }), { deleted: 0, roots: 0, busy: false });
        assert.ok(await queue.getJob(ok));
      } finally {
        await s.cleanup();
      }
    });

    it('an application clock 40 days ahead of the database prunes nothing early (PostgreSQL, MySQL); on SQLite the pruning process clock decides, as documented', async () => {
      if (dialect === 'sqlite') {
        // SQLite has no server clock: "now" is the clock of the process that writes. A process
        // whose clock runs 40 days ahead deletes a job finished a moment ago (docs/retention.md).
        const db = await clockedDb(dialect, 'radv-skew');
        try {
          const queue = new Queue(await db.open(Date.now));
          handlers(queue);
          const ok = await queue.enqueue('ok', {});
          await runAll(queue, [ok]);
          const ahead = new Queue(await db.open(() => Date.now() + 40 * DAY));
          assert.equal(await ahead.prune(), 1, 'the skewed process pruned a job finished a moment ago');
        } finally {
          await db.cleanup();
        }
        return;
      }
      const ts = await make(`radv-skew-${dialect}`);
      const realNow = Date.now;
      try {
        const queue = new Queue(ts.storage);
        handlers(queue);
        const ok = await queue.enqueue('ok', {});
        await runAll(queue, [ok]);
        const at = (await queue.getJob(ok))!.completedAt!.getTime();
        await waitFor(async () => (await ts.storage.clockNow()) > at, { message: 'clock past the completion' });
        Date.now = () => realNow() + 40 * DAY;
        let deleted: number;
        try {
          deleted = await queue.prune();
        } finally {
          Date.now = realNow;
        }
        assert.equal(deleted, 0, 'the database clock decides');
        assert.ok(await queue.getJob(ok));
      } finally {
        Date.now = realNow;
        await ts.cleanup();
      }
    });

    it('a worker finishing workflows (with a failing sub-job) while another instance prunes everything it can: no orphan, no leftover checkpoint', async (t) => {
      const s = await shifted(dialect, 'radv-stress');
      try {
        const ages = { completed: 0, failed: 0, cancelled: 0 };
        const queue = new Queue(s.storage, { retention: ages });
        const seen = new Set<string>();
        queue.register('work', async () => 1);
        queue.register('leaf', async (a: { fail: boolean }, ctx) => {
          seen.add(ctx.job.id);
          await ctx.call('work');
          if (a.fail) throw noRetry(new Error('leaf failed'));
          return 2;
        });
        queue.register('root', async (_a, ctx) => {
          seen.add(ctx.job.id);
          await ctx.call('work');
          try {
            await ctx.fanOut([sub('leaf', { fail: false }), sub('leaf', { fail: true }), sub('leaf', { fail: false })], { strategy: 'collect-all' });
          } catch {
            // the failed leaf is expected
          }
          return 'done';
        });
        const roots: string[] = [];
        for (let i = 0; i < 40; i++) roots.push(await queue.enqueue('root', {}));
        const pruner = new Queue(await s.open(), { retention: ages });
        let stop = false;
        let prunedByLoop = 0;
        const loop = (async () => {
          while (!stop) {
            prunedByLoop += await pruner.prune();
            await new Promise((resolve) => setTimeout(resolve, 2)); // pacing: the loop never spins without yielding
          }
        })();
        const worker = queue.newWorker({ ...fast, pruneInterval: 10, queues: { default: { concurrency: 16 } } });
        void worker.start();
        try {
          await waitFor(
            async () => {
              const st = await queue.stats();
              return seen.size === 160 && st.pending + st.running + st.waiting === 0;
            },
            { timeout: 120_000, message: 'every workflow finished' },
          );
        } finally {
          stop = true;
          await loop;
          await worker.stop();
        }
        s.shift(1);
        await queue.prune();
        const st = await queue.stats();
        assert.deepEqual([st.pending, st.running, st.waiting, st.completed, st.failed, st.cancelled], [0, 0, 0, 0, 0, 0], `jobs left: ${JSON.stringify(st)}`);
        for (const id of seen) {
          assert.equal(await queue.getJob(id), undefined, `job ${id} left`);
          assert.deepEqual(await s.storage.stepList({ jobId: id }), [], `checkpoints of ${id} left`);
        }
        t.diagnostic(`deleted by the other instance while the workflows ran: ${prunedByLoop}`);
      } finally {
        await s.cleanup();
      }
    });
  });
}
