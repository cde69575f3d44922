/**
 * The worker registry on MySQL/MariaDB: `workerBeat`, `workerList`, `workerRemove`.
 * @internal
 */
import type { WorkerBeatParams, WorkerRow } from '../storage.js';
import { select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { WORKER_DELETE_EXPIRED, WORKER_LIST, WORKER_REMOVE, WORKER_UPSERT } from './queries/workers.js';
import { mysqlColumns, num, str } from './rows.js';

/**
 * `Storage.workerBeat`: two autocommitted statements on one connection — the expired rows of
 * other workers deleted, then this worker's row upserted. Neither waits while holding a row the
 * other beats need (a transaction holding the upserted row while deleting could meet another
 * worker's beat doing the same the other way round).
 */
export async function workerBeat(ctx: DriverContext, p: WorkerBeatParams): Promise<void> {
  const ttl = Math.max(1, Math.trunc(p.ttlMs));
  const now = ctx.now();
  await ctx.db.autocommit(async (ex) => {
    await write(ex, WORKER_DELETE_EXPIRED, [now, p.id]);
    await write(ex, WORKER_UPSERT, [p.id, p.name, p.host, Math.trunc(p.pid), JSON.stringify(p.queues), Math.trunc(p.running), p.startedAt ?? null, ttl, now]);
  });
}

/** Decodes the stored JSON array of queue names. */
function decodeQueues(text: string): string[] {
  const v: unknown = JSON.parse(text);
  return Array.isArray(v) ? v.map((q) => mysqlColumns.str(q)) : [];
}

/** `Storage.workerList`. */
export async function workerList(ctx: DriverContext): Promise<WorkerRow[]> {
  const rows = await select(ctx.db.pool, WORKER_LIST, [ctx.now()]);
  return rows.map((r) => ({
    id: str(r['id']),
    name: str(r['name']),
    host: str(r['host']),
    pid: num(r['pid']),
    queues: decodeQueues(str(r['queues'])),
    running: num(r['running']),
    startedAt: num(r['started_at']),
    lastSeenAt: num(r['last_seen_at']),
  }));
}

/** `Storage.workerRemove`: deleting an unknown id does nothing. */
export async function workerRemove(ctx: DriverContext, p: { id: string }): Promise<void> {
  await ctx.db.autocommit((ex) => write(ex, WORKER_REMOVE, [p.id]));
}
