// drain-otel (ours): the drain of lib/drain.mjs with OpenTelemetry on, as a production service
// runs it: the producer's and the worker's Queue are both instrumented with `instrument(queue,
// { tracerProvider, meterProvider })` of `simple-durable-jobs/otel` (dist/otel/index.js), each
// process with its own SDK (lib/otel-sdk.mjs: BatchSpanProcessor into a counting, discarding
// exporter; AsyncLocalStorageContextManager; MeterProvider with a periodic reader). run.mjs divides
// its jobs/s by the same target's drain of the same round: the goal is at most 10 % slower.
//
// The enqueue is untimed, as in the drain, but instrumented: every job carries its producer span's
// trace context in its meta, which the worker reads back (the consumer span is its child). After
// the timed part the run fails unless the spans were really produced: a `send` span per job in the
// producer, a `process` span per job in the worker whose parent is that stored (remote) context,
// and the worker's `sdj.jobs.completed` counter at the job count. A figure of an uninstrumented
// drain can so never pass for an instrumented one.
import { enqueueAll, measureDrain } from './drain.mjs';
import { OTEL_METRIC_INTERVAL_MS } from './otel-sdk.mjs';

/** What drain-otel instruments (one line, under the table and in the report's notes). */
export const OTEL_NOTE =
  `drain-otel runs on our targets only: the drain with the producer's and the worker's \`Queue\` both instrumented by \`instrument(queue, { tracerProvider, meterProvider })\` of \`simple-durable-jobs/otel\` (traces and metrics), each process with its own SDK: \`BasicTracerProvider\` with a \`BatchSpanProcessor\` (default settings) into an exporter that counts and discards the spans (no network), \`AsyncLocalStorageContextManager\` as the global context manager, a \`MeterProvider\` with a \`PeriodicExportingMetricReader\` every ${OTEL_METRIC_INTERVAL_MS / 1000} s into a discarding exporter (the queue gauges at their default 15 s read interval). The enqueue is untimed, as in the drain; a run fails unless there is a \`send\` and a \`process\` span per job, each \`process\` span the child of the context stored with its job.`;

/** Spans the figure requires per job: a `send` (producer) and a `process` (worker) span. */
export const SPANS_PER_JOB = 2;

export function drainOtel(target, cfg, p, ctx) {
  if (!target.ours) throw new Error(`${target.name} has no OpenTelemetry instrumentation (ours only)`);
  const own = { ...cfg, otel: true };
  let producerSpans;
  async function enqueue(producer) {
    if (!producer.otelStats) throw new Error(`${target.name}'s producer is not instrumented (no otelStats)`);
    await enqueueAll(producer, p.count, p.batchSize);
    producerSpans = (await producer.otelStats()).spans;
  }
  function ready() {
    if (producerSpans.send < p.count) throw new Error(`the instrumented producer exported ${producerSpans.send} send span(s) for ${p.count} jobs: not instrumented, or spans dropped`);
  }
  function extra(c) {
    if (!c.otel) throw new Error('the worker reported no OpenTelemetry figures: its Queue is not instrumented');
    const { spans, metrics } = c.otel;
    if (spans.process < p.count) throw new Error(`the instrumented worker exported ${spans.process} process span(s) for ${p.count} jobs: not instrumented, or spans dropped`);
    if (spans.processWithRemoteParent < p.count) throw new Error(`only ${spans.processWithRemoteParent} of ${spans.process} process spans are children of the trace context stored with their job`);
    if (metrics.completed !== p.count) throw new Error(`the worker's sdj.jobs.completed counter exported ${metrics.completed} for ${p.count} jobs`);
    const total = producerSpans.send + producerSpans.process + producerSpans.other + spans.send + spans.process + spans.other;
    if (total < SPANS_PER_JOB * p.count) throw new Error(`${total} spans for ${p.count} jobs, expected at least ${SPANS_PER_JOB} per job`);
    return { spansPerJob: total / p.count, metricExports: metrics.exports };
  }
  return measureDrain(target, own, p, ctx, { enqueue, ready, extra });
}
