/**
 * Job inserts of the MySQL/MariaDB driver: `jobInsertMany`, and `insertJobs` for the other
 * operations that insert jobs (fan-out children, schedule fires).
 *
 * - Plain jobs go in multi-row INSERTs in chunks. Each row's `limited` mark is read from
 *   `sdj_type_limits` in the same statement (see `typeLimitedSql`).
 * - A unique key clashes with a live holder through the unique index on `unique_active`
 *   (`onConflict: 'error'` rejects the batch, `'skip'` and `'existing'` leave the item out); with
 *   `uniqueForMs`, the holders of the key are read first (`sdj_jobs_unique_key`) and a finished
 *   holder within the window clashes the same way. `'existing'` names the holder: the live one,
 *   else the finished one.
 * - Debounce items lock their keys (`sdj_debounce_locks`, one row per key hash, in hash order),
 *   read the pending holders of their keys with a locking read (latest committed rows), then
 *   replace the oldest holder or insert a new job. A debounce of the same key waits for the lock,
 *   so exactly one pending job results; a claim racing with it either took the holder first (the
 *   holder is running: a new job is inserted) or skips it (`SKIP LOCKED`).
 * A lone batch of plain jobs with `'error'` is one autocommit statement; anything else runs in
 * one transaction (a savepoint inside the caller's own transaction).
 * @internal
 */
import { createHash } from 'node:crypto';
import { DuplicateJobError, InvalidArgumentError } from '../../errors.js';
import { splitBySize } from '../shared/batch-split.js';
import type { JobInsert, JobInsertManyParams } from '../storage.js';
import { type Executor, type MysqlConnectionLike, promiseApi, run, select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { CLOCK_NOW, INSERT_SAVEPOINT, INSERT_SAVEPOINT_RELEASE, INSERT_SAVEPOINT_ROLLBACK } from './queries/admin.js';
import { DEBOUNCE_HOLDERS, DEBOUNCE_REPLACE, JOB_ACTIVE_UNIQUE_KEY, JOB_IDS_EXISTING, JOB_UNIQUE_HOLDERS, debounceLockSql, jobInsertSql } from './queries/jobs.js';
import { type DbRow, num, numOrNull, str } from './rows.js';
import { isUniqueKeyViolation, translateError } from './translate-error.js';

/** What an insert resolved: the ids inserted, and per item the id it resolved to (null: skipped). */
export interface InsertOutcome {
  inserted: string[];
  ids: (string | null)[];
}

/** At most this many rows per INSERT statement. */
const MAX_ROWS = 500;
/** At most about this many payload characters per INSERT statement (well under max_allowed_packet). */
const MAX_CHARS = 4 * 1024 * 1024;
/** Statuses of a live job. */
const LIVE = new Set(['pending', 'running', 'waiting', 'paused']);

/** Splits jobs into statement-sized chunks. */
function chunks(jobs: readonly JobInsert[]): JobInsert[][] {
  return splitBySize(jobs, (j) => 512 + (j.argsJson?.length ?? 0) + (j.metaJson?.length ?? 0), MAX_CHARS, MAX_ROWS);
}

/** The 21 bound values of one row of `jobInsertSql`. */
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
    j.concurrencyKey ?? null,
    j.rateKey ?? null,
    j.debounceKey ?? null,
    j.type,
  ];
}

/** Whether an item debounces. */
function debounces(j: JobInsert): j is JobInsert & { debounceKey: string } {
  return j.debounceKey !== undefined && j.debounceKey !== null;
}

/** Whether an item's unique key also clashes with recently finished holders. */
function windowed(j: JobInsert): j is JobInsert & { uniqueKey: string; uniqueForMs: number } {
  return j.uniqueKey !== null && j.uniqueForMs !== undefined && j.uniqueForMs !== null;
}

/** Whether a batch is more than one plain INSERT that either applies whole or fails. */
function needsTransaction(jobs: readonly JobInsert[], onConflict: string): boolean {
  return onConflict !== 'error' || chunks(jobs).length > 1 || jobs.some((j) => debounces(j) || windowed(j));
}

/** The first key used twice within the batch, if any. */
function duplicateInBatch(jobs: readonly JobInsert[]): string | undefined {
  const seen = new Set<string>();
  for (const j of jobs) {
    if (j.uniqueKey === null) continue;
    if (seen.has(j.uniqueKey)) return j.uniqueKey;
    seen.add(j.uniqueKey);
  }
  return undefined;
}

