// The `npm start` demo: a tour on embedded SQLite that exits by itself.
// Jobs with priorities and a retry, a workflow that resumes after a failure without
// re-running its finished steps, a fan-out, and a schedule firing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, SqliteStorage, every, sub, values } from 'simple-durable-jobs';

const dir = mkdtempSync(join(tmpdir(), 'sdj-demo-'));
const storage = new SqliteStorage(join(dir, 'demo.db'));
await storage.migrate();
const queue = new Queue(storage);
const log = (line: string): void => console.log(`  ${line}`);

// 1. Plain jobs: priorities and a retry.
let flaky = 0;
queue.register('send-email', async (args: { to: string }) => log(`send-email → ${args.to}`));
queue.register('flaky', async () => {
  if (flaky++ === 0) throw new Error('temporary network error');
  log('flaky succeeded on its second attempt');
});
queue.onRetry((job, err) => log(`retrying ${job.type} after attempt ${job.attempt}: ${err.message}`));

// 2. A workflow whose third step fails once: steps 1 and 2 are not run again.
const ran: string[] = [];
let shipFailures = 0;
queue.register('validate-order', async (order: { id: string }) => (ran.push('validate'), { ...order, valid: true }));
queue.register('charge-payment', async () => (ran.push('charge'), 'receipt-123'));
queue.register('ship-order', async (receipt: string) => {
  ran.push('ship');
  if (shipFailures++ === 0) throw new Error('carrier down');
  return `shipped with ${receipt}`;
});
queue.register('process-order', async (order: { id: string }, ctx) => {
  const validated = await ctx.call('validate-order', order);
  const receipt = await ctx.call<string>('charge-payment', validated);
  return ctx.call<string>('ship-order', receipt);
});

// 3. A fan-out over sub-jobs.
queue.register('square', async (n: number) => n * n);
queue.register('sum-of-squares', async (ns: number[], ctx) => {
  const results = await ctx.fanOut<number>(ns.map((n) => sub('square', n)));
  return values(results).reduce((a, b) => a + b, 0);
});

// 4. A schedule.
let ticks = 0;
queue.register('heartbeat', async () => void ticks++);
await queue.schedule('heartbeat', every(500));

console.log('simple-durable-jobs demo (SQLite file in a temp folder)\n');
const ids = [
  await queue.enqueue('send-email', { to: 'low@example.com' }, { priority: 1 }),
  await queue.enqueue('send-email', { to: 'urgent@example.com' }, { priority: 100 }),
  await queue.enqueue('flaky', {}, { retries: 2 }),
];
const order = await queue.enqueue('process-order', { id: 'ORD-001' }, { retries: 3 });
const fan = await queue.enqueue('sum-of-squares', [1, 2, 3, 4]);

const worker = queue.newWorker({ scheduler: true, backoff: () => 200, maintenanceInterval: 100, queues: { default: { concurrency: 1 } } });
void worker.start();
for (const id of ids) await queue.waitForJob(id);
const orderJob = await queue.waitForJob(order);
log(`process-order ${orderJob.status} (${JSON.stringify(orderJob.result)}) after ${orderJob.attempt} attempts; steps run: ${ran.join(', ')}`);
const fanJob = await queue.waitForJob(fan);
log(`sum-of-squares via fan-out of 4 sub-jobs = ${JSON.stringify(fanJob.result)}`);
while (ticks < 1) await new Promise((r) => setTimeout(r, 50));
log(`schedule "heartbeat" fired (${ticks} so far)`);
await worker.stop();
console.log('\nfinal counts:', JSON.stringify(await queue.stats()));
await storage.close();
rmSync(dir, { recursive: true, force: true });
