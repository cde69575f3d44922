// Fan-out / fan-in: a parent spawns one sub-job per image, waits without holding a worker
// slot, and resumes with the results in sub-job order.
import { Queue, SqliteStorage, allSucceeded, partition, sub, values } from 'simple-durable-jobs';

interface Image {
  id: string;
  url: string;
}
interface Result {
  imageId: string;
  thumbnail: string;
}

const storage = new SqliteStorage(process.env.SDJ_EXAMPLE_DB ?? ':memory:');
await storage.migrate();
const queue = new Queue(storage);

queue.register('process-image', async (img: Image): Promise<Result> => {
  console.log(`Processing image: ${img.url}`);
  return { imageId: img.id, thumbnail: `${img.url}/thumb` };
});

queue.register('batch-process-images', async (images: Image[], ctx) => {
  const results = await ctx.fanOut<Result>(
    images.map((img) => sub('process-image', img)),
    { strategy: 'fail-fast', queue: 'batch', retries: 3 },
  );
  const thumbnails = values(results);
  const [ok, failed] = partition(results);
  console.log(`Generated ${thumbnails.length} thumbnails (${ok.length} ok, ${failed.length} failed, all ok: ${allSucceeded(results)})`);
  return thumbnails.map((t) => t.thumbnail);
});

const id = await queue.enqueue('batch-process-images', [
  { id: '1', url: 'https://example.com/image1.jpg' },
  { id: '2', url: 'https://example.com/image2.jpg' },
  { id: '3', url: 'https://example.com/image3.jpg' },
]);
const worker = queue.newWorker({ queues: { default: { concurrency: 5 }, batch: { concurrency: 10 } } });
void worker.start();
const job = await queue.waitForJob(id);
await worker.stop();
console.log(`parent ${job.status}:`, JSON.stringify(job.result));
await storage.close();
