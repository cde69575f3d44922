/**
 * The worker registry on SQLite: `workerBeat`, `workerList`, `workerRemove`.
 * @internal
 */
import type { WorkerBeatParams, WorkerRow } from '../storage.js';
import { WORKER_DELETE_EXPIRED, WORKER_LIST, WORKER_REMOVE, WORKER_UPSERT } from './queries/workers.js';
import { int, sqliteColumns } from './rows.js';
import type { SqliteContext } from './statements.js';

/**
 * `Storage.workerBeat`: one short `BEGIN IMMEDIATE` transaction — the expired rows of other
 * workers deleted, then this worker's row upserted (expiry = now + `ttlMs`, at least 1 ms).
 */
export function workerBeat(ctx: SqliteContext, p: WorkerBeatParams): void {
  const ttl = Math.max(1, Math.trunc(p.ttlMs));
  ctx.write((c, now) => {
    c.st(WORKER_DELETE_EXPIRED).run({ now, id: p.id });
    c.st(WORKER_UPSERT).run({
      id: p.id,
      name: p.name,
      host: p.host,
      pid: Math.trunc(p.pid),
      queues: JSON.stringify(p.queues),
      running: Math.trunc(p.running),
      startedAt: p.startedAt ?? null,
      now,
      expiresAt: now + ttl,
    });
  });
}

/** A `WORKER_LIST` row. */
interface WorkerDbRow {
  id: string;
  name: string;
  host: string;
  pid: number | bigint;
  queues: string;
  running: number | bigint;
  started_at: number | bigint;
  last_seen_at: number | bigint;
}

/** Decodes the stored JSON array of queue names. */
function decodeQueues(text: string): string[] {
  const v: unknown = JSON.parse(text);
  return Array.isArray(v) ? v.map((q) => sqliteColumns.str(q)) : [];
}

/** `Storage.workerList`: rows whose expiry has not passed on the storage's clock. */
export function workerList(ctx: SqliteContext): WorkerRow[] {
  const now = ctx.now();
  const rows = ctx.read((c) => c.st(WORKER_LIST).all({ now })) as WorkerDbRow[];
  return rows.map((r) => ({
    id: sqliteColumns.str(r.id),
    name: sqliteColumns.str(r.name),
    host: sqliteColumns.str(r.host),
    pid: int(r.pid),
    queues: decodeQueues(sqliteColumns.str(r.queues)),
    running: int(r.running),
    startedAt: int(r.started_at),
    lastSeenAt: int(r.last_seen_at),
  }));
}

/** `Storage.workerRemove`: deleting an unknown id does nothing. */
export function workerRemove(ctx: SqliteContext, p: { id: string }): void {
  ctx.write((c) => c.st(WORKER_REMOVE).run(p.id));
}
