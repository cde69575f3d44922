/**
 * Loaded into every test file's process (scripts/test.mjs passes it with `--import`): a worker
 * a test started and never stopped FAILS the file. Each `Worker.start()` is tracked until its
 * `stop()` resolved; when the file's tests are over, workers still running are stopped (so the
 * process can exit) and reported as a failure naming how many leaked and which queues they served.
 */
import { after } from 'node:test';
import { Worker } from '../../src/worker/worker.js';

const running = new Map<Worker, string>();
const proto = Worker.prototype as unknown as { start: () => Promise<void>; stop: () => Promise<void> };
const start = proto.start;
const stop = proto.stop;

proto.start = function (this: Worker): Promise<void> {
  running.set(this, new Error('started here').stack?.split('\n').slice(2, 5).join('\n') ?? '');
  return start.call(this);
};
proto.stop = async function (this: Worker): Promise<void> {
  await stop.call(this);
  running.delete(this);
};

after(async () => {
  if (running.size === 0) return;
  const leaked = [...running.entries()];
  await Promise.all(leaked.map(([w]) => w.stop()));
  throw new Error(`${leaked.length} worker(s) started by this file were never stopped:\n${leaked.map(([, at]) => at).join('\n--\n')}`);
});
