// Basic job processing: register a handler, enqueue two jobs (one high priority), run a worker.
import { Queue, SqliteStorage } from 'simple-durable-jobs';

interface EmailArgs {
  to: string;
  subject: string;
}

const storage = new SqliteStorage(process.env.SDJ_EXAMPLE_DB ?? ':memory:');
await storage.migrate();
const queue = new Queue(storage);

const sendEmail = queue.register('send-email', async (args: EmailArgs) => {
  console.log(`Sending email to ${args.to}: ${args.subject}`);
});

const a = await sendEmail.enqueue({ to: 'user@example.com', subject: 'Hello' });
const b = await sendEmail.enqueue({ to: 'admin@example.com', subject: 'Report' }, { priority: 100 }); // runs first

const worker = queue.newWorker({ queues: { default: { concurrency: 1 } } });
void worker.start();
await Promise.all([queue.waitForJob(a), queue.waitForJob(b)]);
await worker.stop();
console.log('stats:', JSON.stringify(await queue.stats()));
await storage.close();
