// Scheduled jobs: every / daily / weekly / cron. Any number of workers may run the scheduler;
// each slot becomes exactly one job. (The seed checks health every minute; half a second keeps
// this example short.)
import { Queue, SqliteStorage, cron, daily, every, weekly } from 'simple-durable-jobs';

const storage = new SqliteStorage(process.env.SDJ_EXAMPLE_DB ?? ':memory:');
await storage.migrate();
const queue = new Queue(storage);

let checks = 0;
queue.register('health-check', async () => {
  checks++;
  console.log(`[${new Date().toISOString().slice(11, 19)}] Health check: OK`);
});
queue.register('daily-report', async () => console.log('Generating daily report...'));
queue.register('weekly-backup', async () => console.log('Running weekly backup...'));
queue.register('hourly-task', async () => console.log('Hourly task...'));

await queue.schedule('health-check', every(500));
await queue.schedule('daily-report', daily(9, 0)); // 09:00 UTC
await queue.schedule('weekly-backup', weekly('sunday', 2, 0)); // Sunday 02:00 UTC
await queue.schedule('hourly-task', cron('0 * * * *')); // every hour at minute 0
await queue.schedule('eu-report', cron('0 9 * * 1-5', { timezone: 'Europe/Berlin' }), { type: 'daily-report', args: { region: 'eu' } });

for (const s of await queue.schedules()) console.log(`${s.name.padEnd(14)} ${s.description.padEnd(40)} next: ${s.nextRunAt.toISOString()}`);

const worker = queue.newWorker({ scheduler: true });
void worker.start();
while (checks < 2) await new Promise((r) => setTimeout(r, 50));
await worker.stop();
await storage.close();
