/**
 * The worker registry on PostgreSQL: `workerBeat`, `workerList`, `workerRemove`, each one
 * statement on the pool.
 * @internal
 */
import type { WorkerBeatParams, WorkerRow } from '../storage.js';
import type { PgExec } from './executor.js';
import { WORKER_BEAT, WORKER_LIST, WORKER_REMOVE } from './queries/workers.js';
import { pgColumns, toInt } from './rows.js';

/** A `sdj_workers` row as `pg` returns it. */
interface WorkerDbRow {
  id: string;
  name: string;
  host: string;
  pid: string;
  queues: string;
  running: number;
  started_at: string;
  last_seen_at: string;
}

/** `Storage.workerBeat`: one statement (upsert, and the expired rows of others deleted). */
export async function workerBeat(x: PgExec, p: WorkerBeatParams): Promise<void> {
  const ttl = Math.max(1, Math.trunc(p.ttlMs));
  await x.rows(WORKER_BEAT, [x.now(), p.id, p.name, p.host, Math.trunc(p.pid), JSON.stringify(p.queues), Math.trunc(p.running), ttl, p.startedAt ?? null]);
}

/** Decodes the stored JSON array of queue names. */
function decodeQueues(text: string): string[] {
  const v: unknown = JSON.parse(text);
  return Array.isArray(v) ? v.map((q) => pgColumns.str(q)) : [];
}

/** `Storage.workerList`. */
export async function workerList(x: PgExec): Promise<WorkerRow[]> {
  const rows = await x.rows<WorkerDbRow>(WORKER_LIST, [x.now()]);
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    host: r.host,
    pid: toInt(r.pid),
    queues: decodeQueues(r.queues),
    running: toInt(r.running),
    startedAt: toInt(r.started_at),
    lastSeenAt: toInt(r.last_seen_at),
  }));
}

/** `Storage.workerRemove`: deleting an unknown id does nothing. */
export async function workerRemove(x: PgExec, p: { id: string }): Promise<void> {
  await x.rows(WORKER_REMOVE, [p.id]);
}
