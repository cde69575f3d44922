// The OpenTelemetry SDK of drain-otel (lib/otel.mjs), set up in each instrumented process as a
// production service would: a BasicTracerProvider whose BatchSpanProcessor (default settings)
// feeds an exporter that counts and discards spans (no network), AsyncLocalStorageContextManager
// as the global context manager, and a MeterProvider read by a PeriodicExportingMetricReader every
// OTEL_METRIC_INTERVAL_MS into an exporter that keeps only the job counters' last values. The SDK
// packages are devDependencies of the repository root (resolved from bench/ by walking up) and are
// imported only when an instrumented Queue is built, so no other shape or target loads them.

/** How often the metric reader collects and exports (a production default is 60 s: 1 s makes a drain see several collections). */
export const OTEL_METRIC_INTERVAL_MS = 1000;

/** `ExportResultCode.SUCCESS` of @opentelemetry/core (not a direct dependency of the repository). */
const SUCCESS = 0;

let sdk;
/** Loads the SDK once per process and installs the global context manager. */
async function loadSdk() {
  if (sdk) return sdk;
  let api, traceBase, metricsSdk, asyncHooks;
  try {
    [api, traceBase, metricsSdk, asyncHooks] = await Promise.all([
      import('@opentelemetry/api'),
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/sdk-metrics'),
      import('@opentelemetry/context-async-hooks'),
    ]);
  } catch (err) {
    throw new Error(`drain-otel needs the OpenTelemetry SDK (@opentelemetry/api, sdk-trace-base, sdk-metrics, context-async-hooks: devDependencies of the repository root; run \`npm ci\` there): ${err.message}`);
  }
  const manager = new asyncHooks.AsyncLocalStorageContextManager().enable();
  if (!api.context.setGlobalContextManager(manager)) throw new Error('drain-otel: a global OpenTelemetry context manager was already registered in this process');
  sdk = { api, traceBase, metricsSdk };
  return sdk;
}

/** Sum of the data points of metric `name` in an export (cumulative temporality: the total so far). */
function sumOf(resourceMetrics, name) {
  let found = false;
  let sum = 0;
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) {
      if (m.descriptor.name !== name) continue;
      found = true;
      for (const dp of m.dataPoints) sum += Number(dp.value);
    }
  }
  return found ? sum : undefined;
}

/**
 * One process's providers (pass them to `instrument(queue, { tracerProvider, meterProvider })`).
 * `stats()` flushes both and returns the spans exported so far by kind (`send`, `process`, other),
 * the `process` spans whose parent is a remote context (the producer's, carried in the job's
 * meta), the metric exports and the last exported totals of the job counters. `shutdown()` ends
 * both providers (their timers stop).
 */
export async function otelProviders() {
  const { traceBase, metricsSdk } = await loadSdk();
  const spans = { send: 0, process: 0, other: 0, processWithRemoteParent: 0 };
  const spanExporter = {
    export(batch, done) {
      for (const s of batch) {
        if (s.name.startsWith('send ')) spans.send++;
        else if (s.name.startsWith('process ')) {
          spans.process++;
          if (s.parentSpanContext?.isRemote) spans.processWithRemoteParent++;
        } else spans.other++;
      }
      done({ code: SUCCESS });
    },
    shutdown: async () => {},
    forceFlush: async () => {},
  };
  const metrics = { exports: 0, started: undefined, completed: undefined };
  const metricExporter = {
    export(resourceMetrics, done) {
      metrics.exports++;
      metrics.started = sumOf(resourceMetrics, 'sdj.jobs.started') ?? metrics.started;
      metrics.completed = sumOf(resourceMetrics, 'sdj.jobs.completed') ?? metrics.completed;
      done({ code: SUCCESS });
    },
    shutdown: async () => {},
    forceFlush: async () => {},
  };
  const tracerProvider = new traceBase.BasicTracerProvider({ spanProcessors: [new traceBase.BatchSpanProcessor(spanExporter)] });
  const reader = new metricsSdk.PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: OTEL_METRIC_INTERVAL_MS, exportTimeoutMillis: OTEL_METRIC_INTERVAL_MS });
  const meterProvider = new metricsSdk.MeterProvider({ readers: [reader] });
  let down = false;
  return {
    tracerProvider,
    meterProvider,
    async stats() {
      if (!down) await Promise.all([tracerProvider.forceFlush(), meterProvider.forceFlush()]);
      return { spans: { ...spans }, metrics: { ...metrics } };
    },
    async shutdown() {
      if (down) return;
      down = true;
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}
