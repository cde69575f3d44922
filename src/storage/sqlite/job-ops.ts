/**
 * Job operations on SQLite: the clock, insert, reads, operator actions (cancel the whole
 * subtree, pause, resume, retry) and queue pause flags (listings are in `listing.ts`, bulk actions
 * in `bulk-ops.ts`, retention, `jobPrune`, in `retention.ts`, limits in `limits.ts` and
 * `flow-ops.ts`). Each operation is one synchronous call: writes run as one `BEGIN IMMEDIATE`
 * transaction (`ctx.write`), reads as single statements.
 *
 * Inserts (`jobInsertMany`, and the inserts of fan-outs and schedule fires) handle unique keys (a
 * live holder, or a finished one within `uniqueForMs`), `onConflict`, debounce and the `limited`
 * mark. They run inside one write transaction (`BEGIN IMMEDIATE`, or a savepoint of the
 * caller's), which holds the file's write lock: a holder looked up is still the holder when the
 * statement that follows runs, so debounces and unique windows need no lock of their own.
 * @internal
 */
import { DuplicateJobError, InvalidStateError, JobNotFoundError } from '../../errors.js';
import { JOB_STATUSES, TERMINAL_STATUSES, type JobStatus } from '../../types.js';
import { cannotPauseMessage, cannotResumeMessage, cannotRetryMessage } from '../shared/contract-messages.js';
import type { JobInsert, JobInsertManyParams, JobRow } from '../storage.js';
import type { SqliteDatabaseLike } from './connection.js';
import { cancelSubtrees } from './fan-out-accounting.js';
import { QUEUE_SET_PAUSED } from './queries/admin.js';
import {
  JOB_COUNT_BY_STATUS,
  JOB_COUNT_BY_STATUS_IN_QUEUE,
  JOB_DEBOUNCE_HOLDER,
  JOB_DEBOUNCE_REPLACE,
  JOB_GET,
  JOB_GET_MANY,
  JOB_INSERT,
  JOB_PAUSE,
  JOB_RESUME,
  JOB_STATUS,
  JOB_UNIQUE_FINISHED_HOLDER,
  JOB_UNIQUE_LIVE_HOLDER,
} from './queries/jobs.js';
import { reopenJob, retryFromScratch } from './retry-core.js';
import { retryFromFailedStep } from './retry-from-step.js';
import { int, toJobRow, type JobDbRow } from './rows.js';
import type { SqliteContext, Statements } from './statements.js';
import { isUniqueKeyViolation, translateError } from './translate-error.js';

/** The host clock (or the injected one), in integer ms: SQLite has no server clock. */
export function clockNow(ctx: SqliteContext): number {
  return ctx.now();
}

/** The status of a job. @throws JobNotFoundError */
export function statusOf(c: Statements, id: string): JobStatus {
  const r = c.st(JOB_STATUS).get(id) as { status: string } | undefined;
  if (r === undefined) throw new JobNotFoundError(id);
  return r.status as JobStatus;
}

/** Whether a status is terminal. */
export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/**
 * Cancels a non-terminal job and its subtree, with fan-out accounting (a failed decision also
 * cancels the siblings). Returns every id cancelled, the job first; empty when already terminal.
 * @throws JobNotFoundError
 */
export function jobCancel(ctx: SqliteContext, p: { id: string }): string[] {
  return ctx.write((c, now) => (isTerminal(statusOf(c, p.id)) ? [] : cancelSubtrees(c, now, [p.id])));
}

/** pending → paused. @throws JobNotFoundError, InvalidStateError */
export function jobPause(ctx: SqliteContext, p: { id: string }): void {
  ctx.write((c) => {
    if (c.st(JOB_PAUSE).run(p.id).changes === 1) return;
    throw new InvalidStateError(cannotPauseMessage(p.id, statusOf(c, p.id)));
  });
}

