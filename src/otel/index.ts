/**
 * `simple-durable-jobs/otel`: OpenTelemetry instrumentation of a `Queue`. Imports only the
 * package's public API and `@opentelemetry/api` (an optional peer dependency); the core import
 * never loads it.
 * @module
 */
import { metrics, type MeterProvider, type TracerProvider } from '@opentelemetry/api';
import { InvalidStateError, type Queue } from '../index.js';
import { instrumentMetrics, type InstrumentMetricsOptions } from './metrics.js';
import { instrumentTraces } from './traces.js';

export { TRACE_CONTEXT_META_KEY, SPAN_ATTRIBUTES, MESSAGING_SYSTEM } from './traces.js';
export type { TraceContextCarrier } from './traces.js';
export { instrumentMetrics, METRIC_NAMES, METRIC_ATTRIBUTES, METER_NAME, DURATION_BUCKETS } from './metrics.js';
export type { InstrumentMetricsOptions } from './metrics.js';

/** The queues already instrumented: a second `instrument()` would record everything twice. */
const instrumented = new WeakSet<object>();

/** Options of {@link instrument}. */
export interface InstrumentOptions {
  /** Where spans go. @default the global tracer provider (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
  /** Where metrics go. @default the global meter provider (`metrics.getMeterProvider()`) */
  meterProvider?: MeterProvider;
  /** Options of the metrics (the gauges' database read interval, a logger for failed reads). */
  metrics?: InstrumentMetricsOptions;
}

/**
 * Instruments a queue: its metrics (see `instrumentMetrics`), and a producer span for every job it enqueues (its W3C trace context stored
 * in the job's meta), a consumer span for every run of its workers (a child of that context, in
 * whichever process the run happens), and a span for every `ctx.call` step run. Call it once per
 * queue, before enqueueing and before starting workers. See docs/observability.md.
 * @throws InvalidStateError when the queue is already instrumented
 * @throws InvalidArgumentError when an option is invalid (nothing is installed then)
 * @example
 * import { instrument } from 'simple-durable-jobs/otel';
 * instrument(queue); // the global OpenTelemetry providers
 */
export function instrument<Tx>(queue: Queue<Tx>, options: InstrumentOptions = {}): void {
  if (instrumented.has(queue)) throw new InvalidStateError('this queue is already instrumented: instrument() is called once per queue');
  // Metrics first: they validate their options, so a bad option installs nothing.
  instrumentMetrics(queue as Queue<never>, options.meterProvider ?? metrics.getMeterProvider(), options.metrics);
  instrumentTraces(queue, options.tracerProvider);
  instrumented.add(queue);
}
