/**
 * `instrument()`: a queue is instrumented once (a second call throws and adds nothing), and an
 * invalid option installs nothing (no metric recorded, no span, no trace context stored).
 * @storage sqlite
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { isDurableJobsError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import { instrument, TRACE_CONTEXT_META_KEY } from '../../src/otel/index.js';
import { storageMatrix, type TestStorage } from '../helpers/storages.js';
import { collect, manualMetrics } from '../helpers/metrics-reader.js';

const [name, make] = storageMatrix().find(([n]) => n === 'sqlite')!;

describe(`instrument() (${name})`, () => {
  let ts: TestStorage;
  before(async () => {
    ts = await make('otel-instrument');
  });
  after(() => ts.cleanup());

  function providers() {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const { provider: meterProvider, reader } = manualMetrics();
    return { exporter, tracerProvider, meterProvider, reader };
  }

  it('a second call on the same queue throws INVALID_STATE and records nothing twice', async () => {
    const queue = new Queue(ts.storage);
    const p = providers();
    instrument(queue, { tracerProvider: p.tracerProvider, meterProvider: p.meterProvider, metrics: { gauges: false } });
    assert.throws(
      () => instrument(queue, { tracerProvider: p.tracerProvider, meterProvider: p.meterProvider }),
      (e: unknown) => isDurableJobsError(e, 'INVALID_STATE'),
    );
    await queue.enqueue('t', 1, { queue: 'instr-once' });
    assert.equal(p.exporter.getFinishedSpans().length, 1, 'one producer span for one enqueue');
  });

  it('an invalid metrics option throws INVALID_ARGUMENT and installs nothing', async () => {
    const queue = new Queue(ts.storage);
    const p = providers();
    assert.throws(
      () => instrument(queue, { tracerProvider: p.tracerProvider, meterProvider: p.meterProvider, metrics: { gaugeInterval: -1 } }),
      (e: unknown) => isDurableJobsError(e, 'INVALID_ARGUMENT'),
    );
    const id = await queue.enqueue('t', 1, { queue: 'instr-bad' });
    assert.equal(p.exporter.getFinishedSpans().length, 0, 'no span');
    const job = await queue.getJob(id);
    assert.equal(job?.meta?.[TRACE_CONTEXT_META_KEY], undefined, 'no trace context stored');
    const c = await collect(p.reader);
    assert.deepEqual(c.names(), [], 'no instrument recorded');
    // The queue can still be instrumented properly afterwards.
    instrument(queue, { tracerProvider: p.tracerProvider, meterProvider: p.meterProvider, metrics: { gauges: false } });
    await queue.enqueue('t', 2, { queue: 'instr-bad' });
    assert.equal(p.exporter.getFinishedSpans().length, 1);
  });
});
