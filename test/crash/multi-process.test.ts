/**
 * Three worker processes share one backlog: every job runs, and none runs twice
 * (no worker is killed here, so every owner stays alive).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { spawnFixture } from '../helpers/child.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURE = new URL('./fixtures/worker.ts', import.meta.url).pathname;
const JOBS = 3000;

for (const [dialect] of storageMatrix()) {
  describe(`three worker processes (${dialect})`, () => {
    it(`share ${JOBS} jobs with no job run twice`, async () => {
      const shared = await sharedStorage(dialect);
      const kids = ['W1', 'W2', 'W3'].map((n) => spawnFixture(FIXTURE, { ...shared.env, SDJ_WORKER_NAME: n, SDJ_CONCURRENCY: '8' }));
      try {
        await Promise.all(kids.map((k) => k.waitForLine(/^ready$/)));
        const queue = new Queue(shared.storage);
        for (let i = 0; i < JOBS; i += 500) {
          await queue.enqueueBatch(Array.from({ length: Math.min(500, JOBS - i) }, (_, j) => ({ type: 'record', args: i + j })));
        }
        await waitFor(async () => (await queue.stats()).completed === JOBS, { timeout: 120_000, message: 'all jobs completed' });
        const runs = kids.flatMap((k) => k.lines.filter((l) => l.startsWith('ran ')));
        const ids = runs.map((l) => l.split(' ')[1]);
        assert.equal(ids.length, JOBS, 'each job ran exactly once');
        assert.equal(new Set(ids).size, JOBS);
        const perWorker = kids.map((k) => k.lines.filter((l) => l.startsWith('ran ')).length);
        assert.ok(perWorker.every((n) => n > 0), `every process took work: ${perWorker.join(', ')}`);
        const stats = await queue.stats();
        assert.equal(stats.failed + stats.pending + stats.running, 0);
      } finally {
        for (const k of kids) k.proc.kill('SIGTERM');
        await Promise.all(kids.map((k) => k.exited));
        await shared.cleanup();
      }
    });
  });
}
