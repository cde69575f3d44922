/**
 * Conformance: schema migration (idempotent, concurrent) and closing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StorageClosedError } from '../../src/errors.js';
import type { StorageMaker } from '../helpers/storages.js';
import { claim, insertJob, instances, mustGet, uniqueName } from '../helpers/factories.js';
import { useStorage } from './context.js';

/** Registers the migration and lifecycle tests. */
export function describeMigrate(make: StorageMaker): void {
  describe('migrate and close', () => {
    const ctx = useStorage(make, 'conformance-migrate');

    it('migrating again is a no-op that keeps the data', async () => {
      const s = ctx.s;
      const id = await insertJob(s, { queue: uniqueName('q'), argsJson: '{"keep":true}' });
      const paused = uniqueName('kept-paused');
      await s.queueSetPaused({ queue: paused, paused: true });
      await s.migrate();
      await s.migrate();
      assert.equal((await mustGet(s, id)).argsJson, '{"keep":true}');
      await insertJob(s, { queue: paused });
      assert.deepEqual(await claim(s, paused, 5), [], 'the queue is still paused after migrating again');
    });

    it('several instances migrating at once all succeed and can work right after', async () => {
      const all = await instances(ctx.ts, 6);
      await Promise.all(all.map((inst) => inst.migrate()));
      await Promise.all([...all, ctx.s].map((inst) => inst.migrate()));
      const ids = await Promise.all(all.map((inst) => insertJob(inst, { queue: uniqueName('q') })));
      for (const id of ids) assert.equal((await mustGet(ctx.s, id)).status, 'pending');
    });

    it('a closed instance rejects calls with StorageClosedError; closing twice is harmless', async () => {
      const inst = await ctx.ts.another();
      await inst.migrate();
      await inst.close();
      await assert.rejects(() => inst.jobGet({ id: 'x' }), StorageClosedError);
      await assert.rejects(() => inst.jobClaim({ workerId: 'w', queues: [{ name: 'q', limit: 1 }], leaseMs: 1_000 }), StorageClosedError);
      await inst.close();
      // Other instances on the same database are unaffected.
      assert.equal(typeof (await ctx.s.clockNow()), 'number');
    });
  });
}
