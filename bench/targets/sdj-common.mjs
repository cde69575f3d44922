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
import { otelProviders } from '../lib/otel-sdk.mjs';
import { PASSTHROUGH_CODEC } from '../lib/passthrough.mjs';

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

/** The build's OpenTelemetry entry point (`simple-durable-jobs/otel`), next to DIST_ENTRY. */
export const OTEL_ENTRY = path.join(path.dirname(DIST_ENTRY), 'otel', 'index.js');

/** drain-otel: `instrument()` of the build under test, loaded only by that shape. */
export async function loadOtel() {
  preflight();
  if (!existsSync(OTEL_ENTRY)) {
    throw new Error(`this build has no OpenTelemetry instrumentation (${OTEL_ENTRY} not found): drain-otel needs \`simple-durable-jobs/otel\`; run \`npm run build\` at the repository root`);
  }
  const otel = await import(pathToFileURL(OTEL_ENTRY).href);
  if (typeof otel.instrument !== 'function') throw new Error(`${OTEL_ENTRY} exports no instrument()`);
  return otel;
}

/**
 * drain-otel (`cfg.otel`): instruments `queue` with this process's own SDK (lib/otel-sdk.mjs),
 * before it enqueues or starts a worker. Returns the providers (`stats()`, `shutdown()`), or
 * undefined when the shape does not ask for it.
 */
async function maybeInstrument(cfg, queue) {
  if (!cfg.otel) return undefined;
  const { instrument } = await loadOtel();
  const providers = await otelProviders();
  instrument(queue, { tracerProvider: providers.tracerProvider, meterProvider: providers.meterProvider });
  return providers;
}

/** The Queue of cfg: drain-passthrough (`cfg.passthrough`) builds it with a codec that returns its text unchanged. */
function newQueue(lib, storage, cfg) {
  return cfg.passthrough ? new lib.Queue(storage, { codec: PASSTHROUGH_CODEC }) : new lib.Queue(storage);
}

/**
 * drain-passthrough (`cfg.passthrough`): a run, a step and an enqueue middleware that only call
 * `next()`, counting what they see. Returns the counts, or undefined for every other shape.
 */
function maybePassthrough(cfg, queue) {
  if (!cfg.passthrough) return undefined;
  const seen = { runs: 0, enqueued: 0 };
  queue.use((job, next) => {
    seen.runs++;
    return next();
  });
  queue.useStep((step, next) => next());
  queue.useEnqueue((insert, next) => {
    seen.enqueued++;
    return next();
  });
  return seen;
}

/** The storage of cfg; `producer` marks the harness's own connections (left out of server CPU figures). */
function openStorage(lib, cfg, { producer = false } = {}) {
  if (cfg.kind === 'sqlite') return new lib.SqliteStorage(cfg.file);
  return new lib.PostgresStorage(producer ? withAppName(cfg.url) : cfg.url);
}

/**
 * Register options of the `noop` type for the flow-control shapes (lib/flow.mjs), from `cfg.flow`:
 * `{ limit }` a type-wide concurrency limit; `{ limit, key: true }` a limit per concurrency key,
 * the key taken from the job's `account` argument. Undefined for every other shape.
 */
export function flowOptions(flow) {
  if (!flow) return undefined;
  return { concurrency: flow.key ? { limit: flow.limit, key: (args) => args.account } : { limit: flow.limit } };
}

