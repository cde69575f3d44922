/**
 * Job operations of the PostgreSQL driver: the clock, inserts (one statement per chunk of jobs),
 * reads by id, operator actions (cancel the whole subtree, pause, resume, retry) and paused
 * queues. Listings are in `listing.ts`, bulk actions in `bulk-ops.ts`, the retry from the failed
 * step in `retry-from-step.ts`, retention (`jobPrune`) in `retention.ts`. Multi-statement
 * operations run in one transaction.
 * @internal
 */
import { createHash } from 'node:crypto';
import { DuplicateJobError, InvalidArgumentError, InvalidStateError, JobNotFoundError } from '../../errors.js';
import { JOB_STATUSES, type JobStatus } from '../../types.js';
import { cannotPauseMessage, cannotResumeMessage, cannotRetryMessage } from '../shared/contract-messages.js';
import type { JobInsert, JobInsertManyParams, JobRow } from '../storage.js';
import { splitByText, textLength } from './batch-parts.js';
import { withTx, type PgQueryableLike } from './connection.js';
import type { PgExec } from './executor.js';
import { cancelSubtrees, descendants, lockFanOutsOf } from './fan-out-accounting.js';
import { CLOCK_NOW, QUEUE_SET_PAUSED } from './queries/admin.js';
import {
  DEBOUNCE_LOCK,
  JOB_COUNT_BY_STATUS,
  JOB_DROP_WORKFLOW_STATE,
  JOB_GET,
  JOB_GET_MANY,
  JOB_FINISHED_HOLDERS,
  JOB_INSERT,
  JOB_INSERT_FLOW,
  JOB_INSERT_SKIP,
  JOB_LOCK_FOR_RETRY,
  JOB_RETRY,
  JOB_SET_STATUS,
  JOB_UNIQUE_HOLDERS,
  type InsertConflict,
} from './queries/jobs.js';
import { retryFromFailedStep } from './retry-from-step.js';
import { toInt, toJobRow, type JobDbRow } from './rows.js';

/** `Storage.clockNow`: the injected clock, else the database clock (one statement). */
export async function clockNow(x: PgExec): Promise<number> {
  const injected = x.now();
  if (injected !== null) return injected;
  return toInt((await x.one<{ now: string }>(CLOCK_NOW))?.now);
}

/** Rows per multi-row INSERT when a batch is large (fan-out children). */
export const INSERT_CHUNK = 1000;

function int(v: number | null | undefined): number | null {
  return v === null || v === undefined ? null : Math.trunc(v);
}

/** The job arrays of a batch, in `JOB_INSERT` parameter order: $2..$16, then ($17 is the channel) $18, $19 and with `flow` $20, $21. */
function jobArrays(jobs: readonly JobInsert[], channel: string, flow: boolean): unknown[] {
  const out: unknown[] = [
    jobs.map((j) => j.id),
    jobs.map((j) => j.type),
    jobs.map((j) => j.queue),
    jobs.map((j) => Math.trunc(j.priority)),
    jobs.map((j) => Math.trunc(j.maxRetries)),
    jobs.map((j) => j.argsJson),
    jobs.map((j) => j.metaJson),
    jobs.map((j) => Math.trunc(j.delayMs)),
    jobs.map((j) => int(j.runAt)),
    jobs.map((j) => int(j.timeoutMs)),
    jobs.map((j) => j.uniqueKey),
    jobs.map((j) => j.tenant),
    jobs.map((j) => j.parentId),
    jobs.map((j) => j.fanOutId),
    jobs.map((j) => int(j.fanOutIndex)),
    channel,
    jobs.map((j) => j.concurrencyKey ?? null),
    jobs.map((j) => j.rateKey ?? null),
  ];
  if (flow) out.push(jobs.map((j) => (j.uniqueKey === null ? null : int(j.uniqueForMs))), jobs.map((j) => j.debounceKey ?? null));
  return out;
}

/** The statements a job batch takes: at most {@link INSERT_CHUNK} jobs and the payload budget each. */
function insertParts(jobs: readonly JobInsert[]): JobInsert[][] {
  return splitByText(jobs, (j) => textLength(j.argsJson) + textLength(j.metaJson), INSERT_CHUNK);
}

/** What an insert returns: the ids inserted (input order) and, per item, the id it resolved to. */
export interface InsertResult {
  inserted: string[];
  ids: (string | null)[];
}

