/**
 * `instrumentMetrics`: after a known workload every counter and histogram holds exact counts per
 * queue and type; the gauges report the database's depth and oldest pending age, read at most
 * once per `gaugeInterval` however many collections ask; a failing read keeps the last values,
 * is logged once and never reaches the SDK; uninstalling stops the recording.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from '../../src/queue/queue.js';
import type { Job, Logger } from '../../src/types.js';
import { instrumentMetrics, METRIC_ATTRIBUTES as A, METRIC_NAMES as M } from '../../src/otel/metrics.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { collect, manualMetrics } from '../helpers/metrics-reader.js';
import { waitFor } from '../helpers/wait-for.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;

/** Resolves once `n` jobs of the queue reached a terminal hook. */
function terminal(queue: Queue, n: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    const done = (): void => void (++seen === n && resolve());
    queue.onJobComplete(done);
    queue.onJobFail(done);
  });
}

const seconds = (j: Job | undefined): number => (j!.completedAt!.getTime() - j!.startedAt!.getTime()) / 1000;

for (const [name, make] of storageMatrix()) {
  describe(`metrics (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`otel-metrics-${name}`);
    });
    after(() => ts.cleanup());

    it('counts runs, completions, terminal failures and retries per queue and type, with exact histogram counts', async () => {
      const queue = new Queue(ts.storage);
      queue.register('a', async (n: number) => n * 2);
      queue.register('b', async () => {
        throw new Error('b always fails');
      });
      const { provider, reader } = manualMetrics();
      const uninstall = instrumentMetrics(queue, provider, { gauges: false });
      const finished = terminal(queue, 9);
      const ids = {
        a1: await Promise.all([1, 2, 3, 4].map((n) => queue.enqueue('a', n, { queue: 'm-one' }))),
        a2: await Promise.all([5, 6, 7].map((n) => queue.enqueue('a', n, { queue: 'm-two' }))),
        b2: await Promise.all([1, 2].map(() => queue.enqueue('b', null, { queue: 'm-two', retries: 1 }))),
      };
      const worker = queue.newWorker({ ...fast, backoff: () => 0, queues: { 'm-one': { concurrency: 4 }, 'm-two': { concurrency: 4 } } });
      void worker.start();
      await finished;
      await worker.stop();

      const c = await collect(reader);
      assert.deepEqual(c.errors, []);
      const one = { [A.queue]: 'm-one', [A.type]: 'a' };
      const twoA = { [A.queue]: 'm-two', [A.type]: 'a' };
      const twoB = { [A.queue]: 'm-two', [A.type]: 'b' };
      assert.equal(c.value(M.started, one), 4);
      assert.equal(c.value(M.started, twoA), 3);
      assert.equal(c.value(M.started, twoB), 4, 'two jobs, two attempts each');
      assert.equal(c.points(M.started).length, 3);
      assert.equal(c.value(M.completed, one), 4);
      assert.equal(c.value(M.completed, twoA), 3);
      assert.equal(c.points(M.completed).length, 2, 'nothing of b completed');
      assert.equal(c.value(M.failed, twoB), 2);
      assert.equal(c.points(M.failed).length, 1);
      assert.equal(c.value(M.retried, twoB), 2);
      assert.equal(c.points(M.retried).length, 1);

      const run = (attrs: Record<string, string>, outcome: string) => c.histogram(M.runDuration, { ...attrs, [A.outcome]: outcome });
      assert.equal(run(one, 'completed')?.count, 4);
      assert.equal(run(twoA, 'completed')?.count, 3);
      assert.equal(run(twoB, 'retried')?.count, 2);
      assert.equal(run(twoB, 'failed')?.count, 2);
      assert.equal(c.points(M.runDuration).length, 4);
      // Completed and failed runs are timed from the stored start to the stored end.
      for (const [attrs, list, outcome] of [[one, ids.a1, 'completed'], [twoA, ids.a2, 'completed'], [twoB, ids.b2, 'failed']] as const) {
        const jobs = await Promise.all(list.map((id) => queue.getJob(id)));
        const expected = jobs.reduce((s, j) => s + seconds(j), 0);
        assert.ok(Math.abs((run(attrs, outcome)?.sum ?? -1) - expected) < 1e-6, `${outcome} run durations of ${attrs[A.type]} in ${attrs[A.queue]} sum to the stored ones`);
      }
      const wait = (attrs: Record<string, string>) => c.histogram(M.waitDuration, attrs);
      assert.equal(wait(one)?.count, 4);
      assert.equal(wait(twoA)?.count, 3);
      assert.equal(wait(twoB)?.count, 4);
      assert.ok((wait(twoB)?.min ?? -1) >= 0);

      // Uninstalled: another job is not counted.
      uninstall();
      const more = terminal(queue, 1);
      await queue.enqueue('a', 8, { queue: 'm-one' });
      const again = queue.newWorker({ ...fast, queues: { 'm-one': { concurrency: 1 } } });
      void again.start();
      await more;
      await again.stop();
      const d = await collect(reader);
      assert.equal(d.value(M.started, one), 4);
      assert.equal(d.value(M.completed, one), 4);
      await provider.shutdown();
    });

    it('gauges report the database depth and oldest pending age, one read per interval', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      queue.register('hold', () => held);
      queue.register('nap', async (_: null, ctx) => ctx.sleep(3_600_000));
      for (let i = 0; i < 3; i++) await queue.enqueue('hold', null, { queue: 'g-one' });
      await queue.enqueue('hold', null, { queue: 'g-one', delay: 3_600_000 });
      await queue.enqueue('hold', null, { queue: 'g-two' });
      await queue.enqueue('nap', null, { queue: 'g-two' });
      const worker = queue.newWorker({ ...fast, queues: { 'g-two': { concurrency: 2 } } });
      void worker.start();
      const { provider, reader } = manualMetrics();
      const short = manualMetrics();
      try {
        await waitFor(async () => (await queue.queues()).some((q) => q.name === 'g-two' && q.running === 1 && q.waiting === 1), {
          message: 'g-two has one running and one waiting job',
        });
        const uninstall = instrumentMetrics(queue, provider, { gaugeInterval: 60_000 });
        const reads = faulty.calls('queueSummary');
        const readAt = Date.now();
        for (let i = 0; i < 10; i++) assert.deepEqual((await collect(reader)).errors, []);
        const c = await collect(reader);
        assert.equal(faulty.calls('queueSummary') - reads, 1, 'eleven collections in one interval read the database once');
        const depth = (queueName: string, state: string) => c.value(M.queueDepth, { [A.queue]: queueName, [A.state]: state });
        assert.equal(depth('g-one', 'pending'), 4, 'due and not yet due pending jobs');
        assert.equal(depth('g-one', 'running'), 0);
        assert.equal(depth('g-one', 'waiting'), 0);
        assert.equal(depth('g-two', 'pending'), 0);
        assert.equal(depth('g-two', 'running'), 1);
        assert.equal(depth('g-two', 'waiting'), 1);
        assert.equal(c.points(M.queueDepth).filter((p) => String(p[A.queue]).startsWith('g-')).length, 6, 'three states of each queue');
        // The age (seconds) is the one read: a read made later finds it older by at most the time between.
        const age = c.value(M.oldestPendingAge, { [A.queue]: 'g-one' }) ?? -1;
        const direct = (await queue.queues()).find((q) => q.name === 'g-one')?.oldestPendingAgeMs ?? -1;
        const between = Date.now() - readAt;
        assert.ok(age > 0 && direct >= age * 1000 - 1 && direct - age * 1000 <= between + 5, `oldest pending age ${age} s, then ${direct} ms (${between} ms later)`);
        assert.equal(c.value(M.oldestPendingAge, { [A.queue]: 'g-two' }), 0, 'no due pending job in g-two');
        uninstall();

        // A short interval: reads again once it has passed, not before.
        const remove = instrumentMetrics(queue, short.provider, { gaugeInterval: 300 });
        const first = faulty.calls('queueSummary');
        const t0 = Date.now();
        await collect(short.reader);
        for (let i = 0; i < 5; i++) await collect(short.reader);
        if (Date.now() - t0 < 300) assert.equal(faulty.calls('queueSummary') - first, 1, 'no second read within the interval');
        await waitFor(() => Date.now() - t0 >= 300, { message: 'the interval passed' });
        await collect(short.reader);
        await collect(short.reader);
        assert.equal(faulty.calls('queueSummary') - first, 2, 'one more read after the interval');
        remove();
      } finally {
        release();
        await worker.stop();
        await provider.shutdown();
        await short.provider.shutdown();
      }
    });

    it('a failing read keeps the last values, is logged once per run of failures, and never throws into the SDK', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      await queue.enqueue('idle', null, { queue: 'f-one' });
      await queue.enqueue('idle', null, { queue: 'f-one' });
      const warnings: string[] = [];
      const logger: Logger = { debug() {}, info() {}, warn: (m) => void warnings.push(m), error() {} };
      const { provider, reader } = manualMetrics();
      const uninstall = instrumentMetrics(queue, provider, { gaugeInterval: 0, logger });
      const pending = { [A.queue]: 'f-one', [A.state]: 'pending' };
      assert.equal((await collect(reader)).value(M.queueDepth, pending), 2);

      faulty.fail({ method: 'queueSummary', times: 2 });
      await queue.enqueue('idle', null, { queue: 'f-one' });
      for (let i = 0; i < 2; i++) {
        const c = await collect(reader);
        assert.deepEqual(c.errors, [], 'the SDK sees no error');
        assert.equal(c.value(M.queueDepth, pending), 2, 'the last values stay');
      }
      assert.equal(warnings.length, 1, 'two failures in a row are logged once');
      assert.match(warnings[0]!, /queue depths/);

      assert.equal((await collect(reader)).value(M.queueDepth, pending), 3, 'the next read succeeds');
      faulty.fail({ method: 'queueSummary' });
      await collect(reader);
      assert.equal(warnings.length, 2, 'a new run of failures is logged again');
      uninstall();
      await provider.shutdown();
    });

    it('rejects an invalid gaugeInterval', () => {
      const queue = new Queue(ts.storage);
      const { provider } = manualMetrics();
      for (const bad of [-1, 1.5, Number.NaN, 2 ** 31, '15s']) {
        assert.throws(() => instrumentMetrics(queue, provider, { gaugeInterval: bad as number }), { name: 'InvalidArgumentError' });
      }
    });
  });
}
