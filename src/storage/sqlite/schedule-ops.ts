/**
 * Schedules on SQLite. Writes are one synchronous `BEGIN IMMEDIATE` transaction each
 * (`ctx.write`); reads are single statements.
 * @internal
 */
import type { DbRecord } from '../shared/row-mapping.js';
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
} from './queries/schedules.js';
import { toScheduleRow } from './rows.js';
import type { SqliteContext } from './statements.js';

/** Creates or replaces a schedule (see `Storage.scheduleUpsert`). */
export function scheduleUpsert(ctx: SqliteContext, p: ScheduleUpsertParams): ScheduleUpsertResult {
  return ctx.write((c, now): ScheduleUpsertResult => {
    const r = c.st(SCHEDULE_UPSERT).run({ name: p.name, spec: p.specJson, options: p.optionsJson, nextRunAt: p.nextRunAt, now });
    if (r.changes === 1) return { stored: true };
    const row = c.st(SCHEDULE_LAST_RUN_AT).get(p.name) as { last_run_at: number | bigint } | undefined;
    return { stored: false, lastRunAt: Number(row?.last_run_at) };
  });
}

/** Removes a schedule; true when it existed. */
export function scheduleDelete(ctx: SqliteContext, p: { name: string }): boolean {
  return ctx.write((c) => c.st(SCHEDULE_DELETE).run(p.name).changes > 0);
}

/** Every schedule, by name. */
export function scheduleList(ctx: SqliteContext): ScheduleRow[] {
  return (ctx.read((c) => c.st(SCHEDULE_LIST).all()) as DbRecord[]).map(toScheduleRow);
}

/** Schedules due at the clock's now, earliest first. */
export function scheduleListDue(ctx: SqliteContext, p: { limit: number }): ScheduleRow[] {
  return (ctx.read((c) => c.st(SCHEDULE_LIST_DUE).all({ now: ctx.now(), limit: p.limit })) as DbRecord[]).map(toScheduleRow);
}

/**
 * Compare-and-set fire: moves next_run_at when it still equals the expected value and inserts
 * the slot's jobs (unique clashes skipped). Returns the inserted ids, or null when another
 * scheduler won.
 */
export function scheduleFire(ctx: SqliteContext, p: ScheduleFireParams): string[] | null {
  return ctx.write((c, now) => {
    const r = c.st(SCHEDULE_FIRE).run({ name: p.name, expected: p.expectedNextRunAt, nextRunAt: p.nextRunAt, slotAt: p.slotAt, now });
    if (r.changes !== 1) return null;
    const { inserted } = insertJobs(c, now, p.jobs, 'skip');
    const first = inserted[0];
    if (first !== undefined) c.st(SCHEDULE_SET_LAST_JOB).run({ name: p.name, jobId: first });
    return inserted;
  });
}
