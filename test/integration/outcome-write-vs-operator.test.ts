/**
 * Operator actions while a run's outcome write is being retried, on every driver. A run whose
 * `retry` outcome could not be written loses its job to a cancel followed by `retryJob`: the job
 * is `pending` again with the run's own run count, and its kept `last_error` is the text of the
 * previous attempt — the same text, since a failing job usually fails the same way. The run's
 * outcome was never applied, so no `onRetry` hook may fire for it (guarantee 3: an owner that
 * lost its lease fires no hook).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import type { Logger } from '../../src/types.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** A logger that keeps its warnings. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const noop = (): void => {};
  return { warnings, debug: noop, info: noop, error: noop, warn: (m) => void warnings.push(m) };
}

for (const [name, make] of storageMatrix()) {
  describe(`outcome write retried while the operator acts (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`outcome-vs-operator-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('cancel + retryJob during a failing retry-outcome write with the same error text: no onRetry hook for the unwritten outcome', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const q = 'op-retry-same-text';
      queue.register('fails-the-same-way', () => {
        throw new Error('upstream said 503');
      });
      const id = await queue.enqueue('fails-the-same-way', null, { queue: q, retries: 5 });
      // The second run's outcome cannot be written until the test is over.
      const fault = faulty.fail({ method: 'jobFinishMany', times: Infinity, when: (p) => p.items.some((i) => i.jobId === id && i.runCount === 2) });
      const retried: number[] = [];
      queue.onRetry((job) => void retried.push(job.attempt));
      const logger = recordingLogger();
      const w = startWorker(queue, { pollInterval: 20, maintenanceInterval: 50, heartbeatInterval: 50, leaseTimeout: 30_000, backoff: () => 0, logger, queues: { [q]: { concurrency: 1 } } });
      await waitFor(() => fault.fired >= 2, { message: "the second run's outcome write failed and is being retried" });
      assert.deepEqual(retried, [1], 'the first attempt was reported retrying');
      // The operator stops the queue, cancels the job and retries it.
      await queue.pauseQueue(q);
      await queue.cancelJob(id);
      await queue.retryJob(id);
      const row = await ts.storage.jobGet({ id });
      assert.equal(row?.status, 'pending');
      assert.equal(row?.runCount, 2, 'the job has the run count of the run whose outcome is being retried');
      assert.equal(row?.lastError, 'upstream said 503', 'the kept last error equals the unwritten outcome');
      // The run learns it lost the job (its heartbeat) and gives its outcome up.
      await waitFor(() => logger.warnings.some((m) => m.startsWith('job outcome not written')) || retried.length > 1, { message: 'the run gave its outcome up' });
      await w.stop();
      assert.deepEqual(retried, [1], 'no onRetry hook for the outcome that was never applied');
      const end = await ts.storage.jobGet({ id });
      assert.equal(end?.status, 'pending');
      assert.equal(end?.attempt, 0, 'the job waits for its operator-made retry');
    });
  });
}
