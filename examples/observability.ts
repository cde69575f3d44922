// Observability: hooks for start/complete/fail/retry, and the event stream as an async iterator.
import { Queue, SqliteStorage } from 'simple-durable-jobs';

const storage = new SqliteStorage(process.env.SDJ_EXAMPLE_DB ?? ':memory:');
await storage.migrate();
const queue = new Queue(storage);

queue.onJobStart((job) => console.log(`[START] ${job.id.slice(0, 8)} (${job.type})`));
queue.onJobComplete((job) => console.log(`[DONE] ${job.id.slice(0, 8)} completed in ${job.completedAt!.getTime() - job.startedAt!.getTime()} ms`));
queue.onJobFail((job, err) => console.log(`[FAIL] ${job.id.slice(0, 8)}: ${err.message}`));
queue.onRetry((job, err) => console.log(`[RETRY] ${job.id.slice(0, 8)} attempt ${job.attempt}: ${err.message}`));

const counts: Record<string, number> = {};
const events = (async () => {
  for await (const event of queue.events()) {
    counts[event.type] = (counts[event.type] ?? 0) + 1; // send to a metrics system, a dashboard, on-call...
    if (event.type === 'job.failed') break; // leaving the loop unsubscribes
  }
})();

queue.register('work', async (n: number) => n * 2);
queue.register('doomed', async () => {
  throw new Error('always fails');
});
const ok = await queue.enqueue('work', 21);
const bad = await queue.enqueue('doomed', {}, { retries: 1 });
const worker = queue.newWorker({ backoff: () => 50 });
void worker.start();
await Promise.all([queue.waitForJob(ok), queue.waitForJob(bad)]);
await events;
await worker.stop();
console.log('events seen:', JSON.stringify(counts));
await storage.close();
