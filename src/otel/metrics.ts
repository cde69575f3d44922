/**
 * OpenTelemetry metrics of a `Queue`: job counters and duration histograms fed by the queue's
 * hooks, and queue gauges read from the database at a bounded rate. Names, units and
 * attributes are listed in docs/observability.md ("Metrics").
 * @module
 */
import { ValueType, type Attributes, type BatchObservableCallback, type MeterProvider } from '@opentelemetry/api';
import { InvalidArgumentError, type Job, type Logger, type Queue } from '../index.js';
import { DepthReader } from './depth-reader.js';

/** The name of the meter (instrumentation scope) the instruments belong to. */
export const METER_NAME = 'simple-durable-jobs';

/** The metric names, as OpenTelemetry instruments (Prometheus renders dots as `_`, adds `_total` to counters). */
export const METRIC_NAMES = Object.freeze({
  /** Counter, `{job}`: runs started (every attempt, and every resume after a suspension). */
  started: 'sdj.jobs.started',
  /** Counter, `{job}`: jobs completed. */
  completed: 'sdj.jobs.completed',
  /** Counter, `{job}`: jobs failed terminally (retries spent, `noRetry`, unknown type). */
  failed: 'sdj.jobs.failed',
  /** Counter, `{job}`: attempts that failed and were scheduled to run again. */
  retried: 'sdj.jobs.retried',
  /** Histogram, `s`: a run's duration, from its start to its outcome. */
  runDuration: 'sdj.job.run.duration',
  /** Histogram, `s`: how long a run waited to start after it was due (its run time). */
  waitDuration: 'sdj.job.wait.duration',
  /** Gauge, `{job}`: jobs per queue and state (`pending`, `running`, `waiting`). */
  queueDepth: 'sdj.queue.depth',
  /** Gauge, `s`: age of the oldest due pending job per queue (0 when none is due). */
  oldestPendingAge: 'sdj.queue.oldest_pending.age',
} as const);

/** The attribute keys the instruments use. */
export const METRIC_ATTRIBUTES = Object.freeze({
  /** The job's queue (every instrument): the messaging conventions' destination, as on the spans. */
  queue: 'messaging.destination.name',
  /** The job's type, its handler name (counters and histograms). */
  type: 'sdj.job.type',
  /** How the run ended: `completed`, `failed` or `retried` (run duration only). */
  outcome: 'sdj.job.outcome',
  /** `pending`, `running` or `waiting` (queue depth only). */
  state: 'sdj.job.state',
} as const);

/** Bucket boundaries (seconds) of both histograms: sub-second jobs up to hour-long ones. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 120, 300, 600, 1800, 3600,
]);

/** Options of {@link instrumentMetrics}. */
export interface InstrumentMetricsOptions {
  /**
   * The least time, in ms, between two database reads behind the queue gauges: a collection
   * (a Prometheus scrape, a periodic export) reads only when the last read started at least this
   * long ago, else it reports the values last read. An integer from 0 to 2147483647.
   * @default 15000
   */
  gaugeInterval?: number;
  /**
   * Report the queue gauges (`sdj.queue.depth`, `sdj.queue.oldest_pending.age`). They describe the
   * whole database, so every instrumented process reports the same values: in a fleet, turn them
   * on in one process, or aggregate them with `max`, not `sum`.
   * @default true
   */
  gauges?: boolean;
  /**
   * How long, in ms, a collection waits for the gauges' database read before it reports the
   * values last read (the read goes on, and no other starts until it ends): a database that
   * hangs must not hang a Prometheus scrape, which the SDK collects without a timeout. An
   * integer from 1 to 2147483647.
   * @default 5000
   */
  gaugeReadTimeout?: number;
  /** Where a failing gauge read is reported (once per run of failures). @default OpenTelemetry's `diag` logger */
  logger?: Logger;
}

const DEFAULT_GAUGE_INTERVAL = 15_000;
const DEFAULT_GAUGE_READ_TIMEOUT = 5_000;
const MAX_INTERVAL = 2_147_483_647;

