/**
 * Traces of a queue, built on its middleware: a PRODUCER span per enqueued job (its W3C trace
 * context stored in the job's meta under {@link TRACE_CONTEXT_META_KEY}), a CONSUMER span per
 * run (a child of the stored context, in whichever process runs the job) and an INTERNAL span
 * per `ctx.call` step that runs. Names and attributes follow the OpenTelemetry messaging
 * conventions where they fit (docs/observability.md, "Traces").
 * @module
 */
import { context, createTraceState, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Context, type Span, type TracerProvider } from '@opentelemetry/api';
import { RunSuspendedError, type EnqueueMiddleware, type Job, type JsonValue, type Queue, type RunMiddleware, type StepMiddleware } from '../index.js';

/** The key of a job's meta that holds the W3C trace context of its producer span. */
export const TRACE_CONTEXT_META_KEY = 'sdj.trace';

/** The value of `messaging.system` on every span. */
export const MESSAGING_SYSTEM = 'simple-durable-jobs';

/** The W3C trace context stored with a job: `traceparent`, `tracestate`, and what the global propagator adds (`baggage`). */
export type TraceContextCarrier = Record<string, string>;

/** The attribute names the spans carry. */
export const SPAN_ATTRIBUTES = {
  /** Always {@link MESSAGING_SYSTEM}. */
  system: 'messaging.system',
  /** `send` (producer) or `process` (consumer). */
  operationName: 'messaging.operation.name',
  /** `send` (producer) or `process` (consumer). */
  operationType: 'messaging.operation.type',
  /** The job's queue. */
  destination: 'messaging.destination.name',
  /** The job's id. */
  messageId: 'messaging.message.id',
  /** The id of the worker running the job (consumer spans). */
  clientId: 'messaging.client.id',
  /** The job's type. */
  jobType: 'sdj.job.type',
  /** The job's attempt, 1 for the first (consumer spans). */
  attempt: 'sdj.job.attempt',
  /** How many times the job was claimed, this run included (consumer spans). */
  runCount: 'sdj.job.run_count',
  /** The workflow job a sub-job belongs to (producer spans of fan-out sub-jobs). */
  parentId: 'sdj.job.parent_id',
  /** What enqueued the job: `enqueue`, `batch`, `fan-out` or `schedule` (producer spans). */
  source: 'sdj.enqueue.source',
  /** Why the run suspended: `fan-out`, `sleep` or `signal` (consumer spans of runs that suspended). */
  suspended: 'sdj.run.suspended',
  /** The step's name (step spans). */
  stepName: 'sdj.step.name',
  /** The step's position among the workflow's durable operations (step spans). */
  stepIndex: 'sdj.step.index',
} as const;

const A = SPAN_ATTRIBUTES;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Adds the trace middleware to a queue. @internal */
export function instrumentTraces<Tx>(queue: Queue<Tx>, provider: TracerProvider = trace.getTracerProvider()): void {
  const tracer = provider.getTracer(MESSAGING_SYSTEM);
  const maxMetaBytes = queue.core.defaults.maxPayloadBytes;

  const produce: EnqueueMiddleware = async (insert, next) => {
    const destination = insert.options.queue ?? 'default';
    const attributes: Attributes = { [A.system]: MESSAGING_SYSTEM, [A.operationName]: 'send', [A.operationType]: 'send', [A.destination]: destination, [A.jobType]: insert.type, [A.source]: insert.source };
    if (insert.parentId !== undefined) attributes[A.parentId] = insert.parentId;
    const span = tracer.startSpan(`send ${destination}`, { kind: SpanKind.PRODUCER, attributes }, context.active());
    const ctx = trace.setSpan(context.active(), span);
    const meta = withContext(insert.meta, inject(ctx), maxMetaBytes);
    return ended(span, async () => {
      const id = await context.with(ctx, () => next({ ...insert, meta }));
      span.setAttribute(A.messageId, id);
      return id;
    });
  };

  const consume: RunMiddleware = (job, next, run) => {
    const parent = extract(job);
    const attributes: Attributes = {
      [A.system]: MESSAGING_SYSTEM,
      [A.operationName]: 'process',
      [A.operationType]: 'process',
      [A.destination]: job.queue,
      [A.messageId]: job.id,
      [A.clientId]: run.workerId,
      [A.jobType]: job.type,
      [A.attempt]: job.attempt,
      [A.runCount]: run.runCount,
    };
    const span = tracer.startSpan(`process ${job.queue}`, { kind: SpanKind.CONSUMER, attributes }, parent);
    // then() rather than an async wrapper: one promise per run on the hot path.
    return context.with(trace.setSpan(parent, span), next).then(
      (value) => {
        span.end();
        return value;
      },
      (e: unknown) => {
        failedOn(span, e);
        span.end();
        throw e;
      },
    );
  };

  const step: StepMiddleware = (s, next) => {
    const attributes: Attributes = { [A.stepName]: s.name, [A.stepIndex]: s.index, [A.messageId]: s.job.id, [A.jobType]: s.job.type };
    const span = tracer.startSpan(`step ${s.name}`, { kind: SpanKind.INTERNAL, attributes }, context.active());
    return ended(span, () => context.with(trace.setSpan(context.active(), span), next));
  };

  queue.useEnqueue(produce);
  queue.use(consume);
  queue.useStep(step);
}

