// The worker process of a shape: loads one target, builds its worker, and answers
// the driver over IPC. Messages in: init, go, expect, counters, stop. Out: ready, started, expecting, completed,
// latency, handled, counters, stopped, error. Counters: PostgreSQL round trips (in all and
// per storage operation) and storage calls per method, for targets that count them; `flow`:
// the worker's own figures of the flow-control shapes (ours, `flowStats()`), if any; `otel`: the
// spans and metrics drain-otel's SDK exported (ours, `otelStats()`), if any.
import { installPgCounter } from './roundtrips.mjs';
import { startRssSampler } from './rss.mjs';
import { nowMs } from './stats.mjs';

const send = (msg) => process.send?.(msg);
const fail = (err) => {
  send({ ev: 'error', message: err?.message ?? String(err), stack: err?.stack });
  setTimeout(() => process.exit(1), 50);
};
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
process.on('disconnect', () => process.exit(0)); // the driver went away: never linger

const rss = startRssSampler();
let counter;
let worker;
let expect = Infinity;
let handled = 0;
let done = 0;
let stepMs = [];
let cpuFrom = process.cpuUsage();

/** Zero every counter (round trips, storage calls, handler starts, step latencies, CPU time). */
function resetCounters() {
  handled = 0;
  done = 0;
  stepMs = [];
  cpuFrom = process.cpuUsage();
  counter?.reset();
  for (const k of Object.keys(hooks.calls)) delete hooks.calls[k];
  for (const k of Object.keys(hooks.claims)) delete hooks.claims[k];
}

const hooks = {
  concurrency: undefined,
  /** Storage calls by method name, for targets that count them (see countingStorage). */
  calls: {},
  /** Jobs returned by claim calls, and claim calls that returned none, by method name (see countingStorage). */
  claims: {},
  onJob(args) {
    handled++;
    if (args && args.t0 !== undefined) send({ ev: 'latency', ms: nowMs() - Number(args.t0) });
    if (handled === expect) send({ ev: 'handled', at: nowMs(), handled });
  },
  /** A job's outcome is durably stored (targets with `durableCompletions`). */
  onDone() {
    done++;
    if (done === expect) send({ ev: 'completed', at: nowMs(), done });
  },
  /** One workflow step took `ms` (step call to its checkpointed result). */
  onStep(ms) {
    stepMs.push(ms);
  },
};

process.on('message', async (msg) => {
  try {
    if (msg.cmd === 'init') {
      const target = (await import(msg.targetUrl)).default;
      if (target.backend === 'postgres') counter = installPgCounter();
      hooks.concurrency = msg.concurrency;
      worker = await target.worker(msg.config, hooks);
      send({ ev: 'ready' });
    } else if (msg.cmd === 'go') {
      expect = msg.expect ?? Infinity;
      resetCounters();
      await worker.start();
      send({ ev: 'started', at: nowMs() });
    } else if (msg.cmd === 'expect') {
      // A new timed phase on the running worker (after a warm-up).
      expect = msg.expect ?? Infinity;
      resetCounters();
      send({ ev: 'expecting' });
    } else if (msg.cmd === 'counters') {
      const cpu = process.cpuUsage(cpuFrom);
      const roundTrips = counter?.get();
      const roundTripsByOp = counter?.byOp();
      const calls = { ...hooks.calls };
      // drain-otel: the SDK's last spans and metrics flushed after every other figure is read.
      const otel = worker.otelStats ? await worker.otelStats() : undefined;
      send({ ev: 'counters', cpuUs: cpu.user + cpu.system, roundTrips, roundTripsByOp, calls, claims: structuredClone(hooks.claims), handled, done, stepMs, peakRssMb: rss.peakMb(), flow: worker.flowStats?.(), otel, passthrough: worker.passthroughStats?.() });
    } else if (msg.cmd === 'stop') {
      await worker.stop();
      send({ ev: 'stopped' });
      setTimeout(() => process.exit(0), 20);
    }
  } catch (err) {
    fail(err);
  }
});
