/**
 * Options at their limits behave as documented, on every driver: a custom backoff that gives
 * no usable delay (undefined, NaN, Infinity, negative, a string, a throw — or a hand-built
 * `RetryAfterError` with NaN) retries with the default backoff and the job completes, the
 * neighbours in its outcome flush too; a delay beyond 100 years is capped, not overflowed;
 * a drain timeout at the timer limit is honoured (running jobs are not released after 1 ms);
 * a heartbeat of half the lease keeps a long job; a 200-character worker name (multi-byte
 * characters included) works as the lease owner on every driver.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { RetryAfterError } from '../../src/errors.js';
import type { Job, JobEvent, Logger } from '../../src/types.js';
import { mustGet } from '../helpers/factories.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { Gate, holdsUntil, startWorker, StorageWatch, stopAllWorkers } from '../helpers/workflow-harness.js';

const TIMER_MAX = 2 ** 31 - 1;
const YEAR = 365 * 24 * 3600 * 1000;

/** A logger that keeps what it is told. */
function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => void lines.push({ level, message });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** What the custom backoff of the test returns, by the failing job's error message. */
const BAD_BACKOFF: Record<string, () => unknown> = {
  undefined: () => undefined,
  nan: () => NaN,
  infinity: () => Infinity,
  negative: () => -1,
  string: () => '250',
  throws: () => {
    throw new Error('lookup table ran out');
  },
};

