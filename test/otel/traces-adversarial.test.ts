/**
 * Traces under hostile input, on every driver (in this process): a job whose stored `sdj.trace`
 * is garbage (written by an uninstrumented producer: a string, a number, an array, non-string
 * fields, an all-zero or malformed traceparent, a huge tracestate) runs normally, its run a root
 * span; a user's own `sdj.trace` is replaced by the producer's; meta that fits the payload cap
 * only without the trace context is enqueued with the context left out (tracing never makes a
 * job un-enqueueable); a run that suspends ends its span unerrored, marked suspended; a retry is
 * a second run span in the producer's trace; `instrument()` after a worker started applies to
 * its next runs.
 */
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Queue } from '../../src/queue/queue.js';
import { PayloadTooLargeError } from '../../src/errors.js';
import { instrument, TRACE_CONTEXT_META_KEY } from '../../src/otel/index.js';
import type { JsonValue } from '../../src/types.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { uniqueName } from '../helpers/factories.js';
import { waitFor } from '../helpers/wait-for.js';
import { startWorker, stopAllWorkers } from '../helpers/workflow-harness.js';
import { spanJson, type SpanJson } from './fixtures/span-json.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const spans = (): SpanJson[] => exporter.getFinishedSpans().map(spanJson);
const runsOf = (id: string): SpanJson[] => spans().filter((s) => s.kind === SpanKind.CONSUMER && s.attributes['messaging.message.id'] === id);

