// Distributed workers: run several copies of this program against one PostgreSQL database.
// Each claims jobs with FOR UPDATE SKIP LOCKED; a job is never run by two live workers.
//   DATABASE_URL=postgres://localhost/jobs node --import tsx examples/distributed.ts --id worker-1 &
//   ... --id worker-2 & ... --id worker-3 &
// With --enqueue N the program first enqueues N tasks; with --exit-when-idle it stops once
// no pending or running job is left (how the test suite runs it).
import { parseArgs } from 'node:util';
import { PostgresStorage, Queue } from 'simple-durable-jobs';

const { values } = parseArgs({
  options: { id: { type: 'string', default: 'worker-1' }, enqueue: { type: 'string' }, 'exit-when-idle': { type: 'boolean', default: false } },
});
const workerId = values.id;
const storage = new PostgresStorage(process.env.DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test', { schema: process.env.SDJ_SCHEMA ?? 'sdj' });
await storage.migrate();
const queue = new Queue(storage);

queue.register('task', async (id: number) => {
  console.log(`[${workerId}] Processing task ${id}`);
});
if (values.enqueue) {
  const n = Number(values.enqueue);
  await queue.enqueueBatch(Array.from({ length: n }, (_, i) => ({ type: 'task', args: i })));
}

const worker = queue.newWorker({ name: workerId, queues: { default: { concurrency: 5 } } });
console.log(`[${workerId}] Starting...`);
const running = worker.start();
if (values['exit-when-idle']) {
  for (;;) {
    const s = await queue.stats();
    if (s.pending + s.running === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await worker.stop();
}
await running; // until SIGINT/SIGTERM otherwise
await storage.close();