/** True when a statement's items need `JOB_INSERT_FLOW`: a dedup window, a debounce key, or holders to report. */
function needsFlow(jobs: readonly JobInsert[], mode: InsertConflict): boolean {
  return mode === 'existing' || jobs.some((j) => (j.debounceKey ?? null) !== null || (j.uniqueKey !== null && (j.uniqueForMs ?? null) !== null));
}

/**
 * One statement's items with the repeats of a (type, debounce key) merged, as a later item
 * replacing an earlier one would leave them: the first item's id with the last item's values.
 * `slot[i]`: the index in `send` of input item `i`.
 */
function mergeDebounced(jobs: readonly JobInsert[]): { send: JobInsert[]; slot: number[] } {
  const send: JobInsert[] = [];
  const slot: number[] = [];
  const at = new Map<string, number>();
  for (const j of jobs) {
    const key = j.debounceKey ?? null;
    const k = key === null ? undefined : `${j.type}\u0000${key}`;
    const seen = k === undefined ? undefined : at.get(k);
    if (seen === undefined) {
      if (k !== undefined) at.set(k, send.length);
      slot.push(send.length);
      send.push(j);
    } else {
      slot.push(seen);
      send[seen] = { ...j, id: send[seen]!.id };
    }
  }
  return { send, slot };
}

/** A row of `JOB_INSERT_FLOW`. */
interface FlowInsertRow {
  ord: string;
  id: string | null;
  inserted: boolean;
  clash: string | null;
}

/** One statement of `JOB_INSERT_FLOW`; appends to `out`. @throws DuplicateJobError (a finished holder, `error`) */
async function insertFlowPart(x: PgExec, c: PgQueryableLike, chunk: readonly JobInsert[], mode: InsertConflict, now: number | null, out: InsertResult): Promise<void> {
  const { send, slot } = mergeDebounced(chunk);
  const rows = await x.rows<FlowInsertRow>(JOB_INSERT_FLOW[mode], [now, ...jobArrays(send, x.channel, true)], c);
  const clash = rows.find((r) => r.clash !== null);
  if (clash !== undefined) throw new DuplicateJobError(clash.clash!);
  const byOrd: (FlowInsertRow | undefined)[] = [];
  for (const r of rows) byOrd[toInt(r.ord) - 1] = r;
  send.forEach((j, k) => {
    if (byOrd[k]?.inserted === true) out.inserted.push(j.id);
  });
  for (const k of slot) out.ids.push(byOrd[k]?.id ?? null);
}

/**
 * Refuses (before anything is inserted) a batch split over several statements in which a job's
 * unique key is held by a finished job within its window (`onConflict: 'error'`).
 * @throws DuplicateJobError
 */
async function checkFinishedHolders(x: PgExec, c: PgQueryableLike, jobs: readonly JobInsert[], now: number | null): Promise<void> {
  const windowed = jobs.filter((j) => j.uniqueKey !== null && (j.uniqueForMs ?? null) !== null);
  if (windowed.length === 0) return;
  const held = await x.rows<{ unique_key: string }>(JOB_FINISHED_HOLDERS, [now, windowed.map((j) => j.uniqueKey), windowed.map((j) => int(j.uniqueForMs))], c);
  if (held.length > 0) throw new DuplicateJobError(held[0]!.unique_key);
}

/** Fills, for `onConflict: 'existing'`, the holders an insert's snapshot missed (committed during it). */
async function fillHolders(x: PgExec, c: PgQueryableLike, jobs: readonly JobInsert[], ids: (string | null)[]): Promise<void> {
  const keys = [...new Set(jobs.filter((j, i) => ids[i] === null && j.uniqueKey !== null).map((j) => j.uniqueKey!))];
  if (keys.length === 0) return;
  const holders = new Map((await x.rows<{ unique_key: string; id: string }>(JOB_UNIQUE_HOLDERS, [keys], c)).map((r) => [r.unique_key, r.id]));
  jobs.forEach((j, i) => {
    if (ids[i] === null && j.uniqueKey !== null) ids[i] = holders.get(j.uniqueKey) ?? null;
  });
}

