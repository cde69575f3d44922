// What each part of the OpenTelemetry instrumentation costs a drain: one process, one SQLite
// file, N no-op jobs enqueued first (untimed, without trace context), then drained by one worker
// (50 slots) with one part switched on; prints jobs/s and the process's CPU µs per job. Run each
// variant several times and compare medians (a 2-core machine spreads ±10 %):
//
//   npm run build && for v in base als mw hooks context span-noop span metrics traces all sampled; do
//     node bench/otel-parts.mjs $v; done
//
// Variants: base (nothing); als (the AsyncLocalStorage context manager only); mw (one no-op run
// middleware); context (a middleware making a context active around each run, as tracing must
// for the handler's own spans and enqueues); hooks (no-op onJobStart/onJobComplete hooks: the events they make the worker
// build); span-noop (a span per run from a provider without processor, in a middleware); span
// (the same with a BatchSpanProcessor, as a service exports); metrics (instrumentMetrics);
// traces (instrumentTraces); all (both); sampled (both, the root sampler keeping 1 trace in 10).
// Every variant but base, mw and hooks enables the context manager, as an OpenTelemetry Node
// setup does. The spans and metrics are exported to exporters that discard them.
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { Queue, SqliteStorage } from '../dist/index.js';
import { instrumentMetrics } from '../dist/otel/metrics.js';
import { instrumentTraces } from '../dist/otel/traces.js';

const VARIANTS = ['base', 'als', 'mw', 'hooks', 'context', 'span-noop', 'span', 'metrics', 'traces', 'all', 'sampled'];
const variant = process.argv[2] ?? 'base';
const N = Number(process.argv[3] ?? 20000);
if (!VARIANTS.includes(variant)) throw new Error(`unknown variant ${variant} (one of ${VARIANTS.join(', ')})`);

if (!['base', 'mw', 'hooks'].includes(variant)) {
  const manager = new AsyncLocalStorageContextManager();
  manager.enable();
  context.setGlobalContextManager(manager);
}
const file = join(tmpdir(), `sdj-otel-parts-${process.pid}.db`);
const storage = new SqliteStorage(file);
await storage.migrate();
const queue = new Queue(storage);
let done = 0;
let allDone;
const finished = new Promise((resolve) => (allDone = resolve));
queue.register('noop', async () => {});
queue.onJobComplete(() => {
  if (++done === N) allDone();
});

const discardSpans = { export: (spans, cb) => cb({ code: 0 }), shutdown: async () => {} };
const sampler = variant === 'sampled' ? { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.1) }) } : {};
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discardSpans)], ...sampler });
const discardMetrics = { export: (m, cb) => cb({ code: 0 }), shutdown: async () => {}, forceFlush: async () => {}, selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE };
const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: discardMetrics, exportIntervalMillis: 1000 })] });

for (let i = 0; i < N; i += 1000) await queue.enqueueBatch(Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ type: 'noop', args: { i: i + j } })));

/** A middleware that wraps each run in a span of `tracer`. */
const spanEach = (tracer) => (job, next) => {
  const span = tracer.startSpan('process');
  return next().finally(() => span.end());
};
if (variant === 'mw') queue.use((job, next) => next());
if (variant === 'context') {
  // A context holding a span context (no span made) active around each run, as tracing needs.
  const active = trace.setSpan(ROOT_CONTEXT, trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 }));
  queue.use((job, next) => context.with(active, next));
}
if (variant === 'hooks') {
  queue.onJobStart(() => {});
  queue.onJobComplete(() => {});
}
if (variant === 'span-noop') queue.use(spanEach(new BasicTracerProvider().getTracer('parts')));
if (variant === 'span') queue.use(spanEach(tracerProvider.getTracer('parts')));
if (['traces', 'all', 'sampled'].includes(variant)) instrumentTraces(queue, tracerProvider);
if (['metrics', 'all', 'sampled'].includes(variant)) instrumentMetrics(queue, meterProvider);

const worker = queue.newWorker({ queues: { default: { concurrency: 50 } }, handleSignals: false });
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const running = worker.start();
await finished;
const cpu = process.cpuUsage(cpu0);
const ms = performance.now() - t0;
await worker.stop();
await running;
await storage.close();
await tracerProvider.shutdown();
await meterProvider.shutdown();
for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
console.log(`${variant.padEnd(9)} jobs/s ${String(Math.round((N / ms) * 1000)).padStart(6)}  cpu µs/job ${((cpu.user + cpu.system) / N).toFixed(1)}`);
