/**
 * Flow-control keys of sub-jobs, on every driver: `sub(type, args, { concurrencyKey,
 * rateLimitKey })` stores the keys it names instead of what the type's registered key functions
 * compute, a sub-job without them takes the computed keys, and an invalid key refuses the
 * fan-out with a typed error before any child is written.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { sub } from '../../src/workflow/fan-out.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { uniqueName } from '../helpers/factories.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

for (const [name, make] of storageMatrix()) {
  describe(`flow control keys of sub-jobs (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`flow-sub-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('a sub-job takes the keys sub() names, others the keys the key functions compute', async () => {
      const queue = new Queue(ts.storage);
      const child = uniqueName('child');
      const parent = uniqueName('parent');
      const q = uniqueName('q');
      queue.register(child, async (a: { acct: string }) => a.acct, {
        concurrency: { limit: 2, key: (a: { acct: string }) => `c-${a.acct}` },
        rateLimit: { limit: 1000, period: 1000, key: (a: { acct: string }) => `r-${a.acct}` },
      });
      queue.register(parent, async (_: null, ctx) => {
        const rs = await ctx.fanOut<string>([
          sub(child, { acct: 'a' }, { concurrencyKey: 'own-c', rateLimitKey: 'own-r' }),
          sub(child, { acct: 'b' }),
        ]);
        return rs.map((r) => r.value);
      });
      const id = await queue.enqueue(parent, null, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 4 } } });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, ['a', 'b']);
      const kids = (await ts.storage.jobList({ parentId: id, limit: 10, order: 'asc' })).sort((x, y) => (x.fanOutIndex ?? 0) - (y.fanOutIndex ?? 0));
      assert.deepEqual(kids.map((k) => [k.concurrencyKey, k.rateKey]), [['own-c', 'own-r'], ['c-b', 'r-b']]);
    });

    it('an invalid key refuses the fan-out with InvalidArgumentError and writes no child', async () => {
      const queue = new Queue(ts.storage);
      const child = uniqueName('child');
      const parent = uniqueName('parent');
      const q = uniqueName('q');
      queue.register(child, async () => null, { concurrency: { limit: 1 } });
      queue.register(parent, async (_: null, ctx) => {
        try {
          await ctx.fanOut([sub(child, {}, { concurrencyKey: '' })]);
          return 'accepted';
        } catch (e) {
          return e instanceof InvalidArgumentError ? `refused: ${e.message}` : `other: ${String(e)}`;
        }
      });
      assert.throws(() => sub(child, {}, { concurrencyKeys: 'x' } as never), InvalidArgumentError);
      const id = await queue.enqueue(parent, null, { queue: q, retries: 0 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 2 } } });
      const job = await queue.waitForJob(id, { timeout: 15_000 });
      await w.stop();
      assert.match(String(job.result), /^refused: .*concurrencyKey/);
      assert.deepEqual(await ts.storage.jobList({ parentId: id, limit: 10, order: 'asc' }), []);
    });
  });
}
