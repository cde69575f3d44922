// The worker process of retention-steady (lib/retention.mjs): one Queue with the run's
// retention (scaled-down ages, or `false`) and one worker that prunes every `pruneInterval`,
// running the job mix the driver enqueues: no-op jobs, planned failures, retried jobs,
// checkpointed workflows, small fan-outs, durable sleeps and signal waits.
// Messages in: init, counters, stop. Out: ready, counters, stopped, error.
import { loadLibrary } from '../targets/sdj-common.mjs';
import { openStorage, registerMix } from './retention-mix.mjs';

const send = (msg) => process.send?.(msg);
const fail = (err) => {
  send({ ev: 'error', message: err?.message ?? String(err), stack: err?.stack });
  setTimeout(() => process.exit(1), 50);
};
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
process.on('disconnect', () => process.exit(0)); // the driver went away: never linger

let stop;
const counts = { completed: 0, failed: 0, pruned: 0, pruneBatches: 0 };

process.on('message', async (msg) => {
  try {
    if (msg.cmd === 'init') {
      const lib = await loadLibrary();
      const storage = openStorage(lib, msg.config);
      const queue = new lib.Queue(storage, { retention: msg.retention });
      registerMix(lib, queue);
      queue.onJobComplete(() => counts.completed++);
      queue.onJobFail(() => counts.failed++);
      const events = queue.events();
      const reading = (async () => {
        for await (const ev of events) {
          if (ev.type === 'jobs.pruned') {
            counts.pruned += ev.deleted;
            counts.pruneBatches++;
          }
        }
      })();
      const worker = queue.newWorker({
        queues: { default: { concurrency: msg.concurrency } },
        pruneInterval: msg.pruneInterval,
        handleSignals: false,
      });
      const running = worker.start();
      running.catch(fail);
      stop = async () => {
        await worker.stop();
        await running;
        await events.return?.();
        await reading;
        await storage.close();
      };
      send({ ev: 'ready' });
    } else if (msg.cmd === 'counters') {
      send({ ev: 'counters', ...counts });
    } else if (msg.cmd === 'stop') {
      await stop?.();
      send({ ev: 'stopped' });
      setTimeout(() => process.exit(0), 20);
    }
  } catch (err) {
    fail(err);
  }
});