/**
 * Records the metrics of a queue's jobs on `meterProvider` (see docs/observability.md,
 * "Metrics"): counters of runs started, jobs completed, jobs failed and attempts retried;
 * histograms of run duration and wait-to-start, in seconds; gauges of queue depth and oldest
 * pending age read from the database at most once per `gaugeInterval`. Counters and histograms
 * see the runs of this process's workers of this queue. Returns a function that removes the
 * instrumentation; without it the queue's hot path is untouched.
 * @example
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
 * const uninstall = instrumentMetrics(queue, new MeterProvider({ readers: [new PrometheusExporter({ port: 9464 })] }));
 * @throws InvalidArgumentError on an invalid `gaugeInterval`, `gaugeReadTimeout` or `logger`
 */
export function instrumentMetrics(queue: Queue<never>, meterProvider: MeterProvider, options: InstrumentMetricsOptions = {}): () => void {
  const interval = checkMs('gaugeInterval', options.gaugeInterval, DEFAULT_GAUGE_INTERVAL, 0);
  const readTimeout = checkMs('gaugeReadTimeout', options.gaugeReadTimeout, DEFAULT_GAUGE_READ_TIMEOUT, 1);
  if (options.logger !== undefined && (options.logger === null || typeof options.logger.warn !== 'function')) {
    throw new InvalidArgumentError('logger must have a warn function');
  }
  const meter = meterProvider.getMeter(METER_NAME);
  // The four counters are observed from tallies kept here (an increment per job), not added to
  // the SDK per job: each SDK add hashes its attribute set, which costs more than the rest of
  // the counting. The values are the same monotonic sums at every collection.
  const counter = (name: string, description: string) => meter.createObservableCounter(name, { description, unit: '{job}', valueType: ValueType.INT });
  const started = counter(METRIC_NAMES.started, 'Job runs started: every attempt, and every resume after a suspension');
  const completed = counter(METRIC_NAMES.completed, 'Jobs completed');
  const failed = counter(METRIC_NAMES.failed, 'Jobs failed terminally');
  const retried = counter(METRIC_NAMES.retried, 'Job attempts failed and scheduled to run again');
  const advice = { explicitBucketBoundaries: [...DURATION_BUCKETS] };
  const runDuration = meter.createHistogram(METRIC_NAMES.runDuration, { description: 'Duration of a job run, from its start to its outcome', unit: 's', advice });
  const waitDuration = meter.createHistogram(METRIC_NAMES.waitDuration, { description: 'Time a job run waited to start after it was due', unit: 's', advice });
  const attrs = new AttributeCache();
  const observeCounts: BatchObservableCallback = (result) => {
    for (const e of attrs.entries()) {
      if (e.started > 0) result.observe(started, e.started, e.base);
      if (e.completed > 0) result.observe(completed, e.completed, e.base);
      if (e.failed > 0) result.observe(failed, e.failed, e.base);
      if (e.retried > 0) result.observe(retried, e.retried, e.base);
    }
  };
  meter.addBatchObservableCallback(observeCounts, [started, completed, failed, retried]);

  const removers = [
    queue.onJobStart((job) => {
      const e = attrs.entry(job.queue, job.type);
      e.started++;
      if (job.startedAt) waitDuration.record(seconds(job.startedAt.getTime() - job.runAt.getTime()), e.base);
    }),
    queue.onJobComplete((job) => {
      attrs.entry(job.queue, job.type).completed++;
      recordRun(job, 'completed', job.completedAt);
    }),
    queue.onJobFail((job) => {
      attrs.entry(job.queue, job.type).failed++;
      recordRun(job, 'failed', job.completedAt);
    }),
    queue.onRetry((job) => {
      attrs.entry(job.queue, job.type).retried++;
      // A retried run has no stored end time in its hook: its end is this host's clock.
      recordRun(job, 'retried', new Date());
    }),
    countReclaims(queue, (jobQueue, type, status) => {
      if (status === 'failed') attrs.entry(jobQueue, type).failed++;
      else if (status === 'pending') attrs.entry(jobQueue, type).retried++;
    }),
    () => meter.removeBatchObservableCallback(observeCounts, [started, completed, failed, retried]),
  ];
  function recordRun(job: Job, outcome: Outcome, end: Date | undefined): void {
    // Both times are the stored ones (the database clock) for completed and failed runs.
    if (job.startedAt && end) runDuration.record(seconds(end.getTime() - job.startedAt.getTime()), attrs.ofRun(job.queue, job.type, outcome));
  }

  let removeGauges = (): void => {};
  if (options.gauges !== false) removeGauges = observeQueues(queue, meterProvider, interval, readTimeout, options.logger);
  let installed = true;
  return () => {
    if (!installed) return;
    installed = false;
    for (const remove of removers) remove();
    removeGauges();
  };
}

