/**
 * A closed storage, on every driver: every public `Queue` method that reaches the database
 * rejects with `StorageClosedError` (a typed error, not a driver error, and not a hang) — also
 * the calls that have nothing to write — and a worker started on a closed storage stops with
 * that error instead of polling forever.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import { StorageClosedError } from '../../src/errors.js';
import { every } from '../../src/scheduler/schedules.js';
import type { Storage } from '../../src/storage/storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';

/** Settles `p` within `ms` or fails the test (a hang is a failure, not a timeout of the runner). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    const [r] = await Promise.race([Promise.allSettled([p]), hang]);
    return r;
  } finally {
    clearTimeout(timer);
  }
}

async function assertClosedError(p: Promise<unknown>, what: string): Promise<void> {
  const r = await within(p, 5000, what);
  assert.equal(r.status, 'rejected', `${what} rejects`);
  const reason = (r as PromiseRejectedResult).reason as unknown;
  assert.ok(reason instanceof StorageClosedError, `${what} rejects with StorageClosedError, got ${String(reason)}`);
}

for (const [name, make] of storageMatrix()) {
  describe(`closed storage (${name})`, () => {
    const made: TestStorage[] = [];
    after(async () => {
      for (const ts of made) await ts.cleanup();
    });

    /** A queue on a second storage instance, with one stored job, then that instance closed. */
    async function closedQueue(): Promise<{ queue: Queue; id: string; storage: Storage }> {
      const ts = await make(`closed-${name}-${made.length}`);
      made.push(ts);
      const storage = await ts.another();
      const queue = new Queue(storage);
      queue.register('noop', async () => 1);
      const id = await queue.enqueue('noop', null);
      await storage.close();
      return { queue, id, storage };
    }

    it('every Queue method that reaches the database rejects with StorageClosedError', async () => {
      const { queue, id } = await closedQueue();
      const calls: [string, () => Promise<unknown>][] = [
        ['enqueue', () => queue.enqueue('noop', null)],
        ['enqueueBatch', () => queue.enqueueBatch([{ type: 'noop', args: null }])],
        ['enqueueBatch([])', () => queue.enqueueBatch([])],
        ['getJob', () => queue.getJob(id)],
        ['waitForJob', () => queue.waitForJob(id, { timeout: 2000 })],
        ['stats', () => queue.stats()],
        ['cancelJob', () => queue.cancelJob(id)],
        ['pauseJob', () => queue.pauseJob(id)],
        ['resumeJob', () => queue.resumeJob(id)],
        ['pauseQueue', () => queue.pauseQueue('default')],
        ['resumeQueue', () => queue.resumeQueue('default')],
        ['retryJob', () => queue.retryJob(id)],
        ['signal', () => queue.signal(id, 'go', 1)],
        ['schedule', () => queue.schedule('nightly', every(60_000), { type: 'noop' })],
        ['unschedule', () => queue.unschedule('nightly')],
        ['schedules', () => queue.schedules()],
        ['storage.migrate', () => queue.storage.migrate()],
      ];
      for (const [what, call] of calls) await assertClosedError(call(), what);
    });

    it('a worker started on a closed storage stops with StorageClosedError instead of polling forever', async () => {
      const { queue } = await closedQueue();
      const worker = queue.newWorker({ pollInterval: 20, maintenanceInterval: 50, handleSignals: false });
      const r = await within(worker.start(), 5000, 'worker.start()');
      if (r.status === 'fulfilled') await worker.stop();
      assert.equal(r.status, 'rejected', 'start() rejects');
      assert.ok((r as PromiseRejectedResult).reason instanceof StorageClosedError, `with StorageClosedError, got ${String((r as PromiseRejectedResult).reason)}`);
    });

    it('a storage closed under a running worker (a job in its handler) stops the worker; start() rejects with StorageClosedError', async () => {
      const ts = await make(`closed-${name}-running`);
      made.push(ts);
      const storage = await ts.another();
      const queue = new Queue(storage);
      let entered!: () => void;
      const inHandler = new Promise<void>((resolve) => (entered = resolve));
      queue.register('holds', async (_: unknown, ctx) => {
        entered();
        await new Promise<void>((resolve) => ctx.abortSignal.addEventListener('abort', () => resolve(), { once: true }));
        return 'aborted';
      });
      const id = await queue.enqueue('holds', null);
      const worker = queue.newWorker({ pollInterval: 20, maintenanceInterval: 50, heartbeatInterval: 50, drainTimeout: 300, handleSignals: false });
      const started = worker.start();
      await inHandler;
      await storage.close();
      const r = await within(started, 10_000, 'worker.start()');
      assert.equal(r.status, 'rejected', 'start() rejects once the worker stopped by itself');
      assert.ok((r as PromiseRejectedResult).reason instanceof StorageClosedError);
      const row = await ts.storage.jobGet({ id });
      assert.equal(row?.status, 'running', 'the job is left to its lease (nothing could be written)');
    });
  });
}
