/**
 * Schedules on SQLite. Writes run inside the caller's `BEGIN IMMEDIATE`
 * transaction.
 * @internal
 */
import type { ScheduleFireParams, ScheduleRow, ScheduleUpsertParams, ScheduleUpsertResult } from '../storage.js';
import { insertJobs } from './job-ops.js';
import {
  SCHEDULE_DELETE,
  SCHEDULE_FIRE,
  SCHEDULE_LAST_RUN_AT,
  SCHEDULE_LIST,
  SCHEDULE_LIST_DUE,
  SCHEDULE_SET_LAST_JOB,
  SCHEDULE_UPSERT,
} from './queries/admin.js';
import { toScheduleRow, type ScheduleDbRow } from './rows.js';
import type { Statements } from './statements.js';

/** Creates or replaces a schedule (see `Storage.scheduleUpsert`). */
export function scheduleUpsert(c: Statements, now: number, p: ScheduleUpsertParams): ScheduleUpsertResult {
  const r = c.st(SCHEDULE_UPSERT).run({ name: p.name, spec: p.specJson, options: p.optionsJson, nextRunAt: p.nextRunAt, now });
  if (r.changes === 1) return { stored: true };
  const row = c.st(SCHEDULE_LAST_RUN_AT).get(p.name) as { last_run_at: number } | undefined;
  return { stored: false, lastRunAt: Number(row?.last_run_at) };
}

/** Removes a schedule; true when it existed. */
export function scheduleDelete(c: Statements, name: string): boolean {
  return c.st(SCHEDULE_DELETE).run(name).changes > 0;
}

/** Every schedule, by name. */
export function scheduleList(c: Statements): ScheduleRow[] {
  return (c.st(SCHEDULE_LIST).all() as ScheduleDbRow[]).map(toScheduleRow);
}

/** Schedules due at `now`, earliest first. */
export function scheduleListDue(c: Statements, now: number, limit: number): ScheduleRow[] {
  if (limit < 1) return [];
  return (c.st(SCHEDULE_LIST_DUE).all({ now, limit }) as ScheduleDbRow[]).map(toScheduleRow);
}

/**
 * Compare-and-set fire: moves next_run_at when it still equals the expected value and inserts
 * the slot's jobs (unique clashes skipped). Returns the inserted ids, or null when another
 * scheduler won.
 */
export function scheduleFire(c: Statements, now: number, p: ScheduleFireParams): string[] | null {
  const r = c.st(SCHEDULE_FIRE).run({ name: p.name, expected: p.expectedNextRunAt, nextRunAt: p.nextRunAt, slotAt: p.slotAt, now });
  if (r.changes !== 1) return null;
  const inserted = insertJobs(c, now, p.jobs, 'skip');
  const first = inserted[0];
  if (first !== undefined) c.st(SCHEDULE_SET_LAST_JOB).run({ name: p.name, jobId: first });
  return inserted;
}

