/**
 * A chaos worker process. Env: the backend (see backend.ts), CHAOS_WORKER_NAME, CHAOS_LEASE_MS,
 * CHAOS_FAULT.
 * Runs every chaos job type with the scheduler on, records reclaims it performs, prints `ready`
 * once started, and stops gracefully on SIGTERM (the orchestrator SIGKILLs it at random too).
 * Warnings and errors go to stderr, one JSON line each.
 */
import { Queue } from '../../src/queue/queue.js';
import type { Logger } from '../../src/types.js';
import { openChaosDb, openStorage } from './backend.js';
import { Effects } from './effects.js';
import { KIDS_QUEUE, ROOT_QUEUE, registerHandlers } from './handlers.js';

const env = process.env as Record<string, string>;
const name = env['CHAOS_WORKER_NAME'] ?? `W${process.pid}`;
const leaseMs = Number(env['CHAOS_LEASE_MS'] ?? 6000);
// CHAOS_FAULT=lease (audit self-check): heartbeats far apart so live owners lose their leases.
const heartbeatMs = env['CHAOS_FAULT'] === 'lease' ? leaseMs * 10 : Math.max(100, Math.floor(leaseMs / 6));

const log = (level: string) => (message: string, fields?: Record<string, unknown>) =>
  process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level, worker: name, message, ...fields })}\n`);
const logger: Logger = { debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') };

const storage = await openStorage(env, 6);
const db = openChaosDb(env, 4);
const effects = new Effects(db, name, process.pid);
const queue = new Queue(storage, { logger });
let workerId = '';
registerHandlers(queue, { storage, effects, workerId: () => workerId });

const worker = queue.newWorker({
  name,
  scheduler: true,
  leaseTimeout: leaseMs,
  heartbeatInterval: heartbeatMs,
  maintenanceInterval: 500,
  drainTimeout: 5000,
  queues: { [ROOT_QUEUE]: { concurrency: 8 }, [KIDS_QUEUE]: { concurrency: 8 } },
  // Quick retries keep the run short; kills count as attempts too (a reclaim consumes one).
  backoff: (attempt) => Math.min(2000, 100 * 2 ** Math.max(0, attempt - 1)),
  logger,
});
workerId = worker.id;

const events = queue.events();
const watching = (async () => {
  for await (const e of events) {
    if (e.type === 'job.reclaimed') {
      await effects.insert({ kind: 'reclaim', jobId: e.jobId, runCount: -1, info: e.status, startedAt: e.at.getTime() }).catch(() => {});
    }
  }
})();

const done = worker.start();
console.log(`ready ${name} ${process.pid}`);
await done;
await events.return?.();
await watching;
await db.close();
await storage.close();
