/**
 * The worker registry behind `queue.workers()` with real processes: a worker in a child
 * process is listed with its pid, host, queues and running count; killed with SIGKILL it
 * leaves the list within a few lease periods, while a live worker in the test process stays
 * listed the whole time (sampled); a worker that stops (in process, or a child on SIGTERM)
 * leaves the list at once.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from '../../src/queue/queue.js';
import type { WorkerInfo } from '../../src/queue/operator-types.js';
import type { Worker } from '../../src/worker/worker.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { spawnFixture, type Child } from '../helpers/child.js';
import { storageMatrix } from '../helpers/storages.js';
import { uniqueName } from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURE = new URL('./fixtures/worker.ts', import.meta.url).pathname;

/** Lease of every worker here (ms); the registry drops a worker unseen for 3 of them. */
const LEASE = 1_000;

/** A local worker; `problems` holds what it logged as warnings and errors (shown when a wait fails). */
interface LocalWorker {
  worker: Worker;
  problems: string[];
  stop: () => Promise<void>;
}

/** Starts a worker of `queue` in this process on its own queue; `stop()` waits until it has stopped. */
function localWorker(queue: Queue, name: string): LocalWorker {
  const problems: string[] = [];
  const record = (message: string, fields?: Record<string, unknown>): void => void problems.push(`${message} ${fields?.['error'] ?? JSON.stringify(fields ?? {})}`);
  const logger = { debug: () => {}, info: () => {}, warn: record, error: record };
  const worker = queue.newWorker({ name, logger, leaseTimeout: LEASE, queues: { [uniqueName('local')]: {} }, pollInterval: 50, maintenanceInterval: 100, handleSignals: false });
  const done = worker.start();
  return {
    worker,
    problems,
    stop: async () => {
      await worker.stop();
      await done;
    },
  };
}

async function find(queue: Queue, id: string): Promise<WorkerInfo | undefined> {
  return (await queue.workers()).find((w) => w.id === id);
}

/** Waits until a local worker is listed; a timeout names what the worker logged meanwhile. */
async function listed(queue: Queue, w: LocalWorker): Promise<WorkerInfo> {
  try {
    return await waitFor(() => find(queue, w.worker.id));
  } catch (e) {
    throw new Error(`worker ${w.worker.id} never listed; it logged: ${w.problems.join(' | ') || 'nothing'}`, { cause: e });
  }
}

for (const [dialect] of storageMatrix()) {
  describe(`worker registry across processes (${dialect})`, () => {
    const children: Child[] = [];
    after(() => {
      for (const c of children) c.proc.kill('SIGKILL');
    });

    it('a SIGKILLed worker leaves workers() within a few lease periods; a live worker stays listed all along', async (t) => {
      const shared = await sharedStorage(dialect);
      const queue = new Queue(shared.storage);
      const live = localWorker(queue, 'live-in-test');
      let sampling = true;
      const samples = { total: 0, missing: 0 };
      let sampler: Promise<void> | undefined;
      try {
        const liveRow = await listed(queue, live);
        assert.equal(liveRow.pid, process.pid);
        assert.equal(liveRow.name, 'live-in-test');
        const sampleStart = Date.now();
        sampler = (async () => {
          while (sampling) {
            const ws = await queue.workers();
            samples.total++;
            if (!ws.some((w) => w.id === live.worker.id)) samples.missing++;
            await delay(50);
          }
        })();

        const jobId = await queue.enqueue('hang', { n: 1 });
        const child = spawnFixture(FIXTURE, { ...shared.env, SDJ_WORKER_NAME: 'victim', SDJ_LEASE_MS: String(LEASE) });
        children.push(child);
        await child.waitForLine(new RegExp(`started ${jobId}`));
        const pid = child.proc.pid;
        const row = await waitFor(async () => (await queue.workers()).find((w) => w.pid === pid && w.running === 1), {
          message: 'the child worker is listed with its running job',
        });
        assert.equal(row.name, 'victim');
        assert.ok(row.id.startsWith('victim:'), row.id);
        assert.equal(row.host, hostname());
        assert.deepEqual(row.queues, ['default']);
        assert.ok(row.startedAt instanceof Date && row.lastSeenAt instanceof Date);
        assert.ok(row.startedAt.getTime() <= row.lastSeenAt.getTime());
        assert.ok(Math.abs(row.lastSeenAt.getTime() - Date.now()) < 5_000, 'lastSeenAt is recent');
        // It keeps beating: lastSeenAt moves while startedAt stays.
        const later = await waitFor(async () => {
          const r = await find(queue, row.id);
          return r && r.lastSeenAt.getTime() > row.lastSeenAt.getTime() ? r : undefined;
        });
        assert.equal(later.startedAt.getTime(), row.startedAt.getTime());

        child.proc.kill('SIGKILL');
        await child.exited;
        const killedAt = Date.now();
        await waitFor(async () => (await find(queue, row.id)) === undefined, { timeout: 8 * LEASE, message: 'the killed worker leaves the list' });
        const goneAfter = Date.now() - killedAt;
        assert.ok(goneAfter <= 4 * LEASE, `the killed worker left ${goneAfter} ms after the kill`);

        // Sample the live worker for longer than the registry's expiry before judging it.
        while (Date.now() - sampleStart < 3 * LEASE + 500) await delay(50);
        sampling = false;
        await sampler;
        t.diagnostic(`killed worker left the list ${goneAfter} ms after SIGKILL; live worker listed in ${samples.total - samples.missing}/${samples.total} samples`);
        assert.ok(samples.total >= 20, `${samples.total} samples`);
        assert.equal(samples.missing, 0, `the live worker was missing from ${samples.missing} of ${samples.total} samples`);
        assert.ok(await find(queue, live.worker.id));
      } finally {
        sampling = false;
        await sampler;
        await live.stop();
        await shared.cleanup();
      }
    });

    it('a worker that stops leaves workers() at once, in this process and in a child on SIGTERM', async () => {
      const shared = await sharedStorage(dialect);
      const queue = new Queue(shared.storage);
      try {
        const w = localWorker(queue, 'stopper');
        await listed(queue, w);
        await w.stop();
        assert.equal(await find(queue, w.worker.id), undefined, 'removed as soon as stop() resolves');

        const child = spawnFixture(FIXTURE, { ...shared.env, SDJ_WORKER_NAME: 'graceful', SDJ_LEASE_MS: String(LEASE) });
        children.push(child);
        await child.waitForLine(/ready/);
        const pid = child.proc.pid;
        const row = await waitFor(async () => (await queue.workers()).find((x) => x.pid === pid), { message: 'the child worker is listed' });
        assert.equal(row.name, 'graceful');
        assert.equal(row.running, 0);
        child.proc.kill('SIGTERM');
        assert.equal(await child.exited, 0, 'the child stopped gracefully');
        assert.equal(await find(queue, row.id), undefined, 'removed by the time the process exited');
      } finally {
        await shared.cleanup();
      }
    });
  });
}
