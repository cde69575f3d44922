// Error handling: noRetry fails at once, retryAfter waits as told, plain errors back off and retry.
import { Queue, SqliteStorage, noRetry, retryAfter } from 'simple-durable-jobs';

const storage = new SqliteStorage(process.env.SDJ_EXAMPLE_DB ?? ':memory:');
await storage.migrate();
const queue = new Queue(storage);

let flakyCalls = 0;
let limitedCalls = 0;
queue.register('api-call', async (endpoint: string) => {
  if (endpoint === '/invalid') throw noRetry(new Error('invalid endpoint')); // permanent
  if (endpoint === '/rate-limited' && limitedCalls++ === 0) throw retryAfter(500, new Error('rate limited')); // the seed waits 5 min
  if (endpoint === '/flaky' && flakyCalls++ < 2) throw new Error('temporary network error'); // backoff + jitter
  return `${endpoint} ok`;
});
queue.onRetry((job, err) => console.log(`[RETRY] ${job.args} attempt ${job.attempt}: ${err.message}`));
queue.onJobFail((job, err) => console.log(`[FAIL] ${job.args}: ${err.message}`));
queue.onJobComplete((job) => console.log(`[DONE] ${job.args} after ${job.attempt} attempt(s)`));

const ids = await Promise.all(['/invalid', '/rate-limited', '/flaky'].map((e) => queue.enqueue('api-call', e, { retries: 3 })));
// A short backoff keeps the example quick; the default starts at about one second.
const worker = queue.newWorker({ backoff: (attempt) => 100 * 2 ** attempt });
void worker.start();
const jobs = await Promise.all(ids.map((id) => queue.waitForJob(id)));
await worker.stop();
for (const job of jobs) console.log(`${job.args}: ${job.status}${job.lastError ? ` (last error: ${job.lastError})` : ''}`);
await storage.close();