/** paused → pending. @throws JobNotFoundError, InvalidStateError */
export function jobResume(ctx: SqliteContext, p: { id: string }): void {
  ctx.write((c) => {
    if (c.st(JOB_RESUME).run(p.id).changes === 1) return;
    throw new InvalidStateError(cannotResumeMessage(p.id, statusOf(c, p.id)));
  });
}

/**
 * failed/cancelled → pending (attempt 0, run_at now, last_error kept), in one transaction. By
 * default the workflow starts clean: the job's checkpoints and fan-outs are dropped and its
 * descendants deleted (with their checkpoints, fan-outs and signals). With `fromFailedStep` it
 * resumes where it failed (see `retry-from-step.ts`). A retried fan-out child leaves its fan-out's
 * counters (a decision already made stands).
 * @throws JobNotFoundError, InvalidStateError, DuplicateJobError (its unique key is taken again)
 */
export function jobRetry(ctx: SqliteContext, p: { id: string; fromFailedStep?: boolean }): void {
  ctx.write((c, now) => {
    const row = c.st(JOB_GET).get(p.id) as JobDbRow | undefined;
    if (row === undefined) throw new JobNotFoundError(p.id);
    if (row.status !== 'failed' && row.status !== 'cancelled') {
      throw new InvalidStateError(cannotRetryMessage(p.id, row.status));
    }
    if (p.fromFailedStep !== true) return retryFromScratch(c, now, row);
    retryFromFailedStep(c, now, row.id);
    reopenJob(c, now, row);
  });
}

/** What to do on a unique-key clash (see `JobInsertManyParams.onConflict`). */
export type OnConflict = 'error' | 'skip' | 'existing';

/** The result of an insert: ids inserted, and per item the id it resolved to. */
export interface InsertResult {
  inserted: string[];
  ids: (string | null)[];
}

/** run_at of a new job: max(now + delayMs, runAt ?? 0). */
function runAtOf(job: JobInsert, now: number): number {
  return Math.max(now + job.delayMs, job.runAt ?? 0);
}

/** The id of a holder row, or null. */
function idOf(r: unknown): string | null {
  return r === undefined ? null : (r as { id: string }).id;
}

/** Replaces the pending job holding the item's debounce key; returns its id, or null when none holds it. */
function debounce(c: Statements, now: number, j: JobInsert, key: string): string | null {
  const holder = idOf(c.st(JOB_DEBOUNCE_HOLDER).get(j.type, key));
  if (holder === null) return null;
  c.st(JOB_DEBOUNCE_REPLACE).run({
    id: holder,
    queue: j.queue,
    priority: j.priority,
    maxRetries: j.maxRetries,
    args: j.argsJson,
    meta: j.metaJson,
    runAt: runAtOf(j, now),
    timeoutMs: j.timeoutMs,
    tenant: j.tenant,
    concurrencyKey: j.concurrencyKey ?? null,
    rateKey: j.rateKey ?? null,
  });
  return holder;
}

/**
 * The job an item's unique key clashes with before it is inserted: the live holder, else (with
 * `uniqueForMs`) the latest finished holder within the window; null when the key is free.
 */
function holderOf(c: Statements, now: number, key: string, windowMs: number): string | null {
  return idOf(c.st(JOB_UNIQUE_LIVE_HOLDER).get(key)) ?? idOf(c.st(JOB_UNIQUE_FINISHED_HOLDER).get({ key, since: now - windowMs }));
}

/**
 * Inserts jobs in order. A debounced item replaces the pending job holding its key when there is
 * one. On a unique-key clash: `'error'` throws `DuplicateJobError` (the caller's transaction
 * rolls the batch back); `'skip'` leaves that job out (its id null); `'existing'` also leaves it
 * out and names the holder.
 */
