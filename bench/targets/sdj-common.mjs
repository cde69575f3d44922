// simple-durable-jobs, driven only through its public API (/work/shared/API.md),
// loaded lazily from the repo root's build (../dist/index.js) so that the peer
// targets run without it. Shared by sdj-sqlite.mjs and sdj-postgres.mjs.
import { existsSync, rmSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { DIST_ENTRY, repoVersion, runDbName } from '../lib/util.mjs';
import { createDatabase, dropDatabase, urlFor, withAppName } from '../lib/pg.mjs';
import { countingStorage } from '../lib/roundtrips.mjs';
import { seedHistoryPostgres, seedHistorySqlite } from '../lib/history.mjs';
import { nowMs } from '../lib/stats.mjs';

export const CONCURRENCY = Number(process.env.BENCH_SDJ_CONCURRENCY || 50);

export function preflight() {
  if (!existsSync(DIST_ENTRY)) {
    throw new Error(
      `simple-durable-jobs build not found at ${DIST_ENTRY}: run \`npm run build\` at the repository root first ` +
        '(or leave our targets out with --targets graphile-worker,pg-boss,bullmq,dbos)',
    );
  }
}

export async function loadLibrary() {
  preflight();
  return import(pathToFileURL(DIST_ENTRY).href);
}

/** The storage of cfg; `producer` marks the harness's own connections (left out of server CPU figures). */
function openStorage(lib, cfg, { producer = false } = {}) {
  if (cfg.kind === 'sqlite') return new lib.SqliteStorage(cfg.file);
  return new lib.PostgresStorage(producer ? withAppName(cfg.url) : cfg.url);
}

/** Registers every handler the shapes use; hooks.onJob marks a counted completion point. */
function registerHandlers(lib, queue, hooks) {
  queue.register('noop', async (args) => {
    hooks.onJob(args);
  });
  queue.register('step', async (x) => x + 1);
  queue.register('wf', async (args, ctx) => {
    let v = args.x;
    for (let i = 0; i < args.steps; i++) {
      const t0 = nowMs();
      v = await ctx.call('step', v);
      hooks.onStep?.(nowMs() - t0);
    }
    hooks.onJob({ wf: true });
    return v;
  });
  queue.register('fan', async (args, ctx) => {
    const subs = Array.from({ length: args.n }, (_, i) => lib.sub('fan-child', { i }));
    const results = await ctx.fanOut(subs, { strategy: 'collect-all' });
    const ok = lib.values(results).length;
    if (ok !== args.n) throw new Error(`fan-out: ${ok} of ${args.n} children succeeded`);
    return ok;
  });
  queue.register('fan-child', async (args) => args.i);
  // Durable waits: `sleeps` timers in a row (each suspends the job until the worker's
  // maintenance wakes it), and a small fan-out whose parent resumes once its children are done.
  queue.register('sleeper', async (args, ctx) => {
    for (let i = 0; i < args.sleeps; i++) await ctx.sleep(args.ms);
    hooks.onJob({ wf: true });
    return args.sleeps;
  });
  queue.register('fan-small', async (args, ctx) => {
    const results = await ctx.fanOut(Array.from({ length: args.n }, (_, i) => lib.sub('fan-child', { i })), { strategy: 'collect-all' });
    hooks.onJob({ wf: true });
    return lib.values(results).length;
  });
}

export function makeSdjTarget(kind) {
  const name = kind === 'sqlite' ? 'sdj-sqlite' : 'sdj-postgres';
  return {
    name,
    ours: true,
    preflight,
    backend: kind === 'sqlite' ? 'sqlite' : 'postgres',
    shapes: ['enqueue-single', 'enqueue-batch', 'drain', 'drain-1m', 'drain-after-history', ...(kind === 'postgres' ? ['fleet'] : []),
      'latency', 'workflow', 'workflow-serial', 'fan-out', 'sleep-steps', 'fan-out-resume', 'memory'],
    version: () => {
      try {
        return `${repoVersion()}${existsSync(DIST_ENTRY) ? '' : ' (not built)'}`;
      } catch {
        return 'unknown';
      }
    },
    settings: `one worker, queues { default: { concurrency: ${CONCURRENCY} } } (16 for the workflow shape, 1 for workflow-serial); enqueue() / enqueueBatch(); ${kind === 'sqlite' ? 'SqliteStorage on a temp file' : 'PostgresStorage (URL, default pool of 10); fleet: the same worker in each process'}`,

    async prepare(env) {
      const lib = await loadLibrary();
      let cfg;
      if (kind === 'sqlite') {
        cfg = { kind, file: path.join(env.tmpdir, `${runDbName(env, 'sdj')}.db`) };
      } else {
        const db = runDbName(env, 'sdj');
        await createDatabase(db);
        cfg = { kind, db, url: urlFor(db) };
      }
      const storage = openStorage(lib, cfg);
      await storage.migrate();
      await storage.close();
      return cfg;
    },

    async cleanup(cfg) {
      if (cfg.kind === 'sqlite') {
        for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(cfg.file + suffix, { force: true });
      } else {
        await dropDatabase(cfg.db);
      }
    },

    /** drain-after-history's fixture: `count` completed jobs written by SQL (lib/history.mjs). */
    async seedHistory(cfg, count, log) {
      if (cfg.kind === 'sqlite') seedHistorySqlite(cfg.file, { count, log });
      else await seedHistoryPostgres(cfg.url, { count, log });
    },

    async producer(cfg) {
      const lib = await loadLibrary();
      const storage = openStorage(lib, cfg, { producer: true });
      const queue = new lib.Queue(storage);
      return {
        enqueue: (args) => queue.enqueue('noop', args),
        enqueueBatch: (list) => queue.enqueueBatch(list.map((args) => ({ type: 'noop', args }))),
        async incomplete() {
          const s = await queue.stats();
          return s.pending + s.running + s.waiting;
        },
        enqueueWorkflows: (count, steps) =>
          queue.enqueueBatch(Array.from({ length: count }, (_, x) => ({ type: 'wf', args: { x, steps } }))),
        enqueueFanOut: (n) => queue.enqueue('fan', { n }),
        enqueueSleepers: (count, sleeps, ms) =>
          queue.enqueueBatch(Array.from({ length: count }, () => ({ type: 'sleeper', args: { sleeps, ms } }))),
        enqueueFanOuts: (count, n) => queue.enqueueBatch(Array.from({ length: count }, () => ({ type: 'fan-small', args: { n } }))),
        async waitFor(id, timeout) {
          const job = await queue.waitForJob(id, { timeout });
          if (job.status !== 'completed') throw new Error(`job ${id} ended ${job.status}: ${job.lastError ?? ''}`);
          return job;
        },
        close: () => storage.close(),
      };
    },

    // SQLite has no cross-process notification: its latency target is in-process (the producer's
    // enqueue wakes the worker of the same Queue directly). The latency shape measures that for
    // this target, and the cross-process figure (PRAGMA data_version polling) as extra rows.
    latencyInProcess: kind === 'sqlite',

    /** The worker reports each stored outcome (hooks.onDone, from queue.onJobComplete). */
    durableCompletions: true,

    /** One process, one Queue: enqueue() and a running worker (in-process latency). */
    async local(cfg, hooks) {
      const lib = await loadLibrary();
      const storage = openStorage(lib, cfg);
      const queue = new lib.Queue(storage);
      registerHandlers(lib, queue, hooks);
      const worker = queue.newWorker({ queues: { default: { concurrency: hooks.concurrency ?? CONCURRENCY } }, handleSignals: false });
      const running = worker.start();
      return {
        enqueue: (args) => queue.enqueue('noop', args),
        async stop() {
          await worker.stop();
          await running;
          await storage.close();
        },
      };
    },

    async worker(cfg, hooks) {
      const lib = await loadLibrary();
      // Every storage call of the worker is counted (and its round trips attributed to it).
      const storage = hooks.calls ? countingStorage(openStorage(lib, cfg), hooks.calls) : openStorage(lib, cfg);
      const queue = new lib.Queue(storage);
      registerHandlers(lib, queue, hooks);
      queue.onJobFail((job, err) => console.error(`[${name}] job ${job.id} (${job.type}) failed: ${err?.message}`));
      // Fired once the outcome is stored: the drains wait for it instead of polling stats(),
      // which counts every finished job (slow with millions of them) and would be timed too.
      queue.onJobComplete(() => hooks.onDone?.());
      let worker;
      let running;
      return {
        async start() {
          worker = queue.newWorker({ queues: { default: { concurrency: hooks.concurrency ?? CONCURRENCY } } });
          running = worker.start();
          running.catch((err) => console.error(`[${name}] worker stopped with`, err));
        },
        async stop() {
          await worker?.stop();
          await running;
          await storage.close();
        },
      };
    },
  };
}
