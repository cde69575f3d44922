/**
 * Traces on every driver (simple-durable-jobs/otel): one trace from an enqueue in this process to
 * the runs in a worker PROCESS (test/otel/fixtures/traced-worker.ts, which prints its spans as
 * JSON) with its step span and fan-out sub-jobs; a retry as a second run in the same trace; a
 * workflow that slept across a worker restart continuing its trace in the next process. Span
 * kinds, names, parentage and attributes are asserted exactly.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Queue } from '../../src/queue/queue.js';
import { instrument, TRACE_CONTEXT_META_KEY } from '../../src/otel/index.js';
import { storageMatrix } from '../helpers/storages.js';
import { sharedStorage, type StorageEnv } from '../helpers/process-storage.js';
import { spawnFixture, type Child } from '../helpers/child.js';
import { uniqueName } from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';
import { spanJson, type SpanJson } from './fixtures/span-json.js';
import type { Storage } from '../../src/storage/storage.js';

const FIXTURE = new URL('./fixtures/traced-worker.ts', import.meta.url).pathname;
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const local = (): SpanJson[] => exporter.getFinishedSpans().map(spanJson);
const MSG = { 'messaging.system': 'simple-durable-jobs' };
const send = (queue: string, type: string, id: string, extra: Record<string, unknown> = {}) => ({ ...MSG, 'messaging.operation.name': 'send', 'messaging.operation.type': 'send', 'messaging.destination.name': queue, 'sdj.job.type': type, 'messaging.message.id': id, ...extra });
const process_ = (queue: string, type: string, id: string, worker: string, attempt: number, runCount: number, extra: Record<string, unknown> = {}) => ({
  ...MSG,
  'messaging.operation.name': 'process',
  'messaging.operation.type': 'process',
  'messaging.destination.name': queue,
  'messaging.message.id': id,
  'messaging.client.id': worker,
  'sdj.job.type': type,
  'sdj.job.attempt': attempt,
  'sdj.job.run_count': runCount,
  ...extra,
});

/** The spans a traced worker process printed, once it printed at least `n`; then the process is stopped. */
async function spansOf(child: Child, n: number): Promise<SpanJson[]> {
  const spans = (): SpanJson[] => child.lines.filter((l) => l.startsWith('span ')).map((l) => JSON.parse(l.slice(5)) as SpanJson);
  await waitFor(() => spans().length >= n, { timeout: 20_000, message: `${n} spans from the worker process` });
  child.proc.kill('SIGTERM');
  await child.exited;
  return spans();
}

function one(spans: SpanJson[], pred: (s: SpanJson) => boolean, what: string): SpanJson {
  const hits = spans.filter(pred);
  assert.equal(hits.length, 1, `exactly one ${what} span, got ${JSON.stringify(hits)}`);
  return hits[0]!;
}

function startChild(env: StorageEnv, queue: string): Child {
  return spawnFixture(FIXTURE, { ...env, SDJ_QUEUE: queue });
}

