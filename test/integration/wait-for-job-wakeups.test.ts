/**
 * `waitForJob` is woken by a local worker's outcome, on every driver, whatever its poll
 * interval: also when the outcome lands while it is reading the job (the read returns the
 * state from before), and when the outcome is one of a flush of hundreds (one burst of
 * events). A wake-up lost in either case left the waiter asleep for a whole poll interval —
 * up to about 24.8 days with the longest `pollInterval` — so here the poll interval is ten
 * minutes and the wait must end long before the timeout.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { Queue } from '../../src/queue/queue.js';
import type { Logger } from '../../src/types.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { fast, startWorker, stopAllWorkers, type Started } from '../helpers/workflow-harness.js';

/** Longer than any test here: a wait that depends on the poll never ends in time. */
const SLOW_POLL = 10 * 60_000;
/** The wait's timeout: a wait still asleep then reads the job once more and returns it, late. */
const TIMEOUT_MS = 3000;
/** How long a woken wait may take (a wait that slept until its timeout takes {@link TIMEOUT_MS}). */
const WAKE_BUDGET_MS = 1500;

/** Waits for `id` with a slow poll; fails when the wait was not woken by the job's outcome. */
async function awaitWoken(queue: Queue, id: string, started = Date.now()): Promise<string> {
  const job = await queue.waitForJob(id, { pollInterval: SLOW_POLL, timeout: TIMEOUT_MS });
  const took = Date.now() - started;
  assert.ok(took < WAKE_BUDGET_MS, `waitForJob returned ${took} ms after the wait began: it slept through the outcome`);
  return job.status;
}

/** A logger keeping its warnings. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const nop = (): void => {};
  return { debug: nop, info: nop, error: nop, warn: (msg: string) => void warnings.push(msg), warnings };
}

for (const [name, make] of storageMatrix()) {
  describe(`waitForJob wake-ups (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`wait-wakeups-${name}`);
    });
    afterEach(stopAllWorkers);
    after(() => ts.cleanup());

    it('an outcome that lands while waitForJob reads the job wakes it at once', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const q = 'wake-mid-read';
      let completed!: () => void;
      const completion = new Promise<void>((resolve) => (completed = resolve));
      queue.register('mid-read', async () => 'done');
      queue.onJobComplete(() => completed());
      const id = await queue.enqueue('mid-read', {}, { queue: q });
      let worker: Started | undefined;
      // The first read of the job sees it pending; its reply is held until the job completed
      // on a local worker and that event was delivered, then the stale row is returned.
      faulty.fail({
        method: 'jobGet',
        when: (p) => p.id === id,
        respond: async (p) => {
          const row = await ts.storage.jobGet(p);
          worker = startWorker(queue, { ...fast, queues: { [q]: { concurrency: 1 } } });
          await completion;
          for (let i = 0; i < 5; i++) await turn();
          return row;
        },
      });
      assert.equal(await awaitWoken(queue, id), 'completed');
      await worker?.stop();
    });

    it('an outcome in a flush of hundreds wakes its waiter; no "slow subscriber" warning for a waiter', async () => {
      const logger = recordingLogger();
      const queue = new Queue(ts.storage, { logger });
      const q = 'wake-burst';
      const n = 300;
      queue.register('burst', async () => 'ok');
      // Claim order is priority order: the awaited job's outcome is the second of the flush,
      // with hundreds after it in the same burst of events.
      await queue.enqueue('burst', {}, { queue: q, priority: 10 });
      const target = await queue.enqueue('burst', {}, { queue: q, priority: 9 });
      await queue.enqueueBatch(Array.from({ length: n }, () => ({ type: 'burst', args: {}, options: { queue: q } })));
      const waiting = awaitWoken(queue, target);
      const worker = startWorker(queue, { ...fast, queues: { [q]: { concurrency: n + 2 } } });
      assert.equal(await waiting, 'completed');
      await worker.stop();
      assert.deepEqual(
        logger.warnings.filter((w) => w.includes('slow')),
        [],
        'waitForJob keeps up with any burst of events',
      );
    });
  });
}
