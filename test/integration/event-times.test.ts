/**
 * Hooks and events report the times the storage stored, on the database clock where the driver
 * has one: `job.completedAt` of `onJobComplete` / `onJobFail` / `job.completed` equals the row's
 * `completed_at`, and `startedAt` equals its `started_at`, whatever the host clock says.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { noRetry } from '../../src/errors.js';
import type { Job, JobEvent } from '../../src/types.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;

for (const [name, make] of storageMatrix()) {
  describe(`event times (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`event-times-${name}`);
    });
    after(() => ts.cleanup());

    it('completion and failure hooks and events carry the stored startedAt and completedAt', async () => {
      const queue = new Queue(ts.storage);
      const q = 'event-times';
      queue.register('ok', async (n: number) => n + 1);
      queue.register('bad', async () => {
        throw noRetry(new Error('no'));
      });
      const hooked = new Map<string, Job>();
      queue.onJobComplete((job) => void hooked.set(job.id, job));
      queue.onJobFail((job) => void hooked.set(job.id, job));
      const events: JobEvent[] = [];
      const terminal = (e: JobEvent): boolean => e.type === 'job.completed' || e.type === 'job.failed';
      const stream = queue.events();
      const listening = (async () => {
        // Leaving the loop unsubscribes; it ends once all four jobs reported a terminal event.
        for await (const e of stream) {
          events.push(e);
          if (events.filter(terminal).length === 4) break;
        }
      })();
      const ids = [
        ...(await Promise.all([1, 2, 3].map((n) => queue.enqueue('ok', n, { queue: q })))),
        await queue.enqueue('bad', null, { queue: q, retries: 0 }),
      ];
      const worker = queue.newWorker({ ...fast, queues: { [q]: { concurrency: 4 } } });
      void worker.start();
      await waitFor(() => ids.every((id) => hooked.has(id)), { message: 'every job reported by its hook' });
      await worker.stop();
      await listening;
      for (const id of ids) {
        const stored = await queue.getJob(id);
        assert.ok(stored?.completedAt && stored.startedAt, `job ${id} is finished with its times`);
        const hook = hooked.get(id)!;
        assert.equal(hook.completedAt?.getTime(), stored.completedAt.getTime(), 'hook completedAt is the stored one');
        assert.equal(hook.startedAt?.getTime(), stored.startedAt.getTime(), 'hook startedAt is the stored one');
        const done = events.find((e): e is Extract<JobEvent, { type: 'job.completed' | 'job.failed' }> => terminal(e) && 'job' in e && e.job.id === id);
        assert.ok(done, `a terminal event for ${id}`);
        assert.equal(done.job.completedAt?.getTime(), stored.completedAt.getTime(), 'event completedAt is the stored one');
      }
    });
  });
}