for (const [name, make] of storageMatrix()) {
  describe(`options at their limits (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`option-limits-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('a custom backoff without a usable delay retries with the default backoff; the jobs and their neighbours complete', async () => {
      const logger = recordingLogger();
      const queue = new Queue(ts.storage, { logger });
      const starts = new Map<string, number[]>();
      queue.register('bo', async (kind: string, ctx) => {
        starts.set(kind, [...(starts.get(kind) ?? []), Date.now()]);
        if (ctx.job.attempt > 1 || kind === 'fine') return `ok ${kind}`;
        if (kind === 'retry-after-nan') throw new RetryAfterError(NaN, new Error(kind));
        throw new Error(kind);
      });
      const kinds = [...Object.keys(BAD_BACKOFF), 'retry-after-nan', 'fine'];
      const ids = await queue.enqueueBatch(kinds.map((kind) => ({ type: 'bo', args: kind, options: { queue: 'boq', retries: 2 } })));
      const w = startWorker(queue, {
        queues: { boq: { concurrency: kinds.length } },
        backoff: (_attempt, err) => (BAD_BACKOFF[(err as Error).message] ?? (() => 0))() as number,
        logger,
      });
      const jobs: Job[] = [];
      for (const id of ids) jobs.push(await queue.waitForJob(id, { timeout: 20_000 }));
      await w.stop();
      for (const [i, job] of jobs.entries()) {
        const kind = kinds[i]!;
        assert.equal(job.status, 'completed', `${kind}: completed`);
        assert.equal(job.result, `ok ${kind}`);
        if (kind === 'fine') continue;
        assert.equal(job.attempt, 2, `${kind}: retried once`);
        const [first, second] = starts.get(kind)!;
        // The default backoff after attempt 1 is drawn from [500, 1000] ms.
        assert.ok(second! - first! >= 450, `${kind}: retried after the default backoff, not at once (${second! - first!} ms)`);
      }
      const warnings = logger.lines.filter((l) => l.level === 'warn' && /custom backoff/.test(l.message));
      assert.equal(warnings.length, 1, 'the bad backoff is reported once as a warning');
      assert.equal(logger.lines.filter((l) => /custom backoff/.test(l.message)).length, Object.keys(BAD_BACKOFF).length, 'each case is logged (later ones at debug level)');
    });

    it('a backoff beyond 100 years is capped, not overflowed; the neighbours in its flush complete', async () => {
      const queue = new Queue(ts.storage);
      queue.register('far', async (kind: string) => {
        if (kind === 'far') throw new Error('far');
        return 'near';
      });
      const [far, near] = await queue.enqueueBatch([
        { type: 'far', args: 'far', options: { queue: 'farq' } },
        { type: 'far', args: 'near', options: { queue: 'farq' } },
      ]);
      const events: JobEvent[] = [];
      const stream = queue.events();
      const watching = (async () => {
        for await (const e of stream) if (e.type === 'job.retrying') events.push(e);
      })();
      const w = startWorker(queue, { queues: { farq: { concurrency: 2 } }, backoff: () => 1e19 });
      assert.equal((await queue.waitForJob(near!, { timeout: 10_000 })).status, 'completed');
      await waitFor(() => events.length === 1, { message: 'the far job was scheduled for its retry' });
      await w.stop();
      await stream.return?.();
      await watching;
      const row = await mustGet(ts.storage, far!);
      assert.equal(row.status, 'pending');
      assert.ok(Number.isSafeInteger(row.runAt), `run_at is a whole number of ms (${row.runAt})`);
      const years = (row.runAt - Date.now()) / YEAR;
      assert.ok(years > 99 && years < 101, `the retry is 100 years away, not overflowed (${years.toFixed(2)} years)`);
    });

    it('a drain timeout at the timer limit is honoured: running jobs are not released at once', async () => {
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      const gate = new Gate();
      let started = false;
      let aborted = false;
      queue.register('long-drain', async (_: unknown, ctx) => {
        started = true;
        ctx.abortSignal.addEventListener('abort', () => (aborted = true));
        await gate.promise;
        return 'drained';
      });
      const id = await queue.enqueue('long-drain', {}, { queue: 'drainmaxq' });
      const w = startWorker(queue, { queues: { drainmaxq: { concurrency: 1 } }, drainTimeout: TIMER_MAX });
      await waitFor(() => started);
      const stopping = w.stop();
      // A drain timer that overflowed would fire after 1 ms, long before two heartbeats (50 ms
      // apart) of the stopping worker renew the job's lease.
      const renewedTwice = watch.next('jobHeartbeat', 2, { when: (_, held) => held.includes(id) });
      await holdsUntil(async () => !aborted && (await mustGet(ts.storage, id)).status === 'running', renewedTwice, 'the running job is neither aborted nor released');
      gate.open();
      await stopping;
      const job = await queue.getJob(id);
      assert.deepEqual([job?.status, job?.result, job?.attempt], ['completed', 'drained', 1]);
    });

    it('a heartbeat of half the lease keeps a job running for many leases', async () => {
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      const reclaimed: string[] = [];
      const stream = queue.events();
      const watching = (async () => {
        for await (const e of stream) if (e.type === 'job.reclaimed') reclaimed.push(e.jobId);
      })();
      let aborted = false;
      const id = await queue.enqueue('long-run', {}, { queue: 'hbq', retries: 0 });
      // Seven heartbeats (at least 450 ms apart) that each found the lease still held: more than
      // three leases of 1 s, while maintenance looked for expired leases every 50 ms.
      const renewed = watch.next('jobHeartbeat', 7, { when: (_, held) => held.includes(id), timeout: 20_000 });
      queue.register('long-run', async (_: unknown, ctx) => {
        ctx.abortSignal.addEventListener('abort', () => (aborted = true));
        await renewed;
        await watch.next('jobReclaimExpired');
        return 'done';
      });
      const w = startWorker(queue, { queues: { hbq: { concurrency: 1 } }, leaseTimeout: 1000, heartbeatInterval: 500, maintenanceInterval: 50 });
      const job = await queue.waitForJob(id, { timeout: 20_000 });
      await w.stop();
      await stream.return?.();
      await watching;
      assert.deepEqual([job.status, job.attempt, aborted], ['completed', 1, false]);
      assert.deepEqual(reclaimed, []);
    });

    it('a 200-character worker name (multi-byte characters included) is a working lease owner', async () => {
      const watch = new StorageWatch(ts.storage);
      const queue = new Queue(watch.storage);
      const workerName = 'n'.repeat(150) + 'ü'.repeat(25) + '🙂'.repeat(12) + 'x';
      assert.equal(workerName.length, 200);
      const owners: (string | null)[] = [];
      queue.register('named', async (_: unknown, ctx) => {
        owners.push((await mustGet(ts.storage, ctx.job.id)).lockedBy);
        // A few heartbeats as this owner that renewed this job.
        await watch.next('jobHeartbeat', 3, { when: (p, held) => held.includes(ctx.job.id) && p.workerId.startsWith(workerName) });
        return 'ok';
      });
      const ids = await queue.enqueueBatch([0, 1, 2].map(() => ({ type: 'named', options: { queue: 'nameq' } })));
      const w = startWorker(queue, { queues: { nameq: { concurrency: 3 } }, name: workerName, leaseTimeout: 5_000, heartbeatInterval: 50 });
      const jobs = await Promise.all(ids.map((id) => queue.waitForJob(id, { timeout: 20_000 })));
      await w.stop();
      assert.deepEqual(
        jobs.map((j) => [j.status, j.attempt]),
        [0, 1, 2].map(() => ['completed', 1]),
      );
      assert.deepEqual(owners, [0, 1, 2].map(() => w.worker.id), 'the stored owner is exactly the worker id');
      assert.ok(w.worker.id.startsWith(`${workerName}:`));
    });
  });
}