export function insertJobs(c: Statements, now: number, jobs: readonly JobInsert[], onConflict: OnConflict): InsertResult {
  const stmt = c.st(JOB_INSERT);
  const inserted: string[] = [];
  const ids: (string | null)[] = [];
  const clash = (key: string, holder: string | null, cause?: unknown): void => {
    if (onConflict === 'error') throw cause === undefined ? new DuplicateJobError(key) : translateError(cause, key);
    ids.push(onConflict === 'existing' ? holder : null);
  };
  for (const j of jobs) {
    if (j.debounceKey != null) {
      const replaced = debounce(c, now, j, j.debounceKey);
      if (replaced !== null) {
        ids.push(replaced);
        continue;
      }
    }
    const key = j.uniqueKey;
    if (key !== null && j.uniqueForMs != null) {
      const holder = holderOf(c, now, key, j.uniqueForMs);
      if (holder !== null) {
        clash(key, holder);
        continue;
      }
    }
    try {
      stmt.run(
        j.id,
        j.type,
        j.queue,
        j.priority,
        j.maxRetries,
        j.argsJson,
        j.metaJson,
        runAtOf(j, now),
        now,
        j.timeoutMs,
        key,
        j.tenant,
        j.parentId,
        j.fanOutId,
        j.fanOutIndex,
        j.concurrencyKey ?? null,
        j.rateKey ?? null,
        j.debounceKey ?? null,
        j.type,
      );
      inserted.push(j.id);
      ids.push(j.id);
    } catch (e) {
      // A failed statement is undone by itself (ABORT); the transaction stays usable.
      if (key === null || !isUniqueKeyViolation(e)) throw translateError(e, key);
      clash(key, onConflict === 'existing' ? idOf(c.st(JOB_UNIQUE_LIVE_HOLDER).get(key)) : null, e);
    }
  }
  return { inserted, ids };
}

/**
 * Inserts jobs atomically, in one transaction on the storage's connection, or on the caller's
 * connection passed as `tx` (inside the caller's open transaction, as a savepoint).
 * @throws DuplicateJobError, InvalidArgumentError (a `tx` that is not a `Database` on this file)
 */
export function jobInsertMany(ctx: SqliteContext, p: JobInsertManyParams<SqliteDatabaseLike>): InsertResult {
  const onConflict = p.onConflict ?? 'error';
  const insert = (c: Statements, now: number): InsertResult => insertJobs(c, now, p.jobs, onConflict);
  if (p.tx !== undefined && p.tx !== null && p.tx !== ctx.db) return ctx.writeOn(p.tx, insert);
  if (p.jobs.length === 0) return { inserted: [], ids: [] };
  return ctx.write(insert);
}

/** One job by id. */
export function jobGet(ctx: SqliteContext, p: { id: string }): JobRow | undefined {
  const r = ctx.read((c) => c.st(JOB_GET).get(p.id)) as JobDbRow | undefined;
  return r === undefined ? undefined : toJobRow(r);
}

/**
 * Jobs by id (each once, ids not found left out), in one statement: the ids go as one JSON
 * parameter, so no list is too long for SQLite's parameter limit.
 */
export function jobGetMany(ctx: SqliteContext, p: { ids: readonly string[] }): JobRow[] {
  return (ctx.read((c) => c.st(JOB_GET_MANY).all(JSON.stringify(p.ids))) as JobDbRow[]).map(toJobRow);
}

/** Counts by status (every status present, zero when none), over all queues or one. */
export function jobCountByStatus(ctx: SqliteContext, p: { queue?: string }): Record<JobStatus, number> {
  const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
  const { queue } = p;
  const rows = ctx.read((c) =>
    queue === undefined ? c.st(JOB_COUNT_BY_STATUS).all() : c.st(JOB_COUNT_BY_STATUS_IN_QUEUE).all({ queue }),
  ) as {
    status: JobStatus;
    n: number | bigint;
  }[];
  for (const r of rows) out[r.status] = int(r.n);
  return out;
}

/** Sets or clears a queue's paused flag. */
export function queueSetPaused(ctx: SqliteContext, p: { queue: string; paused: boolean }): void {
  ctx.write((c, now) => c.st(QUEUE_SET_PAUSED).run({ name: p.queue, paused: p.paused ? 1 : 0, now }));
}
