/**
 * `instrumentMetrics` under the conditions operators meet: a gauge read that never answers
 * (the collection and a real Prometheus scrape still finish, and reads do not pile up), a
 * closed storage, jobs failed or retried by the lease reaper after their worker died (they are
 * counted), exact counts for noRetry, unknown types, timeouts, cancels mid-run and workflows
 * that suspend and resume, odd job-type characters in a scrape, two queues over one storage,
 * and option validation (nothing installed on a bad option).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { Queue } from '../../src/queue/queue.js';
import { noRetry } from '../../src/errors.js';
import type { Logger } from '../../src/types.js';
import type { QueueSummaryRow } from '../../src/storage/storage.js';
import { instrument } from '../../src/otel/index.js';
import { instrumentMetrics, METRIC_ATTRIBUTES as A, METRIC_NAMES as M } from '../../src/otel/metrics.js';
import { startExporter } from '../helpers/prometheus.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { collect, manualMetrics } from '../helpers/metrics-reader.js';
import { runningJob, uniqueName } from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;

/** Resolves with `p`'s value, or rejects when it takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(t));
}

function recordingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, logger: { debug() {}, info() {}, warn: (m) => void warnings.push(m), error() {} } };
}

for (const [name, make] of storageMatrix()) {
  describe(`metrics, adversarial (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`otel-metrics-adv-${name}`);
    });
    after(() => ts.cleanup());

    it('a gauge read that never answers does not hang collections or a Prometheus scrape, and starts no second read', async () => {
      const faulty = new FaultyStorage(ts.storage);
      const queue = new Queue(faulty.storage);
      const q = uniqueName('hung');
      await queue.enqueue('idle', null, { queue: q });
      const { logger, warnings } = recordingLogger();
      const { exporter, port } = await startExporter();
      const provider = new MeterProvider({ readers: [exporter] });
      const uninstall = instrumentMetrics(queue, provider, { gaugeInterval: 0, gaugeReadTimeout: 200, logger });
      const manual = manualMetrics();
      try {
        const scrape = async (): Promise<string> => {
          const res = await within(fetch(`http://127.0.0.1:${port}/metrics`), 3_000, 'a scrape');
          assert.equal(res.status, 200);
          return res.text();
        };
        assert.match(await scrape(), new RegExp(`sdj_queue_depth\\{[^}]*messaging_destination_name="${q}"[^}]*sdj_job_state="pending"[^}]*\\} 1`));

        // The database stops answering: the read hangs until the test lets it go.
        let answer!: (rows: QueueSummaryRow[]) => void;
        const hung = new Promise<QueueSummaryRow[]>((r) => (answer = r));
        faulty.fail({ method: 'queueSummary', respond: () => hung });
        await queue.enqueue('idle', null, { queue: q });
        const before = faulty.calls('queueSummary');
        for (let i = 0; i < 3; i++) {
          const text = await scrape();
          assert.match(text, new RegExp(`messaging_destination_name="${q}"[^}]*sdj_job_state="pending"[^}]*\\} 1`), 'the last values stay');
        }
        assert.equal(faulty.calls('queueSummary') - before, 1, 'one read in flight at most: collections do not pile up reads');
        assert.equal(warnings.length, 1, 'the hung read is reported once');
        assert.match(warnings[0]!, /queue depths/);

        // The read finally answers (with the real rows): the next collection reports them.
        answer(await ts.storage.queueSummary());
        await waitFor(async () => /sdj_job_state="pending"[^}]*\} 2/.test((await scrape()).split('\n').filter((l) => l.includes(`"${q}"`)).join('\n')), {
          message: 'the gauges read again once the hung read settled',
        });

        // A provider collecting with the SDK's own timeout is not held either.
        const removeManual = instrumentMetrics(queue, manual.provider, { gaugeInterval: 0, gaugeReadTimeout: 200, logger });
        faulty.fail({ method: 'queueSummary', respond: () => new Promise(() => {}) });
        const c = await within(collect(manual.reader), 3_000, 'a manual collection');
        assert.deepEqual(c.errors, []);
        removeManual();
      } finally {
        uninstall();
        await provider.shutdown();
        await manual.provider.shutdown();
      }
    });

    it('a closed storage fails the gauge read quietly: the collection resolves without errors', async () => {
      const other = await ts.another();
      const queue = new Queue(other);
      const q = uniqueName('closed');
      await queue.enqueue('idle', null, { queue: q });
      const { logger, warnings } = recordingLogger();
      const { provider, reader } = manualMetrics();
      const uninstall = instrumentMetrics(queue, provider, { gaugeInterval: 0, gaugeReadTimeout: 2_000, logger });
      assert.equal((await collect(reader)).value(M.queueDepth, { [A.queue]: q, [A.state]: 'pending' }), 1);
      await other.close();
      const c = await within(collect(reader), 5_000, 'a collection on a closed storage');
      assert.deepEqual(c.errors, []);
      assert.equal(c.value(M.queueDepth, { [A.queue]: q, [A.state]: 'pending' }), 1, 'the last value stays');
      assert.equal(warnings.length, 1);
      uninstall();
      uninstall();
      await provider.shutdown();
    });

    it('jobs whose worker died are counted: a reclaim with attempts left is a retry, one without is a terminal failure', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('reclaim');
      queue.register('test', async () => 'ok');
      const { provider, reader } = manualMetrics();
      const uninstall = instrumentMetrics(queue, provider, { gauges: false });
      // Two jobs claimed by a worker that then died (it never heartbeats; its lease is 1 ms).
      const dead = { workerId: 'dead-worker', leaseMs: 1 };
      const spent = await runningJob(ts.storage, { queue: q, maxRetries: 0 }, dead);
      const again = await runningJob(ts.storage, { queue: q, maxRetries: 2 }, dead);
      const worker = queue.newWorker({ ...fast, queues: { [q]: { concurrency: 2 } } });
      void worker.start();
      try {
        const [s, a] = await Promise.all([queue.waitForJob(spent.row.id, { timeout: 15_000 }), queue.waitForJob(again.row.id, { timeout: 15_000 })]);
        assert.equal(s.status, 'failed');
        assert.equal(a.status, 'completed');
      } finally {
        await worker.stop();
      }
      const c = await collect(reader);
      const attrs = { [A.queue]: q, [A.type]: 'test' };
      assert.equal(c.value(M.failed, attrs), 1, 'the job failed by the lease reaper is a terminal failure');
      assert.equal(c.value(M.retried, attrs), 1, 'the reclaimed attempt with retries left is a retry');
      assert.equal(c.value(M.started, attrs), 1, 'only the run on this worker started here');
      assert.equal(c.value(M.completed, attrs), 1);
      uninstall();
      await provider.shutdown();
    });

    it('exact counts for noRetry, an unknown type, a timeout, a cancel mid-run and a workflow that sleeps twice', async () => {
      const queue = new Queue(ts.storage);
      const q = uniqueName('exact');
      let runningCancel!: () => void;
      const cancelStarted = new Promise<void>((r) => (runningCancel = r));
      queue.register('fatal', async () => {
        throw noRetry(new Error('fatal'));
      });
      queue.register('slow', (_: null, ctx) => new Promise((_r, reject) => ctx.abortSignal.addEventListener('abort', () => reject(new Error('aborted')))));
      queue.register('cancelled', (_: null, ctx) => {
        runningCancel();
        return new Promise((_r, reject) => ctx.abortSignal.addEventListener('abort', () => reject(new Error('aborted'))));
      });
      queue.register('nap', async (_: null, ctx) => {
        await ctx.sleep(1);
        await ctx.sleep(1);
        return 'rested';
      });
      const { provider, reader } = manualMetrics();
      const uninstall = instrumentMetrics(queue, provider, { gauges: false });
      const worker = queue.newWorker({ ...fast, backoff: () => 0, queues: { [q]: { concurrency: 5 } } });
      void worker.start();
      try {
        const fatal = await queue.enqueue('fatal', null, { queue: q, retries: 3 });
        const unknown = await queue.enqueue('no-such-type', null, { queue: q, retries: 3 });
        const slow = await queue.enqueue('slow', null, { queue: q, retries: 1, timeout: 50 });
        const nap = await queue.enqueue('nap', null, { queue: q });
        const cancelled = await queue.enqueue('cancelled', null, { queue: q });
        await cancelStarted;
        await queue.cancelJob(cancelled);
        const done = await Promise.all([fatal, unknown, slow, nap, cancelled].map((id) => queue.waitForJob(id, { timeout: 15_000 })));
        assert.deepEqual(
          done.map((j) => j.status),
          ['failed', 'failed', 'failed', 'completed', 'cancelled'],
        );
      } finally {
        await worker.stop();
      }
      const c = await collect(reader);
      assert.deepEqual(c.errors, []);
      const at = (type: string) => ({ [A.queue]: q, [A.type]: type });
      assert.equal(c.value(M.started, at('fatal')), 1);
      assert.equal(c.value(M.failed, at('fatal')), 1);
      assert.equal(c.value(M.retried, at('fatal')), undefined, 'noRetry is not retried');
      assert.equal(c.value(M.started, at('no-such-type')), 1);
      assert.equal(c.value(M.failed, at('no-such-type')), 1);
      assert.equal(c.value(M.retried, at('no-such-type')), undefined, 'an unknown type is not retried');
      assert.equal(c.value(M.started, at('slow')), 2, 'a timed-out attempt and its retry');
      assert.equal(c.value(M.retried, at('slow')), 1);
      assert.equal(c.value(M.failed, at('slow')), 1);
      assert.equal(c.value(M.started, at('nap')), 3, 'the first run and two resumes (documented)');
      assert.equal(c.value(M.completed, at('nap')), 1);
      assert.equal(c.histogram(M.runDuration, { ...at('nap'), [A.outcome]: 'completed' })?.count, 1);
      assert.equal(c.histogram(M.waitDuration, at('nap'))?.count, 3);
      assert.equal(c.value(M.started, at('cancelled')), 1);
      assert.equal(c.value(M.completed, at('cancelled')), undefined, 'a cancelled run is no outcome of its own');
      assert.equal(c.value(M.failed, at('cancelled')), undefined);
      for (const p of c.points(M.runDuration)) {
        const h = c.histogram(M.runDuration, p as Record<string, string>);
        assert.ok((h?.min ?? 0) >= 0, 'no negative run duration');
      }
      for (const p of c.points(M.waitDuration)) {
        const h = c.histogram(M.waitDuration, p as Record<string, string>);
        assert.ok((h?.min ?? 0) >= 0, 'no negative wait');
      }
      uninstall();
      await provider.shutdown();
    });

    it('a job type with quotes and backslashes scrapes as valid escaped labels; two queues over one storage share one provider', async () => {
      const q = uniqueName('odd');
      const odd = 'say "hi" \\ there';
      const one = new Queue(ts.storage);
      const two = new Queue(ts.storage);
      for (const queue of [one, two]) queue.register(odd, async () => 1);
      const { exporter, port } = await startExporter();
      const provider = new MeterProvider({ readers: [exporter] });
      const removers = [one, two].map((queue) => instrumentMetrics(queue, provider, { gaugeInterval: 0 }));
      const worker = one.newWorker({ ...fast, queues: { [q]: { concurrency: 1 } } });
      void worker.start();
      try {
        const id = await two.enqueue(odd, null, { queue: q });
        await one.waitForJob(id, { timeout: 15_000 });
        await two.enqueue(odd, null, { queue: q, delay: 3_600_000 });
        const res = await within(fetch(`http://127.0.0.1:${port}/metrics`), 5_000, 'a scrape');
        assert.equal(res.status, 200);
        const text = await res.text();
        const started = text.split('\n').filter((l) => l.startsWith('sdj_jobs_started_total{') && l.includes(q));
        assert.equal(started.length, 1, 'one series: the worker ran on queue one only');
        assert.ok(started[0]!.includes('sdj_job_type="say \\"hi\\" \\\\ there"'), `escaped label: ${started[0]}`);
        assert.match(started[0]!, / 1$/);
        const depth = text.split('\n').filter((l) => l.startsWith('sdj_queue_depth{') && l.includes(`"${q}"`) && l.includes('"pending"'));
        assert.equal(depth.length, 1, 'both queues observe the same series: it is reported once');
        assert.match(depth[0]!, / 1$/);
      } finally {
        await worker.stop();
        for (const r of removers) r();
        await provider.shutdown();
      }
    });

    it('accepts gaugeInterval 0 and 2147483647; a bad option installs nothing, through instrument() too', async () => {
      const queue = new Queue(ts.storage);
      const { provider, reader } = manualMetrics();
      for (const ok of [0, 2_147_483_647]) instrumentMetrics(queue, provider, { gaugeInterval: ok })();
      for (const bad of [{ gaugeReadTimeout: 0 }, { gaugeReadTimeout: 1.5 }, { gaugeReadTimeout: 2 ** 31 }, { gaugeInterval: -1 }, { logger: {} as Logger }]) {
        assert.throws(() => instrumentMetrics(queue, provider, bad), { name: 'InvalidArgumentError' }, JSON.stringify(bad));
        assert.throws(() => instrument(queue, { meterProvider: provider, metrics: bad }), { name: 'InvalidArgumentError' });
      }
      const q = uniqueName('none');
      queue.register('x', async () => 1);
      const worker = queue.newWorker({ ...fast, queues: { [q]: { concurrency: 1 } } });
      void worker.start();
      try {
        await queue.waitForJob(await queue.enqueue('x', null, { queue: q }), { timeout: 15_000 });
      } finally {
        await worker.stop();
      }
      const c = await collect(reader);
      assert.deepEqual(c.points(M.started), [], 'nothing was installed');
      assert.deepEqual(c.points(M.queueDepth), []);
      await provider.shutdown();
    });
  });
}