/** Registers every handler the shapes use; hooks.onJob marks a counted completion point. */
function registerHandlers(lib, queue, hooks, flow) {
  queue.register(
    'noop',
    async (args) => {
      hooks.onJob(args);
    },
    ...(flow ? [flowOptions(flow)] : []),
  );
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

/**
 * Counts this worker's running jobs per concurrency key (`args.account`) from its own hooks: a job
 * counts from `onJobStart` (after its claim is stored) until its outcome is stored (`onJobComplete`,
 * `onJobFail`, `onRetry`), so it counts at least as long as the storage counts it running. A
 * per-key maximum above the limit is a limit the claim did not keep.
 */
function trackKeys(queue) {
  const byKey = new Map();
  let now = 0;
  let maxPerKey = 0;
  let peak = 0;
  const start = (job) => {
    const n = (byKey.get(job.args?.account) ?? 0) + 1;
    byKey.set(job.args?.account, n);
    now++;
    if (n > maxPerKey) maxPerKey = n;
    if (now > peak) peak = now;
  };
  const end = (job) => {
    const n = (byKey.get(job.args?.account) ?? 0) - 1;
    if (n > 0) byKey.set(job.args?.account, n);
    else byKey.delete(job.args?.account);
    now--;
  };
  queue.onJobStart(start);
  queue.onJobComplete(end);
  queue.onJobFail(end);
  queue.onRetry(end);
  return { stats: () => ({ maxPerKey, peakRunning: peak }) };
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
    settings: `one worker, queues { default: { concurrency: ${CONCURRENCY} } } (16 for the workflow shape, 1 for workflow-serial); enqueue() / enqueueBatch(); ${kind === 'sqlite' ? 'SqliteStorage on a temp file' : 'PostgresStorage (URL, default pool of 10); fleet: the same worker in each process'}; drain-limited: \`noop\` registered with \`concurrency: { limit: 10000 }\`; drain-keyed: with \`concurrency: { limit: 1, key: (args) => args.account }\`; drain-otel: the producer's and the worker's Queue each \`instrument()\`ed (simple-durable-jobs/otel) with its own BasicTracerProvider + BatchSpanProcessor into a discarding exporter, AsyncLocalStorageContextManager, MeterProvider + PeriodicExportingMetricReader (1 s) into a discarding exporter`,

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

    /**
     * Flow-control shapes: stores the type limit of `cfg.flow` before any job is enqueued, as a
     * deployed worker would have (a worker writes its registrations' limits when it starts), so
     * that the jobs are inserted already limited. Starts a worker of one slot on this process's
     * Queue (no job exists yet) until `queue.limits()` lists the limit, then stops it. Untimed.
     */
    async armLimits(cfg, timeoutMs = 30_000) {
      const lib = await loadLibrary();
      const storage = openStorage(lib, cfg, { producer: true });
      const queue = new lib.Queue(storage);
      if (typeof queue.limits !== 'function') {
        await storage.close();
        throw new Error('this build has no flow control (Queue#limits is missing): the flow-control shapes need it');
      }
      registerHandlers(lib, queue, { onJob() {} }, cfg.flow);
      const worker = queue.newWorker({ queues: { default: { concurrency: 1 } }, handleSignals: false });
      const running = worker.start();
      try {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const row = (await queue.limits()).find((l) => l.scope === 'type' && l.name === 'noop');
          if (row) {
            const limit = typeof row.concurrency === 'object' ? row.concurrency?.limit : row.concurrency;
            if (limit !== cfg.flow.limit) throw new Error(`limits() lists noop with concurrency ${JSON.stringify(row.concurrency)}, expected ${cfg.flow.limit}`);
            return row;
          }
          if (Date.now() > deadline) throw new Error(`the worker stored no limit for noop within ${timeoutMs} ms (queue.limits() does not list it)`);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        await worker.stop();
        await running;
        await storage.close();
      }
    },

    async producer(cfg) {
      const lib = await loadLibrary();
      const storage = openStorage(lib, cfg, { producer: true });
      const queue = newQueue(lib, storage, cfg);
      // The flow shapes' keys are computed at enqueue from the registration (as in an application).
      if (cfg.flow) queue.register('noop', async () => {}, flowOptions(cfg.flow));
      const otel = await maybeInstrument(cfg, queue);
      const passthrough = maybePassthrough(cfg, queue);
      let lastId;
      return {
        /** drain-passthrough: what the enqueue middleware saw, and whether a stored job carries the codec's frame (read past the codec). */
        ...(passthrough
          ? {
              async passthroughStats() {
                const [row] = lastId ? await storage.jobGetMany({ ids: [lastId] }) : [];
                return { enqueued: passthrough.enqueued, framed: Boolean(row?.argsJson?.startsWith(`sdj1:${PASSTHROUGH_CODEC.name}:`)) };
              },
            }
          : {}),
        /** drain-otel: flushes this process's SDK, and the spans and metrics it exported (lib/otel-sdk.mjs). */
        ...(otel ? { otelStats: () => otel.stats() } : {}),
        /** Every limit with its usage (ours: flow-control shapes). */
        limits: () => queue.limits(),
        enqueue: (args) => queue.enqueue('noop', args),
        async enqueueBatch(list) {
          const ids = await queue.enqueueBatch(list.map((args) => ({ type: 'noop', args })));
          lastId = ids.at(-1);
          return ids;
        },
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
        async close() {
          await otel?.shutdown();
          await storage.close();
        },
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
      const storage = hooks.calls ? countingStorage(openStorage(lib, cfg), hooks.calls, hooks.claims) : openStorage(lib, cfg);
      const queue = newQueue(lib, storage, cfg);
      registerHandlers(lib, queue, hooks, cfg.flow);
      queue.onJobFail((job, err) => console.error(`[${name}] job ${job.id} (${job.type}) failed: ${err?.message}`));
      // Fired once the outcome is stored: the drains wait for it instead of polling stats(),
      // which counts every finished job (slow with millions of them) and would be timed too.
      queue.onJobComplete(() => hooks.onDone?.());
      const keys = cfg.flow?.key ? trackKeys(queue) : undefined;
      const otel = await maybeInstrument(cfg, queue);
      const passthrough = maybePassthrough(cfg, queue);
      let worker;
      let running;
      return {
        /** drain-keyed: the most jobs of one key, and of all keys, seen running at once. */
        flowStats: () => keys?.stats(),
        /** drain-otel: flushes this process's SDK, and the spans and metrics it exported. */
        otelStats: otel ? () => otel.stats() : undefined,
        /** drain-passthrough: the runs the run middleware saw. */
        passthroughStats: passthrough ? () => ({ ...passthrough }) : undefined,
        async start() {
          worker = queue.newWorker({ queues: { default: { concurrency: hooks.concurrency ?? CONCURRENCY } } });
          running = worker.start();
          running.catch((err) => console.error(`[${name}] worker stopped with`, err));
        },
        async stop() {
          await worker?.stop();
          await running;
          await otel?.shutdown();
          await storage.close();
        },
      };
    },
  };
}
