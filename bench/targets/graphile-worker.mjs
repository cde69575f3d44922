// graphile-worker (PostgreSQL). v0.17.3 is the newest release that runs on Node 20
// (0.18 requires Node >= 22.18). Settings follow its performance guide:
// concurrentJobs 24, maxPoolSize 25, localQueue 500, batched completion (delay 0).
import { run, runMigrations, makeWorkerUtils, Logger } from 'graphile-worker';
import pg from 'pg';
import { createDatabase, dropDatabase, urlFor, withAppName } from '../lib/pg.mjs';
import { pkgVersion, runDbName } from '../lib/util.mjs';

const CONCURRENCY = Number(process.env.BENCH_GRAPHILE_CONCURRENCY || 24);
const LOCAL_QUEUE = Number(process.env.BENCH_GRAPHILE_LOCAL_QUEUE || 500);
// fleet: every process keeps these settings while the fleet's pools fit in 64 connections
// (PostgreSQL's default max_connections is 100): 4 processes run concurrentJobs 15, pool 16.
const FLEET_CONNECTIONS = 64;
const concurrencyFor = (processes = 1) => Math.min(CONCURRENCY, Math.floor(FLEET_CONNECTIONS / processes) - 1);

const logger = new Logger(() => (level, message) => {
  if (level === 'error') console.error('[graphile-worker]', message);
});

export default {
  name: 'graphile-worker',
  backend: 'postgres',
  shapes: ['enqueue-single', 'enqueue-batch', 'drain', 'drain-1m', 'fleet', 'latency', 'memory'],
  version: () => pkgVersion('graphile-worker'),
  settings: `concurrentJobs ${CONCURRENCY}, maxPoolSize ${CONCURRENCY + 1}, localQueue.size ${LOCAL_QUEUE}, completeJobBatchDelay 0, failJobBatchDelay 0; addJob() / addJobs(); fleet of 4: concurrentJobs ${concurrencyFor(4)}, maxPoolSize ${concurrencyFor(4) + 1} per process`,

  async prepare(env) {
    const db = runDbName(env, 'graphile');
    await createDatabase(db);
    const url = urlFor(db);
    await runMigrations({ connectionString: url, logger });
    return { db, url };
  },

  async cleanup(cfg) {
    await dropDatabase(cfg.db);
  },

  async producer(cfg) {
    const utils = await makeWorkerUtils({ connectionString: withAppName(cfg.url), logger, maxPoolSize: 4 });
    const poll = new pg.Pool({ connectionString: withAppName(cfg.url), max: 1 });
    return {
      enqueue: (payload) => utils.addJob('noop', payload),
      enqueueBatch: (list) => utils.addJobs(list.map((payload) => ({ identifier: 'noop', payload }))),
      async incomplete() {
        // Completed jobs are deleted; failed ones stay with attempts = max_attempts.
        const { rows } = await poll.query('select count(*)::int as n from graphile_worker._private_jobs');
        return rows[0].n;
      },
      async close() {
        await utils.release();
        await poll.end();
      },
    };
  },

  async worker(cfg, hooks) {
    let runner;
    const concurrency = concurrencyFor(cfg.fleet);
    return {
      async start() {
        runner = await run({
          connectionString: cfg.url,
          concurrency,
          maxPoolSize: concurrency + 1,
          noHandleSignals: true,
          logger,
          crontab: '',
          taskList: {
            noop: async (payload) => {
              hooks.onJob(payload);
            },
          },
          preset: {
            worker: { localQueue: { size: LOCAL_QUEUE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 },
          },
        });
      },
      async stop() {
        if (runner) await runner.stop();
      },
    };
  },
};