type Outcome = 'completed' | 'failed' | 'retried';

/**
 * Counts the jobs the lease reaper took back from a worker that stopped heartbeating (a crash, a
 * kill): a job with attempts left is a retry, one without a terminal failure. They have no hook,
 * only the `job.reclaimed` event. Returns the remover.
 */
function countReclaims(queue: Queue<never>, count: (queue: string, type: string, status: string) => void): () => void {
  // A hook, not an event stream: a subscriber would make every worker build every event.
  return queue.onReclaim((e) => count(e.queue, e.jobType, e.status));
}

/** Registers the two queue gauges; returns their remover. */
function observeQueues(queue: Queue<never>, meterProvider: MeterProvider, intervalMs: number, readTimeoutMs: number, logger: Logger | undefined): () => void {
  const meter = meterProvider.getMeter(METER_NAME);
  const depth = meter.createObservableGauge(METRIC_NAMES.queueDepth, { description: 'Jobs per queue and state (pending, running, waiting)', unit: '{job}', valueType: ValueType.INT });
  const age = meter.createObservableGauge(METRIC_NAMES.oldestPendingAge, { description: 'Age of the oldest due pending job per queue (0 when none is due)', unit: 's' });
  const reader = new DepthReader(queue, intervalMs, logger, readTimeoutMs);
  const callback: BatchObservableCallback = async (result) => {
    for (const q of (await reader.current()).values()) {
      const { queue: qk, state } = METRIC_ATTRIBUTES;
      result.observe(depth, q.pending, { [qk]: q.name, [state]: 'pending' });
      result.observe(depth, q.running, { [qk]: q.name, [state]: 'running' });
      result.observe(depth, q.waiting, { [qk]: q.name, [state]: 'waiting' });
      result.observe(age, q.oldestPendingAgeMs / 1000, { [qk]: q.name });
    }
  };
  meter.addBatchObservableCallback(callback, [depth, age]);
  return () => meter.removeBatchObservableCallback(callback, [depth, age]);
}

/**
 * Per (queue, type): the frozen attribute sets (the run-duration ones per outcome too) and the
 * tallies the counters report, looked up through nested maps (no key string built): no
 * allocation per job.
 */
class AttributeCache {
  readonly #byQueue = new Map<string, Map<string, TypeEntry>>();

  ofRun(queue: string, type: string, outcome: Outcome): Attributes {
    const e = this.entry(queue, type);
    return (e.byOutcome[outcome] ??= Object.freeze({ ...e.base, [METRIC_ATTRIBUTES.outcome]: outcome }));
  }

  /** Every (queue, type) seen so far. */
  *entries(): IterableIterator<TypeEntry> {
    for (const byType of this.#byQueue.values()) yield* byType.values();
  }

  entry(queue: string, type: string): TypeEntry {
    let byType = this.#byQueue.get(queue);
    if (byType === undefined) this.#byQueue.set(queue, (byType = new Map()));
    let e = byType.get(type);
    if (e === undefined) {
      e = { base: Object.freeze({ [METRIC_ATTRIBUTES.queue]: queue, [METRIC_ATTRIBUTES.type]: type }), byOutcome: {}, started: 0, completed: 0, failed: 0, retried: 0 };
      byType.set(type, e);
    }
    return e;
  }
}

interface TypeEntry {
  readonly base: Attributes;
  readonly byOutcome: { completed?: Attributes; failed?: Attributes; retried?: Attributes };
  started: number;
  completed: number;
  failed: number;
  retried: number;
}

const seconds = (ms: number): number => Math.max(0, ms) / 1000;

function checkMs(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_INTERVAL) {
    throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${MAX_INTERVAL} (ms), got ${String(value)}`);
  }
  return value;
}
