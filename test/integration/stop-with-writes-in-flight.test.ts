/**
 * `stop()` while outcome writes are being retried, on every driver: once `stop()` resolved the
 * worker has no run left and no storage call of it in flight or still to come — an outcome
 * retry that was in the middle of a slow failing call, or of its wait, ends before `stop()`
 * resolves (guarantee 14: stopped means stopped; a caller closes the storage right after).
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from '../../src/queue/queue.js';
import { FaultyStorage, faultError } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

/** How long each failing outcome write takes to fail (a database that times out). */
const SLOW_FAIL_MS = 250;

for (const [name, make] of storageMatrix()) {
  describe(`stop() with outcome writes in flight (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`stop-writes-in-flight-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    for (const stopAfterFailures of [1, 2, 3]) {
      it(`after ${stopAfterFailures} slow failed outcome write(s): no run and no storage call of the worker outlives stop()`, async () => {
        const faulty = new FaultyStorage(ts.storage);
        let inFlight = 0;
        faulty.fail({
          method: 'jobFinishMany',
          times: Infinity,
          respond: async () => {
            inFlight++;
            try {
              await delay(SLOW_FAIL_MS);
            } finally {
              inFlight--;
            }
            throw faultError('connection-reset');
          },
        });
        const queue = new Queue(faulty.storage);
        const type = `slow-fail-${stopAfterFailures}`;
        queue.register(type, async () => 'done');
        const q = `slow-fail-q-${stopAfterFailures}`;
        await queue.enqueue(type, null, { queue: q });
        const w = startWorker(queue, { pollInterval: 20, maintenanceInterval: 50, heartbeatInterval: 100, leaseTimeout: 30_000, drainTimeout: 100, queues: { [q]: { concurrency: 1 } } });
        // Stop while the next outcome write is in flight (it fails SLOW_FAIL_MS after it began).
        await waitFor(() => faulty.calls('jobFinishMany') > stopAfterFailures, { message: 'outcome writes were retried' });
        await w.stop();
        const inFlightAtStop = inFlight;
        const activeAtStop = w.worker.activeCount;
        const callsAtStop = totalCalls(faulty);
        // Absence cannot be awaited: watch a window longer than a slow call plus a retry wait.
        await delay(SLOW_FAIL_MS + 300);
        assert.equal(inFlightAtStop, 0, 'no outcome write of the worker was still in flight when stop() resolved');
        assert.equal(activeAtStop, 0, 'no run of the worker was left when stop() resolved');
        assert.equal(totalCalls(faulty), callsAtStop, 'no storage call was made after stop() resolved');
      });
    }
  });
}

function totalCalls(f: FaultyStorage): number {
  return (['jobFinishMany', 'jobHeartbeat', 'jobGetMany', 'jobGet', 'jobClaim', 'jobRelease', 'jobReclaimExpired', 'jobWakeDue', 'dataVersion', 'stepRecord'] as const).reduce((n, m) => n + f.calls(m), 0);
}