/** Names the key of a unique violation: the first of the batch's keys held by a non-terminal job. */
async function clashingKey(ex: Executor, jobs: readonly JobInsert[]): Promise<string | undefined> {
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

/** The holders of some unique keys, by exact key (the index compares with trailing-space padding). */
async function uniqueHolders(ex: Executor, now: number | null, keys: readonly string[]): Promise<{ byKey: Map<string, DbRow[]>; at: number }> {
  const byKey = new Map<string, DbRow[]>();
  let at = 0;
  for (const r of await select(ex, JOB_UNIQUE_HOLDERS, [now, [...new Set(keys)]])) {
    at = num(r['now_ms']);
    const k = str(r['unique_key']);
    byKey.set(k, [...(byKey.get(k) ?? []), r]);
  }
  return { byKey, at };
}

/** The holder an item resolves to: the live one, else the latest finished one after `since` (none when undefined). */
function holderOf(rows: readonly DbRow[] | undefined, since: number | undefined): string | undefined {
  let best: { id: string; at: number } | undefined;
  for (const r of rows ?? []) {
    if (LIVE.has(str(r['status']))) return str(r['id']);
    const done = numOrNull(r['completed_at']);
    if (since === undefined || done === null || done <= since) continue;
    if (best === undefined || done > best.at) best = { id: str(r['id']), at: done };
  }
  return best?.id;
}

/** Inserts plain jobs in chunks; with `skip`, clashing rows are left out. */
async function insertRows(ex: Executor, now: number | null, jobs: readonly JobInsert[], skip: boolean): Promise<void> {
  for (const part of chunks(jobs)) {
    try {
      await write(ex, jobInsertSql(part.length, skip), part.flatMap((j) => rowValues(j, now)));
    } catch (e) {
      if (!skip && isUniqueKeyViolation(e)) throw translateError(e, await clashingKey(ex, part));
      throw e;
    }
  }
}

/** The ids among `jobs` that exist now. */
async function existing(ex: Executor, jobs: readonly JobInsert[]): Promise<Set<string>> {
  const present = new Set<string>();
  for (let i = 0; i < jobs.length; i += MAX_ROWS) {
    const ids = jobs.slice(i, i + MAX_ROWS).map((j) => j.id);
    for (const r of await select(ex, JOB_IDS_EXISTING, [ids])) present.add(str(r['id']));
  }
  return present;
}

/**
 * Plain items (no debounce), at `idx` of the batch: window clashes first, then the inserts; sets
 * `ids` and adds to `inserted`. @throws DuplicateJobError ('error' mode)
 */
async function insertPlain(ex: Executor, now: number | null, all: readonly JobInsert[], idx: number[], onConflict: string, out: InsertOutcome): Promise<void> {
  const wins = idx.filter((i) => windowed(all[i]!));
  if (wins.length > 0) {
    const { byKey, at } = await uniqueHolders(ex, now, wins.map((i) => all[i]!.uniqueKey!));
    const clashed = new Set<number>();
    for (const i of wins) {
      const j = all[i] as JobInsert & { uniqueKey: string; uniqueForMs: number };
      const holder = holderOf(byKey.get(j.uniqueKey), at - j.uniqueForMs);
      if (holder === undefined) continue;
      if (onConflict === 'error') throw new DuplicateJobError(j.uniqueKey);
      clashed.add(i);
      out.ids[i] = onConflict === 'existing' ? holder : null;
    }
    idx = idx.filter((i) => !clashed.has(i));
  }
  const jobs = idx.map((i) => all[i]!);
  if (onConflict === 'error') {
    const dup = duplicateInBatch(jobs);
    if (dup !== undefined) throw new DuplicateJobError(dup);
    await insertRows(ex, now, jobs, false);
    for (const i of idx) out.ids[i] = all[i]!.id;
    out.inserted.push(...jobs.map((j) => j.id));
    return;
  }
  await insertRows(ex, now, jobs, true);
  const present = await existing(ex, jobs);
  const missing = idx.filter((i) => !present.has(all[i]!.id));
  for (const i of idx) if (present.has(all[i]!.id)) out.ids[i] = all[i]!.id;
  out.inserted.push(...jobs.filter((j) => present.has(j.id)).map((j) => j.id));
  const keyed = missing.filter((i) => all[i]!.uniqueKey !== null);
  if (onConflict !== 'existing' || keyed.length === 0) return;
  const { byKey } = await uniqueHolders(ex, now, keyed.map((i) => all[i]!.uniqueKey!));
  for (const i of keyed) out.ids[i] = holderOf(byKey.get(all[i]!.uniqueKey!), -Infinity) ?? null;
}

/** The `debounce_active` value of a (type, key): length-prefixed bytes, as migration 4 defines it. */
function debounceValue(type: string, key: string): Buffer {
  return Buffer.from(`${Buffer.byteLength(type, 'utf8')}:${type}${key}`, 'utf8');
}

/** Debounce items, at `idx` of the batch (see the module header); sets `ids` and adds to `inserted`. */
async function insertDebounced(ex: Executor, now: number | null, all: readonly JobInsert[], idx: number[], out: InsertOutcome): Promise<void> {
  const groups = new Map<string, { value: Buffer; lock: Buffer; items: number[] }>();
  for (const i of idx) {
    const j = all[i] as JobInsert & { debounceKey: string };
    const value = debounceValue(j.type, j.debounceKey);
    const k = value.toString('hex');
    const g = groups.get(k) ?? { value, lock: createHash('sha256').update(value).digest(), items: [] };
    g.items.push(i);
    groups.set(k, g);
  }
  const locks = [...groups.values()].map((g) => g.lock).sort(Buffer.compare);
  await write(ex, debounceLockSql(locks.length), locks.flatMap((l) => [l, now]));
  const holders = new Map<string, string>();
  for (const r of await select(ex, DEBOUNCE_HOLDERS, [[...groups.values()].map((g) => g.value)])) {
    const k = (r['k'] as Buffer).toString('hex');
    if (!holders.has(k)) holders.set(k, str(r['id']));
  }
  const fresh: JobInsert[] = [];
  for (const [k, g] of groups) {
    const last = all[g.items[g.items.length - 1]!]!;
    let id = holders.get(k);
    if (id !== undefined) {
      const values = [last.queue, last.priority, last.maxRetries, last.argsJson, last.metaJson, now, last.delayMs, last.runAt ?? 0];
      await write(ex, DEBOUNCE_REPLACE, [...values, last.timeoutMs, last.tenant, last.concurrencyKey ?? null, last.rateKey ?? null, id]);
    } else {
      id = all[g.items[0]!]!.id;
      fresh.push({ ...last, id });
      out.inserted.push(id);
    }
    for (const i of g.items) out.ids[i] = id;
  }
  await insertRows(ex, now, fresh, false);
}

/**
 * Inserts jobs on `ex` (inside a transaction unless the batch is one plain INSERT with 'error').
 * Every job of the batch gets the same created_at and "now" for its run_at: a batch split into
 * several statements reads the clock once first. Returns the ids inserted (input order) and the
 * id each item resolved to. @throws DuplicateJobError ('error' mode)
 */
export async function insertJobs(ex: Executor, now: number | null, jobs: readonly JobInsert[], onConflict: 'error' | 'skip' | 'existing'): Promise<InsertOutcome> {
  const out: InsertOutcome = { inserted: [], ids: jobs.map(() => null) };
  if (jobs.length === 0) return out;
  if (chunks(jobs).length > 1 && now === null) now = num((await select(ex, CLOCK_NOW, [null]))[0]?.['now_ms']);
  const plain = jobs.flatMap((j, i) => (debounces(j) ? [] : [i]));
  const debounced = jobs.flatMap((j, i) => (debounces(j) ? [i] : []));
  if (plain.length > 0) await insertPlain(ex, now, jobs, plain, onConflict, out);
  if (debounced.length > 0) await insertDebounced(ex, now, jobs, debounced, out);
  const inserted = new Set(out.inserted);
  out.inserted = jobs.filter((j) => inserted.has(j.id)).map((j) => j.id);
  return out;
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
export async function jobInsertMany(ctx: DriverContext, p: JobInsertManyParams): Promise<InsertOutcome> {
  const onConflict = p.onConflict ?? 'error';
  if (p.jobs.length === 0) return { inserted: [], ids: [] };
  const now = ctx.now();
  const single = !needsTransaction(p.jobs, onConflict);
  if (p.tx !== undefined) {
    // Inside the caller's transaction: a savepoint makes a failed batch insert nothing.
    const conn = userConnection(p.tx);
    if (single) return insertJobs(conn, now, p.jobs, onConflict);
    await run(conn, INSERT_SAVEPOINT);
    try {
      const out = await insertJobs(conn, now, p.jobs, onConflict);
      await run(conn, INSERT_SAVEPOINT_RELEASE);
      return out;
    } catch (e) {
      await run(conn, INSERT_SAVEPOINT_ROLLBACK).catch(() => undefined);
      throw e;
    }
  }
  if (single) return ctx.db.autocommit((ex) => insertJobs(ex, now, p.jobs, 'error'));
  return ctx.db.tx((ex) => insertJobs(ex, now, p.jobs, onConflict));
}