/** The advisory lock key of one debounce key of a type in a schema (a signed 64-bit integer, as text). */
export function debounceLockKey(schema: string, type: string, key: string): string {
  return createHash('sha1').update(`simple-durable-jobs:debounce:${schema}\u0000${type}\u0000${key}`).digest().readBigInt64BE(0).toString();
}

/** The sorted debounce lock keys of a batch (none without debounce keys). */
function debounceLocks(schema: string, jobs: readonly JobInsert[]): string[] {
  const keys = new Set<string>();
  for (const j of jobs) if ((j.debounceKey ?? null) !== null) keys.add(debounceLockKey(schema, j.type, j.debounceKey!));
  return [...keys].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
}

/**
 * Inserts jobs on `c` (one statement per {@link INSERT_CHUNK} jobs, or fewer when their
 * payloads are large) and notifies their queues. Returns the ids inserted, in input order, and
 * the id each item resolved to (see `Storage.jobInsertMany`). `now` null = the database clock.
 * With debounce keys, `c` must be in a transaction: their locks (`DEBOUNCE_LOCK`) are taken
 * first and held until it ends.
 * @throws DuplicateJobError (`error`)
 */
export async function insertJobs(x: PgExec, c: PgQueryableLike, jobs: readonly JobInsert[], mode: InsertConflict, now: number | null): Promise<InsertResult> {
  const out: InsertResult = { inserted: [], ids: [] };
  const parts = insertParts(jobs);
  const locks = debounceLocks(x.schema, jobs);
  if (locks.length > 0) await x.rows(DEBOUNCE_LOCK, [locks], c);
  // One "now" for the whole batch, even when it takes several statements.
  if (now === null && parts.length > 1) now = toInt((await x.one<{ now: string }>(CLOCK_NOW, [], c))?.now);
  if (mode === 'error' && parts.length > 1) await checkFinishedHolders(x, c, jobs, now);
  for (const chunk of parts) {
    if (needsFlow(chunk, mode)) {
      await insertFlowPart(x, c, chunk, mode, now, out);
      continue;
    }
    const rows = await x.rows<{ id: string }>(mode === 'error' ? JOB_INSERT : JOB_INSERT_SKIP, [now, ...jobArrays(chunk, x.channel, false)], c);
    const got = new Set(rows.map((r) => r.id));
    for (const j of chunk) {
      const ok = got.has(j.id);
      if (ok) out.inserted.push(j.id);
      out.ids.push(ok ? j.id : null);
    }
  }
  if (mode === 'existing' && out.ids.includes(null)) await fillHolders(x, c, jobs, out.ids);
  return out;
}

/** Ids per statement of {@link jobGetMany} (one array parameter; bounds each statement's size). */
export const GET_MANY_CHUNK = 10_000;

/** `Storage.jobGetMany`: one statement per {@link GET_MANY_CHUNK} distinct ids; none for an empty list. */
export async function jobGetMany(x: PgExec, p: { ids: readonly string[] }): Promise<JobRow[]> {
  const unique = [...new Set(p.ids)];
  const out: JobRow[] = [];
  for (let i = 0; i < unique.length; i += GET_MANY_CHUNK) {
    for (const r of await x.rows<JobDbRow>(JOB_GET_MANY, [unique.slice(i, i + GET_MANY_CHUNK)])) out.push(toJobRow(r));
  }
  return out;
}

/**
 * `Storage.jobInsertMany`: one statement (or one transaction of chunks), or the statements on
 * the caller's client `tx`, inside the caller's open transaction.
 * @throws DuplicateJobError, InvalidArgumentError (a `tx` without `query()`)
 */
export async function jobInsertMany(x: PgExec, p: JobInsertManyParams<PgQueryableLike>): Promise<InsertResult> {
  const mode = p.onConflict ?? 'error';
  if (p.tx !== undefined && p.tx !== null) {
    if (typeof (p.tx as Partial<PgQueryableLike>).query !== 'function') throw new InvalidArgumentError('jobInsertMany: tx must be a pg client (an object with query())');
    if (p.jobs.length === 0) return { inserted: [], ids: [] };
    return insertJobs(x, p.tx, p.jobs, mode, x.now());
  }
  if (p.jobs.length === 0) return { inserted: [], ids: [] };
  // One statement on its own; several, or debounce keys to lock first, in one transaction.
  if (insertParts(p.jobs).length === 1 && !p.jobs.some((j) => (j.debounceKey ?? null) !== null)) return insertJobs(x, x.pool, p.jobs, mode, x.now());
  return withTx(x.pool, (c) => insertJobs(x, c, p.jobs, mode, x.now()));
}

