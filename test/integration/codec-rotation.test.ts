/**
 * Key rotation as a rolling deploy, on every driver: workers and producers of two
 * configurations run side by side on one queue. Following docs/encryption.md ("Rotating keys")
 * — first `{ key: A, previousKeys: [B] }` next to `{ key: A }`, then `{ key: B, previousKeys:
 * [A] }` next to `{ key: A, previousKeys: [B] }` — no job fails. Skipping the first step
 * (an A-only worker next to B writers) fails the B-written jobs the A-only worker claims, at
 * once and typed; none runs with wrong args; they complete once retried on a worker with B.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { encryptedCodec } from '../../src/core/encrypted-codec.js';
import { CodecError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { uniqueName } from '../helpers/factories.js';
import { openRawDatabase, type RawDatabase } from '../helpers/raw-database.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

for (const [driver] of storageMatrix()) {
  describe(`payload codec: key rotation as a rolling deploy (${driver})`, () => {
    let db: RawDatabase;
    before(async () => {
      db = await openRawDatabase(driver, `codec-rot-${driver}`);
    });
    afterEach(stopAllWorkers);
    after(async () => {
      await db.cleanup();
    });

    it('the documented order never fails a job; skipping its first step fails B-written jobs on A-only workers, typed, until retried', async () => {
      const aKey = randomBytes(32);
      const bKey = randomBytes(32);
      const q = uniqueName('rolling');
      const seen: { worker: string; args: unknown }[] = [];
      const errors: Error[] = [];
      const make = (name: string, key: Buffer, previousKeys: Buffer[] = []): Queue => {
        const queue = new Queue(db.storage, { codec: encryptedCodec({ key, previousKeys }) });
        queue.register('work', async (args: { n: number; by: string }) => {
          seen.push({ worker: name, args });
          return { doubled: args.n * 2, by: args.by };
        });
        queue.onJobFail((_j, e) => void errors.push(e));
        return queue;
      };
      const a = make('A', aKey);
      const aWithB = make('A+[B]', aKey, [bKey]);
      const bWithA = make('B+[A]', bKey, [aKey]);

      /** Enqueues `n` jobs alternately from the producers; all must complete with their own args. */
      const roundTrip = async (producers: Queue[], n: number, reader: Queue): Promise<void> => {
        const ids: { id: string; n: number; by: string }[] = [];
        for (let i = 0; i < n; i++) {
          const p = producers[i % producers.length]!;
          const by = p === a ? 'A' : p === aWithB ? 'A+[B]' : 'B+[A]';
          ids.push({ id: await p.enqueue('work', { n: i, by }, { queue: q, retries: 0 }), n: i, by });
        }
        for (const { id, n: i, by } of ids) {
          const job = await reader.waitForJob(id, { timeout: 15_000 });
          assert.equal(job.status, 'completed', `${by} job ${i}: ${job.lastError}`);
          assert.deepEqual(job.result, { doubled: i * 2, by });
        }
      };

      // Step 1: A+[B] deployed next to A-only processes.
      let w1 = startWorker(a, { queues: { [q]: { concurrency: 2 } } });
      let w2 = startWorker(aWithB, { queues: { [q]: { concurrency: 2 } } });
      await roundTrip([a, aWithB], 12, aWithB);
      await w1.stop();
      // Step 2: B+[A] deployed next to A+[B] processes.
      w1 = startWorker(bWithA, { queues: { [q]: { concurrency: 2 } } });
      await roundTrip([aWithB, bWithA], 12, bWithA);
      await w1.stop();
      await w2.stop();
      assert.equal(errors.length, 0, `the documented order fails nothing: ${errors.map(String).join('; ')}`);
      assert.ok(new Set(seen.map((s) => s.worker)).size === 3, 'every configuration ran jobs');

      // Step 1 skipped: an A-only worker meets jobs B wrote.
      const ranBefore = seen.length;
      w2 = startWorker(a, { queues: { [q]: {} } });
      const bJobs: string[] = [];
      for (let i = 0; i < 3; i++) bJobs.push(await bWithA.enqueue('work', { n: 100 + i, by: 'B+[A]' }, { queue: q, retries: 4 }));
      await waitFor(async () => (await Promise.all(bJobs.map((id) => a.getJob(id)))).every((j) => j?.status === 'failed'), { timeout: 15_000, message: 'the A-only worker fails the B jobs' });
      await w2.stop();
      assert.equal(seen.length, ranBefore, 'no handler ran with args it could not read');
      for (const id of bJobs) {
        const job = await bWithA.getJob(id);
        assert.equal(job?.attempt, 1, 'failed at once, retries unused');
        assert.deepEqual(job?.args, { n: 100 + bJobs.indexOf(id), by: 'B+[A]' }, 'the args are intact');
        assert.match(job?.lastError ?? '', new RegExp(`key id ${encryptedCodec({ key: bKey }).keyId}, which is not one of this codec's keys`));
      }
      assert.equal(errors.filter((e) => e instanceof CodecError && e.code === 'PAYLOAD_DECODE_FAILED').length, 3);
      // Rolled forward: retried, they complete.
      assert.equal((await bWithA.retryJobs({ status: 'failed', queue: q })).count, 3);
      w1 = startWorker(bWithA, { queues: { [q]: {} } });
      for (const [i, id] of bJobs.entries()) assert.deepEqual((await bWithA.waitForJob(id, { timeout: 15_000 })).result, { doubled: (100 + i) * 2, by: 'B+[A]' });
      await w1.stop();
    });
  });
}
