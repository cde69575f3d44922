/**
 * Job inserts of the MySQL/MariaDB driver: multi-row INSERTs in chunks, unique-key handling for
 * `onConflict: 'error' | 'skip'`, and inserts inside the caller's own transaction.
 * @internal
 */
import { DuplicateJobError, InvalidArgumentError } from '../../errors.js';
import type { JobInsert, JobInsertManyParams } from '../storage.js';
import { type Executor, type MysqlConnectionLike, promiseApi, run, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { num } from './rows.js';
import { CLOCK_NOW, INSERT_SAVEPOINT, INSERT_SAVEPOINT_RELEASE, INSERT_SAVEPOINT_ROLLBACK } from './queries/admin.js';
import { JOB_ACTIVE_UNIQUE_KEY, JOB_IDS_EXISTING, jobInsertSql } from './queries/jobs.js';
import { isUniqueKeyViolation, translateError } from './translate-error.js';

/** At most this many rows per INSERT statement. */
const MAX_ROWS = 500;
/** At most about this many payload characters per INSERT statement (well under max_allowed_packet). */
const MAX_CHARS = 4 * 1024 * 1024;

/** Splits jobs into statement-sized chunks. */
function chunks(jobs: JobInsert[]): JobInsert[][] {
  const out: JobInsert[][] = [];
  let cur: JobInsert[] = [];
  let chars = 0;
  for (const j of jobs) {
    const size = 512 + (j.argsJson?.length ?? 0) + (j.metaJson?.length ?? 0);
    if (cur.length > 0 && (cur.length >= MAX_ROWS || chars + size > MAX_CHARS)) {
      out.push(cur);
      cur = [];
      chars = 0;
    }
    cur.push(j);
    chars += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** The 17 bound values of one row of `jobInsertSql`. */
function rowValues(j: JobInsert, now: number | null): unknown[] {
  return [
    j.id,
    j.type,
    j.queue,
    j.priority,
    j.maxRetries,
    j.argsJson,
    j.metaJson,
    now,
    j.delayMs,
    j.runAt ?? 0,
    now,
    j.timeoutMs,
    j.uniqueKey,
    j.tenant,
    j.parentId,
    j.fanOutId,
    j.fanOutIndex,
  ];
}

/** The first key used twice within the batch, if any. */
function duplicateInBatch(jobs: JobInsert[]): string | undefined {
  const seen = new Set<string>();
  for (const j of jobs) {
    if (j.uniqueKey === null) continue;
    if (seen.has(j.uniqueKey)) return j.uniqueKey;
    seen.add(j.uniqueKey);
  }
  return undefined;
}

/** Names the key of a unique violation: the first of the batch's keys held by a non-terminal job. */
async function clashingKey(ex: Executor, jobs: JobInsert[]): Promise<string | undefined> {
  const keys = jobs.map((j) => j.uniqueKey).filter((k): k is string => k !== null);
  if (keys.length === 0) return undefined;
  try {
    const rows = await select(ex, JOB_ACTIVE_UNIQUE_KEY, [keys]);
    const k = rows[0]?.['unique_key'];
    return typeof k === 'string' ? k : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Inserts jobs on `ex` (inside a transaction when there are several chunks or `skip`).
 * Every job of the batch gets the same created_at and "now" for its run_at: a batch split into
 * several statements reads the clock once first. Returns the inserted ids in input order.
 * @throws DuplicateJobError ('error' mode)
 */
export async function insertJobs(ex: Executor, now: number | null, jobs: JobInsert[], onConflict: 'error' | 'skip'): Promise<string[]> {
  if (jobs.length === 0) return [];
  const parts = chunks(jobs);
  if (parts.length > 1 && now === null) now = num((await select(ex, CLOCK_NOW, [null]))[0]?.['now_ms']);
  if (onConflict === 'error') {
    const dup = duplicateInBatch(jobs);
    if (dup !== undefined) throw new DuplicateJobError(dup);
    for (const part of parts) {
      try {
        await write(ex, jobInsertSql(part.length, false), part.flatMap((j) => rowValues(j, now)));
      } catch (e) {
        if (isUniqueKeyViolation(e)) throw translateError(e, await clashingKey(ex, part));
        throw e;
      }
    }
    return jobs.map((j) => j.id);
  }
  for (const part of parts) {
    await write(ex, jobInsertSql(part.length, true), part.flatMap((j) => rowValues(j, now)));
  }
  const present = new Set<string>();
  for (let i = 0; i < jobs.length; i += MAX_ROWS) {
    const ids = jobs.slice(i, i + MAX_ROWS).map((j) => j.id);
    for (const r of await select(ex, JOB_IDS_EXISTING, [ids])) present.add(String(r['id']));
  }
  return jobs.filter((j) => present.has(j.id)).map((j) => j.id);
}

/** The caller's connection of `EnqueueOptions.transaction`, as an executor. */
function userConnection(tx: unknown): MysqlConnectionLike {
  if (typeof tx === 'object' && tx !== null) {
    const c = promiseApi(tx as MysqlConnectionLike);
    if (typeof (c as { query?: unknown }).query === 'function') return c;
  }
  throw new InvalidArgumentError('transaction must be a mysql2 connection inside an open transaction');
}

/** `Storage.jobInsertMany`. */
export async function jobInsertMany(ctx: DriverContext, p: JobInsertManyParams): Promise<{ inserted: string[] }> {
  const onConflict = p.onConflict ?? 'error';
  if (p.jobs.length === 0) return { inserted: [] };
  const now = ctx.now();
  if (p.tx !== undefined) {
    // Inside the caller's transaction: a savepoint makes a failed batch insert nothing.
    const conn = userConnection(p.tx);
    if (onConflict === 'error' && chunks(p.jobs).length === 1) return { inserted: await insertJobs(conn, now, p.jobs, onConflict) };
    await run(conn, INSERT_SAVEPOINT);
    try {
      const inserted = await insertJobs(conn, now, p.jobs, onConflict);
      await run(conn, INSERT_SAVEPOINT_RELEASE);
      return { inserted };
    } catch (e) {
      await run(conn, INSERT_SAVEPOINT_ROLLBACK).catch(() => undefined);
      throw e;
    }
  }
  if (onConflict === 'error' && chunks(p.jobs).length === 1) {
    return { inserted: await ctx.db.autocommit((ex) => insertJobs(ex, now, p.jobs, 'error')) };
  }
  return { inserted: await ctx.db.tx((ex) => insertJobs(ex, now, p.jobs, onConflict)) };
}
