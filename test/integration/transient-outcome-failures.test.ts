/**
 * Transient write failures are not the outcome's fault, on every driver. An outcome whose write
 * fails a few times in a row with a connection error (a stale pooled connection after a
 * failover, a flaky proxy) while its neighbours' writes succeed must still be written once the
 * database takes it: a handler that succeeded on its job's last attempt ends `completed` with
 * its result, not `failed` with "the outcome could not be stored". Only an outcome the database
 * refuses for what it is (an oversize packet) is replaced by a failure.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import type { JobFinishItem } from '../../src/storage/storage.js';
import { FaultyStorage, type FaultKind } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

const quick = { pollInterval: 20, maintenanceInterval: 50, heartbeatInterval: 100, leaseTimeout: 3000, drainTimeout: 2000 } as const;

for (const [name, make] of storageMatrix()) {
  describe(`transient outcome write failures (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`transient-outcome-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    const cases: { kind: FaultKind; times: number }[] = [
      { kind: 'connection-reset', times: 2 },
      { kind: 'connection-reset', times: 4 },
      { kind: 'deadlock', times: 3 },
    ];
    for (const { kind, times } of cases) {
      it(`an outcome write failing ${times} times in a row (${kind}) while neighbours complete is written: completed, ran once`, async () => {
        const faulty = new FaultyStorage(ts.storage);
        const queue = new Queue(faulty.storage);
        const runs = new Map<string, number>();
        const type = `transient-${kind}-${times}`;
        queue.register(type, async (n: number, ctx) => {
          runs.set(ctx.job.id, (runs.get(ctx.job.id) ?? 0) + 1);
          return `sent ${n}`;
        });
        const q = `transient-q-${kind}-${times}`;
        const ids = await queue.enqueueBatch(Array.from({ length: 6 }, (_, n) => ({ type, args: n, options: { queue: q, retries: 0 } })));
        const target = ids[2]!;
        const fault = faulty.fail({ method: 'jobFinishMany', times, error: kind, when: (p) => p.items.some((i: JobFinishItem) => i.jobId === target) });
        const w = startWorker(queue, { ...quick, queues: { [q]: { concurrency: 6 } } });
        const jobs = await Promise.all(ids.map((id) => queue.waitForJob(id, { timeout: 20_000 })));
        await w.stop();
        assert.equal(fault.fired, times, 'every injected failure hit the target');
        for (const j of jobs) {
          assert.equal(j.status, 'completed', `job ${j.id}${j.id === target ? ' (the target)' : ''} completed (last error: ${j.lastError ?? 'none'})`);
          assert.equal(j.result, `sent ${j.args as number}`);
          assert.equal(runs.get(j.id), 1, 'its handler ran once');
        }
      });
    }
  });
}
