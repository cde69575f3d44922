/**
 * The documented Prometheus setup: a `PrometheusExporter` as the reader of a `MeterProvider`,
 * scraped over real HTTP (127.0.0.1, an ephemeral port) while a worker runs: the scrape holds
 * every metric name docs/observability.md lists for Grafana, with the workload's values.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { Queue } from '../../src/queue/queue.js';
import { noRetry } from '../../src/errors.js';
import { instrumentMetrics } from '../../src/otel/metrics.js';
import { startExporter } from '../helpers/prometheus.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';

const fast = { pollInterval: 20, maintenanceInterval: 50, handleSignals: false } as const;

/** Samples of a Prometheus text scrape: `name{labels} value`, scope labels dropped. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = (m[2] ?? '')
      .split(/,(?=\w+=")/)
      .filter((l) => l !== '' && !l.startsWith('otel_scope_'))
      .sort()
      .join(',');
    out.set(`${m[1]}{${labels}}`, Number(m[3]));
  }
  return out;
}

/** The key `samples` gives a sample: its labels sorted. */
function key(metric: string, labels: Record<string, string>): string {
  const l = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  return `${metric}{${l}}`;
}

/** The scrape names listed in docs/observability.md: the first `text` block under "## Prometheus", one per line. */
function documentedNames(): string[] {
  const doc = readFileSync(new URL('../../docs/observability.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('\n## Prometheus'));
  const block = /```text\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block
    .split('\n')
    .map((l) => l.trim().split(/\s/)[0] ?? '')
    .filter((n) => n.startsWith('sdj_'));
}

for (const [name, make] of storageMatrix()) {
  describe(`prometheus scrape (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`otel-prometheus-${name}`);
    });
    after(() => ts.cleanup());

    it('serves every documented metric with the workload values', async () => {
      const queue = new Queue(ts.storage);
      queue.register('resize', async (n: number) => n);
      queue.register('broken', async () => {
        throw noRetry(new Error('broken'));
      });
      queue.register('flaky', async (_: null, ctx) => {
        if (ctx.job.attempt === 1) throw new Error('first attempt fails');
        return 'ok';
      });
      const { exporter, port } = await startExporter();
      const provider = new MeterProvider({ readers: [exporter] });
      const uninstall = instrumentMetrics(queue, provider, { gaugeInterval: 0 });
      let finished = 0;
      const done = new Promise<void>((resolve) => {
        const one = (): void => void (++finished === 5 && resolve());
        queue.onJobComplete(one);
        queue.onJobFail(one);
      });
      const worker = queue.newWorker({ ...fast, backoff: () => 0, queues: { media: { concurrency: 2 } } });
      try {
        for (const n of [1, 2, 3]) await queue.enqueue('resize', n, { queue: 'media' });
        await queue.enqueue('broken', null, { queue: 'media' });
        await queue.enqueue('flaky', null, { queue: 'media', retries: 1 });
        await queue.enqueue('resize', 9, { queue: 'later' });
        await queue.enqueue('resize', 10, { queue: 'later' });
        void worker.start();
        await done;

        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        assert.equal(res.status, 200);
        const text = await res.text();
        const s = samples(text);
        const get = (metric: string, labels: Record<string, string>) => s.get(key(metric, labels));
        const resize = { messaging_destination_name: 'media', sdj_job_type: 'resize' };
        const broken = { messaging_destination_name: 'media', sdj_job_type: 'broken' };
        assert.equal(get('sdj_jobs_started_total', resize), 3);
        assert.equal(get('sdj_jobs_started_total', broken), 1);
        assert.equal(get('sdj_jobs_completed_total', resize), 3);
        assert.equal(get('sdj_jobs_failed_total', broken), 1);
        const flaky = { messaging_destination_name: 'media', sdj_job_type: 'flaky' };
        assert.equal(get('sdj_jobs_retried_total', broken), undefined, 'broken is not retried');
        assert.equal(get('sdj_jobs_retried_total', flaky), 1);
        assert.equal(get('sdj_jobs_started_total', flaky), 2);
        assert.equal(get('sdj_jobs_completed_total', flaky), 1);
        assert.equal(get('sdj_job_run_duration_count', { ...flaky, sdj_job_outcome: 'retried' }), 1);
        assert.equal(get('sdj_job_run_duration_count', { ...resize, sdj_job_outcome: 'completed' }), 3);
        assert.equal(get('sdj_job_run_duration_bucket', { ...resize, sdj_job_outcome: 'completed', le: '+Inf' }), 3);
        assert.equal(get('sdj_job_run_duration_count', { ...broken, sdj_job_outcome: 'failed' }), 1);
        assert.equal(get('sdj_job_wait_duration_count', resize), 3);
        assert.equal(get('sdj_queue_depth', { messaging_destination_name: 'later', sdj_job_state: 'pending' }), 2);
        assert.equal(get('sdj_queue_depth', { messaging_destination_name: 'later', sdj_job_state: 'running' }), 0);
        assert.equal(get('sdj_queue_depth', { messaging_destination_name: 'media', sdj_job_state: 'pending' }), 0);
        assert.ok((get('sdj_queue_oldest_pending_age', { messaging_destination_name: 'later' }) ?? -1) >= 0);
        assert.match(text, /# TYPE sdj_jobs_started_total counter/);
        assert.match(text, /# TYPE sdj_job_run_duration histogram/);
        assert.match(text, /# TYPE sdj_queue_depth gauge/);

        const names = documentedNames();
        assert.ok(names.length >= 8, `the docs list the scrape names (found ${names.join(', ')})`);
        const scraped = new Set([...s.keys()].map((k) => k.slice(0, k.indexOf('{'))));
        for (const n of names) assert.ok(scraped.has(n), `${n} (docs/observability.md) is in the scrape`);
      } finally {
        await worker.stop();
        uninstall();
        await provider.shutdown();
      }
    });
  });
}
