/**
 * A worker process killed with SIGKILL mid-job: another process reclaims the job after the
 * lease runs out and completes it. A job that kills its process every time ends `failed`.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { spawnFixture, type Child } from '../helpers/child.js';
import { storageMatrix } from '../helpers/storages.js';

const FIXTURE = new URL('./fixtures/worker.ts', import.meta.url).pathname;

for (const [dialect] of storageMatrix()) {
  describe(`SIGKILL recovery (${dialect})`, () => {
    const children: Child[] = [];
    after(() => {
      for (const c of children) c.proc.kill('SIGKILL');
    });

    it('reclaims and completes the job of a killed worker', async () => {
      const shared = await sharedStorage(dialect);
      try {
        const queue = new Queue(shared.storage);
        const id = await queue.enqueue('hang', { n: 1 });
        const a = spawnFixture(FIXTURE, { ...shared.env, SDJ_WORKER_NAME: 'A', SDJ_LEASE_MS: '1500' });
        children.push(a);
        await a.waitForLine(new RegExp(`started ${id}`));
        a.proc.kill('SIGKILL');
        await a.exited;
        assert.equal((await queue.getJob(id))?.status, 'running', 'still leased to the dead worker');
        // The job's handler now completes: swap the type so the second worker records it.
        queue.register('hang', async (args: { n: number }) => args.n + 41);
        const worker = queue.newWorker({ leaseTimeout: 1500, maintenanceInterval: 100, pollInterval: 50, handleSignals: false });
        void worker.start();
        const job = await queue.waitForJob(id, { timeout: 20_000 });
        await worker.stop();
        assert.equal(job.status, 'completed');
        assert.equal(job.result, 42);
        assert.equal(job.attempt, 2);
      } finally {
        await shared.cleanup();
      }
    });

    it('a job that kills its worker every time ends failed once its retries are spent', async () => {
      const shared = await sharedStorage(dialect);
      try {
        const queue = new Queue(shared.storage);
        const id = await queue.enqueue('crash-always', {}, { retries: 1 });
        for (let attempt = 1; attempt <= 2; attempt++) {
          const c = spawnFixture(FIXTURE, { ...shared.env, SDJ_WORKER_NAME: `P${attempt}`, SDJ_LEASE_MS: '800' });
          children.push(c);
          await c.waitForLine(new RegExp(`started ${id}`));
          await c.exited;
        }
        // No worker runs the type any more; maintenance alone must end the job.
        const worker = queue.newWorker({ leaseTimeout: 800, maintenanceInterval: 100, pollInterval: 50, handleSignals: false, queues: { other: {} } });
        const reclaims: string[] = [];
        queue.onJobFail(() => {
          reclaims.push('hook'); // a reclaim is not a handler failure: no hook
        });
        const events = queue.events();
        const watching = (async () => {
          for await (const e of events) if (e.type === 'job.reclaimed' && e.jobId === id) reclaims.push(e.status);
        })();
        void worker.start();
        const job = await queue.waitForJob(id, { timeout: 20_000 });
        await worker.stop();
        await events.return?.();
        await watching;
        assert.equal(job.status, 'failed');
        assert.equal(job.attempt, 2);
        // The reason says what happened: the lease expired (the process died) and no retries are left.
        assert.match(job.lastError ?? '', /lease expired/i);
        assert.match(job.lastError ?? '', /no retries/i);
        assert.deepEqual(reclaims, ['failed'], 'one reclaim, straight to failed');
        // Terminal: nothing claims or reclaims it again.
        assert.equal((await queue.getJob(id))?.status, 'failed');
      } finally {
        await shared.cleanup();
      }
    });
  });
}
