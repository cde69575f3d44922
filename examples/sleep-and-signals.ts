// Durable timers and signals: a job sleeps without holding a worker slot, then waits for an
// approval signal (with a timeout). Both survive restarts: the wake time and the deadline
// are fixed at the first execution.
import { Queue, SqliteStorage } from 'simple-durable-jobs';

const storage = new SqliteStorage(process.env.SDJ_EXAMPLE_DB ?? ':memory:');
await storage.migrate();
const queue = new Queue(storage);

queue.register('publish-article', async (article: { title: string }, ctx) => {
  console.log(`Drafted "${article.title}"; cooling off before review...`);
  await ctx.sleep(300);
  console.log('Waiting for approval...');
  const approval = await ctx.waitForSignal<{ by: string }>('approval', { timeout: 60_000 });
  if (!approval) return 'expired';
  console.log(`Approved by ${approval.by}; publishing.`);
  return `published by ${approval.by}`;
});

const id = await queue.enqueue('publish-article', { title: 'Durable jobs' });
const worker = queue.newWorker({ maintenanceInterval: 100 });
void worker.start();
await queue.signal(id, 'approval', { by: 'alice' }); // sent early: buffered until the wait
const job = await queue.waitForJob(id);
await worker.stop();
console.log(`job ${job.status}: ${JSON.stringify(job.result)}`);
await storage.close();
