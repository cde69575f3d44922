/**
 * Loaded into every test file's process (scripts/test.mjs passes it with `--import`): a worker
 * a test started and never stopped FAILS the file. Each `Worker.start()` is tracked until the
 * worker has stopped (its `stop()` resolved, or `start()` itself settled); when the file's tests
 * are over, workers still running are stopped (so the process can exit) and reported as a
 * failure naming each leaked worker's id and where it was started.
 */
import { after } from 'node:test';
import { Worker } from '../../src/worker/worker.js';

const running = new Map<Worker, string>();
const proto = Worker.prototype as unknown as { start: () => Promise<void>; stop: () => Promise<void> };
const start = proto.start;
const stop = proto.stop;

proto.start = function (this: Worker): Promise<void> {
  const at = new Error('started').stack?.split('\n').slice(2, 5).join('\n') ?? '';
  running.set(this, `worker ${this.id} started\n${at}`);
  const done = start.call(this);
  const forget = (): void => void running.delete(this);
  done.then(forget, forget);
  return done;
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
