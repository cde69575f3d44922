// Priority queues: higher priority runs first; equal priorities run first-in first-out.
import { Queue, SqliteStorage } from 'simple-durable-jobs';

const storage = new SqliteStorage(process.env.SDJ_EXAMPLE_DB ?? ':memory:');
await storage.migrate();
const queue = new Queue(storage);

queue.register('task', async (name: string) => {
  console.log(`Processing: ${name}`);
});

const ids = [
  await queue.enqueue('task', 'low-priority-1', { priority: 1 }),
  await queue.enqueue('task', 'low-priority-2', { priority: 1 }),
  await queue.enqueue('task', 'URGENT', { priority: 100 }),
  await queue.enqueue('task', 'medium', { priority: 50 }),
  await queue.enqueue('task', 'CRITICAL', { priority: 1000 }),
];

// A single slot shows the order: CRITICAL, URGENT, medium, low-priority-1, low-priority-2.
const worker = queue.newWorker({ queues: { default: { concurrency: 1 } } });
void worker.start();
await Promise.all(ids.map((id) => queue.waitForJob(id)));
await worker.stop();
await storage.close();
