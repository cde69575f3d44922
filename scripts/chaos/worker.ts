/**
 * A chaos worker process. Env: the backend (see backend.ts), CHAOS_WORKER_NAME, CHAOS_LEASE_MS,
 * CHAOS_FAULT, CHAOS_SEED, CHAOS_PHASE (`drain`: the load stopped; no schedule definitions, no
 * boot game), CHAOS_RETENTION (the queue's retention, JSON; `false` keeps everything) and
 * CHAOS_PRUNE_MS (the worker's `pruneInterval`).
 *
 * As it starts it (re-)defines the run's schedules, and — drawn from the seed and its name —
 * may first start a worker and stop it during its start (boot.ts), after which it either goes
 * on or exits cleanly by plan (printing `exit-by-plan`; the orchestrator starts a replacement).
 * Then it runs every chaos job type with the scheduler on (the flow types with their limits,
 * which its worker stores as it starts), records reclaims it performs, prints
 * `ready`, and stops gracefully on SIGTERM (the orchestrator SIGKILLs it at random too),
 * recording the instant its worker's stop resolved. Warnings and errors go to stderr, one JSON
 * line each.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import type { Logger, RetentionOptions } from '../../src/types.js';
import type { WorkerOptions } from '../../src/worker/worker.js';
import { openChaosDb, openStorage } from './backend.js';
import { StopWatch, stopDuringStart } from './boot.js';
import { Effects } from './effects.js';
import { FlowRecorder, METERED_QUEUE } from './flow.js';
import { registerExtraHandlers } from './handlers-extra.js';
import { registerFlowHandlers } from './handlers-flow.js';
import { BIG_QUEUE, KIDS_QUEUE, ROOT_QUEUE, registerHandlers, type HandlerHost } from './handlers.js';
import { Rng, streamOf } from './options.js';
import { ALT, defineAlt, defineTick } from './schedules.js';

const env = process.env as Record<string, string>;
const name = env['CHAOS_WORKER_NAME'] ?? `W${process.pid}`;
const leaseMs = Number(env['CHAOS_LEASE_MS'] ?? 6000);
const draining = env['CHAOS_PHASE'] === 'drain';
// Every choice of this process comes from the run's seed and the process's name.
const rng = new Rng(Number(env['CHAOS_SEED'] ?? 42), streamOf(name));
const heartbeatMs = Math.max(100, Math.floor(leaseMs / 6));
const retention = JSON.parse(env['CHAOS_RETENTION'] ?? 'false') as RetentionOptions | false;
const pruneMs = Number(env['CHAOS_PRUNE_MS'] ?? 1000);

const log = (level: string, who: string) => (message: string, fields?: Record<string, unknown>) =>
  process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level, worker: who, message, ...fields })}\n`);
const loggerFor = (who: string): Logger => ({ debug: () => {}, info: log('info', who), warn: log('warn', who), error: log('error', who) });
const logger = loggerFor(name);

// CHAOS_FAULT=lease (audit self-check): heartbeats report every lease as held but extend none,
// so live owners lose their leases (a heartbeat slower than half the lease is refused up front).
const storage = timedHeartbeats(leaseFault(await openStorage(env, 6), env['CHAOS_FAULT'] === 'lease'));
/** `s`, printing `slow-heartbeat <sent at> <ms>` for each heartbeat call that took 500 ms or more (the audit reports the slowest). */
function timedHeartbeats(s: Storage): Storage {
  return new Proxy(s, {
    get(target, prop) {
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== 'function') return v;
      const fn = (v as (...a: unknown[]) => unknown).bind(target);
      if (prop !== 'jobHeartbeat') return fn;
      return async (...args: unknown[]) => {
        const sentAt = Date.now();
        try {
          return await fn(...args);
        } finally {
          const ms = Date.now() - sentAt;
          if (ms >= 500) console.log(`slow-heartbeat ${sentAt} ${ms}`);
        }
      };
    },
  });
}
function leaseFault(s: Storage, on: boolean): Storage {
  if (!on) return s;
  return new Proxy(s, {
    get(target, prop) {
      if (prop === 'jobHeartbeat') return async (p: Parameters<Storage['jobHeartbeat']>[0]) => p.runs.map((r) => r.jobId);
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
const db = openChaosDb(env, 4);
const effects = new Effects(db, name, process.pid);
const mine = new Set<string>();
const host: HandlerHost = { storage, effects, isMine: (id) => id !== null && mine.has(id) };
const flow = new FlowRecorder(db, storage, name, process.pid);

const workerOptions = (workerName: string, workerLogger: Logger): WorkerOptions => ({
  name: workerName,
  scheduler: true,
  leaseTimeout: leaseMs,
  heartbeatInterval: heartbeatMs,
  maintenanceInterval: 500,
  pruneInterval: pruneMs,
  drainTimeout: 5000,
  queues: { [ROOT_QUEUE]: { concurrency: 8 }, [KIDS_QUEUE]: { concurrency: 8 }, [BIG_QUEUE]: { concurrency: 32 }, [METERED_QUEUE]: { concurrency: 8 } },
  // Quick retries keep the run short; kills count as attempts too (a reclaim consumes one).
  backoff: (attempt) => Math.min(2000, 100 * 2 ** Math.max(0, attempt - 1)),
  logger: workerLogger,
});

/** A queue with every chaos handler, over a storage watched for use after its worker stopped. */
function watchedQueue(watch: StopWatch, who: string): Queue {
  const queue = new Queue(watch.wrap(storage), { logger: watch.logger(loggerFor(who)), retention });
  registerHandlers(queue, host);
  registerExtraHandlers(queue, host);
  registerFlowHandlers(queue, host, flow, env['CHAOS_FAULT'] !== 'flow');
  return queue;
}

/** Closes a connection pool, reporting one that does not close (a connection still checked out). */
async function closeWithin(what: string, close: () => Promise<void>, watch: StopWatch): Promise<void> {
  const closed = await Promise.race([close().then(() => true, () => true), delay(5000).then(() => false)]);
  if (!closed) watch.report(`${what}.close() did not finish within 5 s after the worker stopped`);
}

const finalWatch = new StopWatch(effects);
const queue = watchedQueue(finalWatch, name);

// Every process defines the schedules as it starts, at the same moment as the boot game runs.
const definitions = draining
  ? Promise.resolve()
  : Promise.all([defineTick(queue), defineAlt(queue, rng.chance(0.7) ? ALT.periodsMs[0] : ALT.periodsMs[1])]).then(
      () => {},
      (e: unknown) => logger.error('defining the schedules failed', { error: String(e) }),
    );

const watches = [finalWatch];
if (!draining && rng.chance(0.35)) {
  const bootWatch = new StopWatch(effects);
  watches.push(bootWatch);
  const bootName = `${name}b`;
  const bootQueue = watchedQueue(bootWatch, bootName);
  const boot = bootQueue.newWorker(workerOptions(bootName, bootWatch.logger(loggerFor(bootName))));
  mine.add(boot.id);
  const point = await stopDuringStart(boot, bootWatch, rng);
  // A LISTEN still being set up when stop() was called may take a moment to be given back.
  await delay(1000);
  bootWatch.checkListens();
  if (rng.chance(0.3)) {
    await definitions;
    console.log(`exit-by-plan ${name} after boot stop at ${point}`);
    await closeWithin('storage', () => storage.close(), bootWatch);
    await bootWatch.flushed();
    await db.close().catch(() => {});
    process.exit(0);
  }
}
await definitions;

const worker = queue.newWorker(workerOptions(name, finalWatch.logger(logger)));
mine.add(worker.id);
finalWatch.workerId = worker.id;

const events = queue.events();
const watching = (async () => {
  for await (const e of events) {
    // The outcome of this job is committed: the audit tells a lost outcome from one still in
    // flight when this process was killed (stdout to a pipe is written synchronously).
    if (e.type === 'job.completed' || e.type === 'job.failed' || e.type === 'job.retrying') console.log(`stored ${e.job.id}`);
    if (e.type === 'job.reclaimed') {
      await effects.insert({ kind: 'reclaim', jobId: e.jobId, runCount: -1, info: e.status, startedAt: e.at.getTime() }).catch(() => {});
    }
  }
})();

const done = worker.start();
console.log(`ready ${name} ${process.pid}`);
await done;
await finalWatch.markStopped('final').catch(() => {});
finalWatch.checkListens();
await events.return?.();
await watching;
await closeWithin('storage', () => (storage as Storage).close(), finalWatch);
await Promise.all(watches.map((w) => w.flushed()));
await db.close();
