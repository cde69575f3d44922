// pg-boss (PostgreSQL). v10.4.2 is the newest release whose engines allow Node 20
// (v11 needs Node >= 22, v12 Node >= 22.12).
import PgBoss from 'pg-boss';
import pg from 'pg';
import { createDatabase, dropDatabase, urlFor, withAppName } from '../lib/pg.mjs';
import { pkgVersion, runDbName } from '../lib/util.mjs';

const QUEUE = 'bench';
const SCHEMA = 'pgboss';
// pg-boss polls (no LISTEN/NOTIFY); 0.5 s is the smallest interval it accepts. A work()
// loop fetches one batch per poll interval, so throughput comes from batchSize x loops;
// 4 x 500 was the best of 1-10 loops x 100-1000 on the 2-core machine (more contends on
// the fetch and gets slower).
const LOOPS = Number(process.env.BENCH_PGBOSS_LOOPS || 4);
const BATCH = Number(process.env.BENCH_PGBOSS_BATCH || 500);

const quiet = (boss) => boss.on('error', (err) => console.error('[pg-boss]', err.message));

export default {
  name: 'pg-boss',
  backend: 'postgres',
  // Not drain-1m by default: with a backlog of 1,000,000 its fetch slows to about 500 jobs/s
  // (437,000 jobs in 15 min on the 2-CPU machine), past the 30 min limit of a run.
  // `--shapes drain-1m --targets pg-boss --timeout 3600` still runs it (see bench/README.md).
  shapes: ['enqueue-single', 'enqueue-batch', 'drain', 'latency', 'memory'],
  optionalShapes: ['drain-1m'],
  version: () => pkgVersion('pg-boss'),
  settings: `${LOOPS} work() loops x batchSize ${BATCH}, pollingIntervalSeconds 0.5 (minimum), send() / insert()`,

  async prepare(env) {
    const db = runDbName(env, 'pgboss');
    await createDatabase(db);
    const url = urlFor(db);
    const boss = new PgBoss({ connectionString: url, schema: SCHEMA, supervise: false, schedule: false });
    quiet(boss);
    await boss.start();
    await boss.createQueue(QUEUE);
    await boss.stop({ graceful: false, wait: true });
    return { db, url };
  },

  async cleanup(cfg) {
    await dropDatabase(cfg.db);
  },

  async producer(cfg) {
    const boss = new PgBoss({ connectionString: withAppName(cfg.url), schema: SCHEMA, supervise: false, schedule: false, migrate: false, max: 4 });
    quiet(boss);
    await boss.start();
    const poll = new pg.Pool({ connectionString: withAppName(cfg.url), max: 1 });
    return {
      enqueue: (args) => boss.send(QUEUE, args),
      enqueueBatch: (list) => boss.insert(list.map((data) => ({ name: QUEUE, data }))),
      async incomplete() {
        const { rows } = await poll.query(
          `select count(*)::int as n from ${SCHEMA}.job where name = $1 and state < 'completed'`,
          [QUEUE],
        );
        return rows[0].n;
      },
      async close() {
        await boss.stop({ graceful: false, wait: true });
        await poll.end();
      },
    };
  },

  async worker(cfg, hooks) {
    const boss = new PgBoss({ connectionString: cfg.url, schema: SCHEMA, schedule: false, migrate: false, max: LOOPS + 2 });
    quiet(boss);
    await boss.start();
    return {
      async start() {
        for (let i = 0; i < LOOPS; i++) {
          await boss.work(QUEUE, { batchSize: BATCH, pollingIntervalSeconds: 0.5 }, async (jobs) => {
            for (const job of jobs) hooks.onJob(job.data);
          });
        }
      },
      stop: () => boss.stop({ graceful: true, wait: true, timeout: 10_000 }),
    };
  },
};
