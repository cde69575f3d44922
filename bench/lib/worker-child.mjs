// The worker process of a shape: loads one target, builds its worker, and answers
// the driver over IPC. Messages in: init, go, counters, stop. Out: ready, started,
// latency, handled, counters, stopped, error. Counters: PostgreSQL round trips (in all and
// per storage operation) and storage calls per method, for targets that count them.
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

const hooks = {
  concurrency: undefined,
  /** Storage calls by method name, for targets that count them (see countingStorage). */
  calls: {},
  onJob(args) {
    handled++;
    if (args && args.t0 !== undefined) send({ ev: 'latency', ms: nowMs() - Number(args.t0) });
    if (handled === expect) send({ ev: 'handled', at: nowMs(), handled });
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
      handled = 0;
      counter?.reset();
      for (const k of Object.keys(hooks.calls)) delete hooks.calls[k];
      await worker.start();
      send({ ev: 'started', at: nowMs() });
    } else if (msg.cmd === 'counters') {
      send({ ev: 'counters', roundTrips: counter?.get(), roundTripsByOp: counter?.byOp(), calls: { ...hooks.calls }, handled, peakRssMb: rss.peakMb() });
    } else if (msg.cmd === 'stop') {
      await worker.stop();
      send({ ev: 'stopped' });
      setTimeout(() => process.exit(0), 20);
    }
  } catch (err) {
    fail(err);
  }
});
