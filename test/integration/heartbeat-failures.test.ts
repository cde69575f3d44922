/**
 * A live worker whose heartbeats fail briefly keeps its jobs, on every driver, at every
 * accepted timing: one failed heartbeat at the slowest heartbeat allowed (half the lease), two
 * in a row at the default timing. The job is on its last attempt, so a lost lease would show
 * as a second run, an aborted handler and a job ended `failed` ("lease expired") although its
 * handler succeeded.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';

const LEASE_MS = 1000;

for (const [name, make] of storageMatrix()) {
  describe(`heartbeat failures (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`heartbeat-failures-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    const cases = [
      { label: 'one failed heartbeat at the slowest heartbeat allowed (half the lease)', heartbeatInterval: LEASE_MS / 2, failures: 1 },
      { label: 'two failed heartbeats in a row at the default heartbeat (a third of the lease, for leases up to 6 s)', heartbeatInterval: Math.floor(LEASE_MS / 3), failures: 2 },
    ];
    for (const c of cases) {
      it(`${c.label}: the job keeps its lease, runs once and completes`, async () => {
        const faulty = new FaultyStorage(ts.storage);
        const queue = new Queue(faulty.storage);
        const q = `hb-fail-${c.failures}`;
        let runs = 0;
        let aborts = 0;
        queue.register('steady', async (_args: unknown, ctx) => {
          runs++;
          ctx.abortSignal.addEventListener('abort', () => aborts++);
          // The faults start now; the handler outlives two more leases of good heartbeats.
          const from = faulty.calls('jobHeartbeat');
          faulty.fail({ method: 'jobHeartbeat', times: c.failures, error: 'connection-reset' });
          await waitFor(() => faulty.calls('jobHeartbeat') >= from + c.failures + 2 * Math.ceil(LEASE_MS / c.heartbeatInterval), {
            timeout: 20_000,
            message: 'heartbeats went on',
          });
          return 'done';
        });
        const id = await queue.enqueue('steady', {}, { queue: q, retries: 0 });
        const w = startWorker(queue, { leaseTimeout: LEASE_MS, heartbeatInterval: c.heartbeatInterval, queues: { [q]: { concurrency: 1 } } });
        const job = await queue.waitForJob(id, { timeout: 30_000 });
        await w.stop();
        assert.equal(aborts, 0, 'the handler was not aborted');
        assert.equal(runs, 1, 'the handler ran once');
        assert.equal(job.status, 'completed', `the job completed (last error: ${job.lastError ?? 'none'})`);
      });
    }
  });
}
