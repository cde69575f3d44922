// Durable workflows: each ctx.call is checkpointed. When the workflow fails and retries,
// completed steps return their stored results without running again.
import { Queue, SqliteStorage } from 'simple-durable-jobs';

interface Order {
  id: string;
  total: number;
  status?: string;
}

const storage = new SqliteStorage(process.env.SDJ_EXAMPLE_DB ?? ':memory:');
await storage.migrate();
const queue = new Queue(storage);

let charges = 0;
let shipAttempts = 0;
queue.register('validate-order', async (order: Order) => {
  console.log('Validating order...');
  return { ...order, status: 'validated' };
});
queue.register('charge-payment', async (order: Order) => {
  charges++;
  console.log(`Charging payment for ${order.id}...`);
  return 'receipt-123';
});
queue.register('ship-order', async (receipt: string) => {
  if (shipAttempts++ === 0) throw new Error('carrier API unavailable'); // fails once: the workflow retries
  console.log(`Shipping order (receipt ${receipt})...`);
});

queue.register('process-order', async (order: Order, ctx) => {
  const validated = await ctx.call<Order>('validate-order', order);
  const receipt = await ctx.call<string>('charge-payment', validated);
  await ctx.call('ship-order', receipt);
  return receipt;
});

const id = await queue.enqueue('process-order', { id: 'ORD-001', total: 99.99 }, { retries: 5 });
const worker = queue.newWorker({ backoff: () => 100 });
void worker.start();
const job = await queue.waitForJob(id);
await worker.stop();
console.log(`workflow ${job.status} after ${job.attempt} attempts; payment charged ${charges} time(s)`);
await storage.close();