for (const [name] of storageMatrix()) {
  describe(`traces (${name})`, () => {
    let shared: { env: StorageEnv; storage: Storage; cleanup: () => Promise<void> };
    const children: Child[] = [];
    before(async () => {
      shared = await sharedStorage(name);
    });
    afterEach(async () => {
      exporter.reset();
      for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      await stopAllWorkers();
    });
    after(() => shared.cleanup());

    it('one trace from an enqueue here to its runs, step and sub-jobs in a worker process', async () => {
      const q = uniqueName('otel');
      const queue = new Queue(shared.storage);
      instrument(queue, { tracerProvider });
      const id = await tracerProvider.getTracer('test').startActiveSpan('request', async (span) => {
        try {
          return await queue.enqueue('wf', 1, { queue: q });
        } finally {
          span.end();
        }
      });
      const [request, producer] = [one(local(), (s) => s.name === 'request', 'request'), one(local(), (s) => s.kind === SpanKind.PRODUCER, 'producer')];
      assert.equal(producer.name, `send ${q}`);
      assert.equal(producer.parentSpanId, request.spanId);
      assert.equal(producer.traceId, request.traceId);
      assert.deepEqual(producer.attributes, send(q, 'wf', id, { 'sdj.enqueue.source': 'enqueue' }));
      const stored = (await queue.getJob(id))?.meta[TRACE_CONTEXT_META_KEY];
      assert.deepEqual(stored, { traceparent: `00-${producer.traceId}-${producer.spanId}-01` });

      const child = startChild(shared.env, q);
      children.push(child);
      const job = await queue.waitForJob(id, { timeout: 20_000 });
      assert.equal(job.status, 'completed');
      assert.deepEqual(job.result, [20, 30]);
      const spans = await spansOf(child, 7);
      assert.equal(spans.length, 7, JSON.stringify(spans.map((s) => s.name)));
      assert.ok(spans.every((s) => s.traceId === producer.traceId), 'every span is in the enqueue trace');
      const worker = String(spans.find((s) => s.kind === SpanKind.CONSUMER)?.attributes['messaging.client.id']);
      assert.match(worker, /.+/);
      const run1 = one(spans, (s) => s.attributes['sdj.job.type'] === 'wf' && s.attributes['sdj.job.run_count'] === 1, 'first run');
      const run2 = one(spans, (s) => s.attributes['sdj.job.type'] === 'wf' && s.attributes['sdj.job.run_count'] === 2, 'resumed run');
      for (const [run, n] of [[run1, 1], [run2, 2]] as const) {
        assert.equal(run.name, `process ${q}`);
        assert.equal(run.kind, SpanKind.CONSUMER);
        assert.equal(run.parentSpanId, producer.spanId, 'a run is a child of the producer span');
        assert.equal(run.status.code, SpanStatusCode.UNSET);
        assert.deepEqual(run.attributes, process_(q, 'wf', id, worker, 1, n, n === 1 ? { 'sdj.run.suspended': 'fan-out' } : {}));
      }
      const step = one(spans, (s) => s.kind === SpanKind.INTERNAL, 'step');
      assert.equal(step.name, 'step step-a');
      assert.equal(step.parentSpanId, run1.spanId);
      assert.deepEqual(step.attributes, { 'sdj.step.name': 'step-a', 'sdj.step.index': 0, 'messaging.message.id': id, 'sdj.job.type': 'wf' });
      const kidSends = spans.filter((s) => s.kind === SpanKind.PRODUCER);
      assert.equal(kidSends.length, 2);
      const kids = (await queue.listJobs({ queue: q, type: 'kid', order: 'asc' })).jobs;
      assert.deepEqual(kidSends.map((s) => s.attributes['messaging.message.id']).sort(), kids.map((k) => k.id).sort());
      for (const s of kidSends) {
        assert.equal(s.name, `send ${q}`);
        assert.equal(s.parentSpanId, run1.spanId, 'sub-jobs are enqueued inside the parent run');
        assert.deepEqual(s.attributes, send(q, 'kid', String(s.attributes['messaging.message.id']), { 'sdj.enqueue.source': 'fan-out', 'sdj.job.parent_id': id }));
        const kidRun = one(spans, (r) => r.kind === SpanKind.CONSUMER && r.attributes['messaging.message.id'] === s.attributes['messaging.message.id'], 'sub-job run');
        assert.equal(kidRun.parentSpanId, s.spanId);
        assert.deepEqual(kidRun.attributes, process_(q, 'kid', String(s.attributes['messaging.message.id']), worker, 1, 1));
      }
    });

    it('a retry is a second run span in the same trace; the failed one has status ERROR and the exception', async () => {
      const q = uniqueName('otel');
      const queue = new Queue(shared.storage);
      instrument(queue, { tracerProvider });
      queue.register('flaky', (_: unknown, ctx) => {
        if (ctx.job.attempt === 1) throw new Error('first attempt fails');
        return 'ok';
      });
      const id = await queue.enqueue('flaky', null, { queue: q, retries: 1 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } }, backoff: () => 0 });
      const job = await queue.waitForJob(id, { timeout: 10_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      const spans = local();
      const producer = one(spans, (s) => s.kind === SpanKind.PRODUCER, 'producer');
      assert.equal(producer.parentSpanId, undefined);
      const runs = spans.filter((s) => s.kind === SpanKind.CONSUMER).sort((a, b) => Number(a.attributes['sdj.job.attempt']) - Number(b.attributes['sdj.job.attempt']));
      assert.equal(runs.length, 2);
      const [first, second] = runs as [SpanJson, SpanJson];
      for (const r of runs) {
        assert.equal(r.traceId, producer.traceId);
        assert.equal(r.parentSpanId, producer.spanId);
      }
      assert.deepEqual(first.attributes, process_(q, 'flaky', id, w.worker.id, 1, 1));
      assert.deepEqual(first.status, { code: SpanStatusCode.ERROR, message: 'first attempt fails' });
      assert.deepEqual(first.events, ['exception']);
      assert.deepEqual(second.attributes, process_(q, 'flaky', id, w.worker.id, 2, 2));
      assert.deepEqual(second.status, { code: SpanStatusCode.UNSET, message: undefined });
      assert.deepEqual(second.events, []);
    });

    it('a workflow that slept across a worker restart continues its trace in the next process', async () => {
      const q = uniqueName('otel');
      const queue = new Queue(shared.storage);
      instrument(queue, { tracerProvider });
      const id = await queue.enqueue('sleeper', 1_500, { queue: q });
      const producer = one(local(), (s) => s.kind === SpanKind.PRODUCER, 'producer');
      const first = startChild(shared.env, q);
      children.push(first);
      await waitFor(async () => (await queue.getJob(id))?.status === 'waiting', { timeout: 20_000, message: 'the workflow sleeps' });
      const before = await spansOf(first, 2);
      assert.deepEqual(before.map((s) => s.name).sort(), [`process ${q}`, 'step step-a']);
      const run1 = one(before, (s) => s.kind === SpanKind.CONSUMER, 'first run');
      assert.equal(run1.attributes['sdj.run.suspended'], 'sleep');
      const second = startChild(shared.env, q);
      children.push(second);
      const job = await queue.waitForJob(id, { timeout: 20_000 });
      assert.equal(job.status, 'completed');
      assert.equal(job.result, 3);
      const afterRestart = await spansOf(second, 2);
      assert.equal(afterRestart.length, 2, JSON.stringify(afterRestart.map((s) => s.name)));
      const run2 = one(afterRestart, (s) => s.kind === SpanKind.CONSUMER, 'resumed run');
      const worker2 = String(run2.attributes['messaging.client.id']);
      assert.notEqual(worker2, run1.attributes['messaging.client.id']);
      assert.deepEqual(run2.attributes, process_(q, 'sleeper', id, worker2, 1, 2));
      const step = one(afterRestart, (s) => s.kind === SpanKind.INTERNAL, 'step');
      assert.equal(step.name, 'step step-b', 'the replayed step-a makes no span');
      assert.equal(step.attributes['sdj.step.index'], 2);
      assert.equal(step.parentSpanId, run2.spanId);
      for (const s of [...before, ...afterRestart]) assert.equal(s.traceId, producer.traceId);
      assert.equal(run1.parentSpanId, producer.spanId);
      assert.equal(run2.parentSpanId, producer.spanId);
    });
  });
}