/**
 * The job's meta with the trace context under {@link TRACE_CONTEXT_META_KEY} (replacing what the
 * user put there). Meta that would then exceed the queue's payload limit goes without the
 * context: tracing never makes a job un-enqueueable (its run then starts a new trace).
 */
function withContext(userMeta: Record<string, JsonValue> | undefined, carrier: TraceContextCarrier, maxBytes: number): Record<string, JsonValue> {
  const meta: Record<string, JsonValue> = { ...userMeta, [TRACE_CONTEXT_META_KEY]: carrier };
  let bytes: number;
  try {
    bytes = Buffer.byteLength(JSON.stringify(meta), 'utf8');
  } catch {
    return meta; // not JSON: enqueue rejects it with its own error
  }
  if (bytes <= maxBytes) return meta;
  delete meta[TRACE_CONTEXT_META_KEY];
  return meta;
}

/** Runs `fn`, records how it ended on `span`, and ends the span. */
async function ended<T>(span: Span, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    failedOn(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/** Records on `span` how its operation failed: a suspension as an attribute, anything else as an error. */
function failedOn(span: Span, e: unknown): void {
  if (e instanceof RunSuspendedError) {
    span.setAttribute(A.suspended, e.reason);
  } else {
    const err = e instanceof Error ? e : new Error(String(e));
    span.recordException(err);
    span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
  }
}

/** The carrier of a context: the global propagator's fields, then W3C `traceparent`/`tracestate` of its span. */
function inject(ctx: Context): TraceContextCarrier {
  const carrier: TraceContextCarrier = {};
  propagation.inject(ctx, carrier);
  const sc = trace.getSpanContext(ctx);
  if (sc !== undefined && trace.isSpanContextValid(sc)) {
    carrier['traceparent'] = `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & TraceFlags.SAMPLED).toString(16).padStart(2, '0')}`;
    const state = sc.traceState?.serialize();
    if (state) carrier['tracestate'] = state;
    else delete carrier['tracestate'];
  }
  return carrier;
}

/** The context stored with a job (from the root context: the run does not inherit the worker's). */
function extract(job: Job): Context {
  const stored = job.meta[TRACE_CONTEXT_META_KEY];
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return ROOT_CONTEXT;
  const carrier: TraceContextCarrier = {};
  for (const [k, v] of Object.entries(stored)) if (typeof v === 'string') carrier[k] = v;
  const ctx = propagation.extract(ROOT_CONTEXT, carrier);
  const m = TRACEPARENT.exec(carrier['traceparent'] ?? '');
  if (m === null) return ctx;
  const [, traceId = '', spanId = '', flags = '00'] = m;
  const tracestate = carrier['tracestate'];
  const spanContext = { traceId, spanId, traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED, isRemote: true, ...(tracestate ? { traceState: createTraceState(tracestate) } : {}) };
  return trace.isSpanContextValid(spanContext) ? trace.setSpanContext(ctx, spanContext) : ctx;
}
