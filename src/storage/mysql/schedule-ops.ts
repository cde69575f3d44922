/**
 * Schedules of the MySQL/MariaDB driver.
 * @internal
 */
import type { ScheduleFireParams, ScheduleRow, ScheduleUpsertParams, ScheduleUpsertResult } from '../storage.js';
import { select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { insertJobs } from './job-insert.js';
import { num, str, toScheduleRow } from './rows.js';
import {
  SCHEDULE_AFTER_UPSERT,
  SCHEDULE_DELETE,
  SCHEDULE_FIRE_CAS,
  SCHEDULE_LIST,
  SCHEDULE_LIST_DUE,
  SCHEDULE_SET_LAST_JOB,
  SCHEDULE_UPSERT,
} from './queries/schedules.js';

/**
 * `Storage.scheduleUpsert`: the upsert decides against the stored row (locked by it), and a read
 * in the same transaction tells whether the definition was taken (the stored spec is ours).
 */
export async function scheduleUpsert(ctx: DriverContext, p: ScheduleUpsertParams): Promise<ScheduleUpsertResult> {
  const now = ctx.now();
  const { specJson: spec, nextRunAt: next } = p;
  return ctx.db.tx(async (ex) => {
    await write(ex, SCHEDULE_UPSERT, [p.name, spec, p.optionsJson, next, now, now, spec, next, next, spec, next, p.optionsJson, spec, next, now, spec, next, spec]);
    const [row] = await select(ex, SCHEDULE_AFTER_UPSERT, [p.name]);
    if (row === undefined || str(row['spec']) === spec) return { stored: true };
    return { stored: false, lastRunAt: num(row['last_run_at']) };
  });
}

/** `Storage.scheduleDelete`. */
export async function scheduleDelete(ctx: DriverContext, p: { name: string }): Promise<boolean> {
  const name = p.name;
  return (await ctx.db.autocommit((ex) => write(ex, SCHEDULE_DELETE, [name]))) > 0;
}

/** `Storage.scheduleList`. */
export async function scheduleList(ctx: DriverContext): Promise<ScheduleRow[]> {
  return (await select(ctx.db.pool, SCHEDULE_LIST)).map(toScheduleRow);
}

/** `Storage.scheduleListDue`. */
export async function scheduleListDue(ctx: DriverContext, p: { limit: number }): Promise<ScheduleRow[]> {
  if (p.limit < 1) return [];
  return (await select(ctx.db.pool, SCHEDULE_LIST_DUE, [ctx.now(), Math.floor(p.limit)])).map(toScheduleRow);
}

/** `Storage.scheduleFire`: compare-and-set of next_run_at, then the slot's jobs (clashes skipped). */
export async function scheduleFire(ctx: DriverContext, p: ScheduleFireParams): Promise<string[] | null> {
  return ctx.db.tx(async (ex) => {
    const now = ctx.now();
    const won = await write(ex, SCHEDULE_FIRE_CAS, [p.nextRunAt, p.slotAt, now, p.name, p.expectedNextRunAt]);
    if (won === 0) return null;
    const { inserted } = await insertJobs(ex, now, p.jobs, 'skip');
    if (inserted[0] !== undefined) await write(ex, SCHEDULE_SET_LAST_JOB, [inserted[0], p.name]);
    return inserted;
  });
}