for (const [name, make] of storageMatrix()) {
  describe(`traces, adversarial (${name})`, () => {
    let ts: TestStorage;
    before(async () => {
      ts = await make(`otel-adv-${name}`);
    });
    afterEach(async () => {
      exporter.reset();
      await stopAllWorkers();
    });
    after(() => ts.cleanup());

    it('a garbage stored trace context never breaks the run: it runs as a root span', async () => {
      const q = uniqueName('otel-adv');
      const plain = new Queue(ts.storage); // an uninstrumented producer writes what it likes
      const traced = new Queue(ts.storage);
      instrument(traced, { tracerProvider });
      traced.register('victim', (n: number) => n);
      const garbage: JsonValue[] = [
        'not an object',
        42,
        null,
        ['00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
        { traceparent: 17, tracestate: { x: 1 } },
        { traceparent: '00-00000000000000000000000000000000-0000000000000000-01' },
        { traceparent: '00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01' },
        { traceparent: 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra' },
        { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: `${'k'.repeat(300)}=${'v'.repeat(200_000)},=,,===` },
        { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', baggage: '%%%;;;=' + 'x'.repeat(200_000) },
      ];
      const ids: string[] = [];
      for (const [i, g] of garbage.entries()) ids.push(await plain.enqueue('victim', i, { queue: q, meta: { [TRACE_CONTEXT_META_KEY]: g } }));
      const w = startWorker(traced, { queues: { [q]: { concurrency: 4 } } });
      const jobs = await Promise.all(ids.map((id) => traced.waitForJob(id, { timeout: 20_000 })));
      await w.stop();
      for (const [i, j] of jobs.entries()) {
        assert.equal(j.status, 'completed', `garbage #${i}: ${JSON.stringify(garbage[i]).slice(0, 80)}`);
        assert.equal(j.result, i);
        const [run, ...more] = runsOf(j.id);
        assert.ok(run && more.length === 0, `one run span for garbage #${i}`);
        assert.equal(run.status.code, SpanStatusCode.UNSET);
      }
      // A well-formed traceparent (#8, #9) is honoured: the run continues that trace.
      for (const i of [8, 9]) {
        const run = runsOf(ids[i]!)[0]!;
        assert.equal(run.traceId, '0af7651916cd43dd8448eb211c80319c');
        assert.equal(run.parentSpanId, 'b7ad6b7169203331');
      }
      for (const i of [0, 1, 2, 3, 4, 5, 6, 7]) assert.equal(runsOf(ids[i]!)[0]!.parentSpanId, undefined, `garbage #${i}: a root run span`);
    });

    it('a user meta holding sdj.trace is replaced by the producer span’s context', async () => {
      const q = uniqueName('otel-adv');
      const queue = new Queue(ts.storage);
      instrument(queue, { tracerProvider });
      const forged = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
      const id = await queue.enqueue('x', null, { queue: q, meta: { [TRACE_CONTEXT_META_KEY]: forged, keep: 'me' } });
      const job = await queue.getJob(id);
      const producer = spans().find((s) => s.kind === SpanKind.PRODUCER && s.attributes['messaging.message.id'] === id)!;
      assert.deepEqual(job?.meta, { keep: 'me', [TRACE_CONTEXT_META_KEY]: { traceparent: `00-${producer.traceId}-${producer.spanId}-01` } });
    });

    it('meta that fits only without the trace context is enqueued without it; meta too large anyway is still refused', async () => {
      const q = uniqueName('otel-adv');
      const queue = new Queue(ts.storage, { maxPayloadBytes: 1000 });
      instrument(queue, { tracerProvider });
      const meta = { pad: 'p'.repeat(1000 - 12) }; // {"pad":"…"} is exactly 1000 bytes
      const id = await queue.enqueue('x', null, { queue: q, meta });
      const job = await queue.getJob(id);
      assert.deepEqual(job?.meta, meta, 'stored without the trace context');
      const producer = spans().find((s) => s.kind === SpanKind.PRODUCER && s.attributes['messaging.message.id'] === id);
      assert.ok(producer, 'the producer span is still recorded');
      await assert.rejects(queue.enqueue('x', null, { queue: q, meta: { pad: 'p'.repeat(1000) } }), PayloadTooLargeError);
      const [a, b] = await queue.enqueueBatch([
        { type: 'x', args: 1, options: { queue: q, meta } },
        { type: 'x', args: 2, options: { queue: q } },
      ]);
      assert.deepEqual((await queue.getJob(a!))?.meta, meta);
      assert.ok((await queue.getJob(b!))?.meta[TRACE_CONTEXT_META_KEY], 'a small item keeps its context');
    });

    it('a suspended run ends its span unerrored and marked; a retry is a second run span in the same trace', async () => {
      const q = uniqueName('otel-adv');
      const queue = new Queue(ts.storage);
      instrument(queue, { tracerProvider });
      let attempts = 0;
      queue.register('napper', async (_: null, ctx) => {
        await ctx.sleep(1);
        if (++attempts === 1) throw new Error('first attempt fails after its sleep');
        return 'done';
      });
      const id = await queue.enqueue('napper', null, { queue: q, retries: 1 });
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } }, backoff: () => 0 });
      const job = await queue.waitForJob(id, { timeout: 20_000 });
      await w.stop();
      assert.equal(job.status, 'completed');
      const producer = spans().find((s) => s.kind === SpanKind.PRODUCER && s.attributes['messaging.message.id'] === id)!;
      const runs = runsOf(id);
      // run 1 suspends (sleep), run 2 fails after the replayed sleep, run 3 (attempt 2) completes (its sleep is replayed).
      assert.ok(runs.length >= 3, `at least 3 run spans, got ${runs.length}`);
      for (const r of runs) {
        assert.equal(r.traceId, producer.traceId);
        assert.equal(r.parentSpanId, producer.spanId);
      }
      const suspended = runs.filter((r) => r.attributes['sdj.run.suspended'] === 'sleep');
      assert.ok(suspended.length >= 1);
      for (const r of suspended) assert.equal(r.status.code, SpanStatusCode.UNSET, 'a suspension is no error');
      const failed = runs.filter((r) => r.status.code === SpanStatusCode.ERROR);
      assert.equal(failed.length, 1);
      assert.equal(failed[0]!.status.message, 'first attempt fails after its sleep');
      assert.deepEqual(new Set(runs.map((r) => r.attributes['sdj.job.attempt'])), new Set([1, 2]));
    });

    it('instrument() after a worker started applies to its next runs', async () => {
      const q = uniqueName('otel-adv');
      const queue = new Queue(ts.storage);
      queue.register('late', () => 'ok');
      const w = startWorker(queue, { queues: { [q]: { concurrency: 1 } } });
      const before = await queue.enqueue('late', null, { queue: q });
      await queue.waitForJob(before, { timeout: 10_000 });
      instrument(queue, { tracerProvider });
      const afterId = await queue.enqueue('late', null, { queue: q });
      await queue.waitForJob(afterId, { timeout: 10_000 });
      await waitFor(() => runsOf(afterId).length === 1, { message: 'the run span of the job enqueued after instrument()' });
      await w.stop();
      assert.equal(runsOf(before).length, 0);
      assert.equal(runsOf(afterId)[0]!.parentSpanId, spans().find((s) => s.kind === SpanKind.PRODUCER)!.spanId);
    });
  });
}