/** `Storage.jobGet`. */
export async function jobGet(x: PgExec, p: { id: string }): Promise<JobRow | undefined> {
  const r = await x.one<JobDbRow>(JOB_GET, [p.id]);
  return r === undefined ? undefined : toJobRow(r);
}

/** `Storage.jobCountByStatus`. */
export async function jobCountByStatus(x: PgExec, p: { queue?: string }): Promise<Record<JobStatus, number>> {
  const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
  for (const r of await x.rows<{ status: JobStatus; n: string }>(JOB_COUNT_BY_STATUS, [p.queue ?? null])) counts[r.status] = toInt(r.n);
  return counts;
}

/**
 * `Storage.jobCancel`: one transaction over the whole subtree, with fan-out accounting.
 * Returns the ids cancelled, the job first.
 */
export async function jobCancel(x: PgExec, p: { id: string }): Promise<string[]> {
  return withTx(x.pool, async (c) => {
    const res = await cancelSubtrees(x, c, x.now(), { roots: [p.id] });
    if (res.found === 0) throw new JobNotFoundError(p.id);
    const ids = [...new Set(res.ids)];
    const i = ids.indexOf(p.id);
    if (i > 0) {
      ids.splice(i, 1);
      ids.unshift(p.id);
    }
    return ids;
  });
}

/** Moves a job between pending and paused in one statement; errors name the job's actual status. */
async function jobSetStatus(x: PgExec, id: string, from: 'pending' | 'paused', to: 'paused' | 'pending'): Promise<void> {
  const r = await x.one<{ status: JobStatus | null; n: string }>(JOB_SET_STATUS, [id, from, to, x.channel]);
  if (r !== undefined && toInt(r.n) === 1) return;
  const status = r?.status ?? null;
  if (status === null) throw new JobNotFoundError(id);
  throw new InvalidStateError(to === 'paused' ? cannotPauseMessage(id, status) : cannotResumeMessage(id, status));
}

/**
 * `Storage.jobRetry`: one transaction — the job's fan-out (if it is a child) and the fan-outs
 * of its subtree are locked before the job row, the job goes failed/cancelled → pending and
 * leaves its old outcome's count on that fan-out, then its checkpoints, fan-outs and
 * descendants are dropped so a workflow starts clean; with `fromFailedStep`, they are kept and
 * the workflow resumes where it failed instead (`retry-from-step.ts`).
 * @throws JobNotFoundError, InvalidStateError, DuplicateJobError (its unique key is held again)
 */
export async function jobRetry(x: PgExec, p: { id: string; fromFailedStep?: boolean }): Promise<void> {
  await withTx(x.pool, async (c) => {
    const below = await descendants(x, c, [p.id]);
    await lockFanOutsOf(x, c, [p.id, ...below]);
    const cur = await x.lockJob<{ status: JobStatus }>(JOB_LOCK_FOR_RETRY, [p.id], c);
    if (cur === undefined) throw new JobNotFoundError(p.id);
    if (cur.status !== 'failed' && cur.status !== 'cancelled') {
      throw new InvalidStateError(cannotRetryMessage(p.id, cur.status));
    }
    if (p.fromFailedStep === true) {
      await retryFromFailedStep(x, c, p.id, cur.status);
      return;
    }
    const failed = cur.status === 'failed' ? 1 : 0;
    await x.rows(JOB_RETRY, [x.now(), p.id, x.channel, failed, 1 - failed], c);
    await x.rows(JOB_DROP_WORKFLOW_STATE, [p.id, below], c);
  });
}

/** `Storage.jobPause`. */
export function jobPause(x: PgExec, p: { id: string }): Promise<void> {
  return jobSetStatus(x, p.id, 'pending', 'paused');
}

/** `Storage.jobResume`. */
export function jobResume(x: PgExec, p: { id: string }): Promise<void> {
  return jobSetStatus(x, p.id, 'paused', 'pending');
}

/** `Storage.queueSetPaused`. */
export async function queueSetPaused(x: PgExec, p: { queue: string; paused: boolean }): Promise<void> {
  await x.rows(QUEUE_SET_PAUSED, [x.now(), p.queue, p.paused, x.channel]);
}
