// BullMQ on the machine's Redis (in memory; durability is whatever the Redis server's
// persistence settings give, reported in docs/benchmarks.md). Settings follow BullMQ's
// guide: one Worker with concurrency 50, removeOnComplete/removeOnFail by count,
// addBulk for batches. Each run uses its own key prefix, deleted afterwards.
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { pkgVersion, REDIS_URL } from '../lib/util.mjs';

const QUEUE = 'bench';
const CONCURRENCY = Number(process.env.BENCH_BULLMQ_CONCURRENCY || 50);

const connect = () => new IORedis(REDIS_URL, { maxRetriesPerRequest: null });

export default {
  name: 'bullmq',
  backend: 'redis',
  shapes: ['enqueue-single', 'enqueue-batch', 'drain', 'drain-1m', 'latency', 'memory'],
  version: () => pkgVersion('bullmq'),
  settings: `Worker concurrency ${CONCURRENCY}, removeOnComplete {count: 1000}, removeOnFail {count: 5000}; add() / addBulk(); ioredis ${pkgVersion('ioredis')}`,

  async prepare(env) {
    return { prefix: `sdjbench:${env.dbPrefix}${env.seq}` };
  },

  async cleanup(cfg) {
    const redis = connect();
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${cfg.prefix}:*`, 'COUNT', 1000);
        if (keys.length) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      redis.disconnect();
    }
  },

  async producer(cfg) {
    const connection = connect();
    const queue = new Queue(QUEUE, { connection, prefix: cfg.prefix });
    await queue.waitUntilReady();
    return {
      enqueue: (data) => queue.add('noop', data),
      enqueueBatch: (list) => queue.addBulk(list.map((data) => ({ name: 'noop', data }))),
      async incomplete() {
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused', 'waiting-children');
        return Object.values(c).reduce((a, b) => a + b, 0);
      },
      async close() {
        await queue.close();
        connection.disconnect();
      },
    };
  },

  async worker(cfg, hooks) {
    const connection = connect();
    let worker;
    let running;
    return {
      async start() {
        worker = new Worker(QUEUE, async (job) => void hooks.onJob(job.data), {
          connection,
          prefix: cfg.prefix,
          concurrency: CONCURRENCY,
          removeOnComplete: { count: 1000 },
          removeOnFail: { count: 5000 },
          autorun: false,
        });
        worker.on('error', (err) => console.error('[bullmq]', err.message));
        running = worker.run();
        await worker.waitUntilReady();
      },
      async stop() {
        await worker?.close();
        await running;
        connection.disconnect();
      },
    };
  },
};
