/**
 * Schedules of the PostgreSQL driver. A fire moves the schedule on and inserts its jobs in one
 * transaction.
 * @internal
 */
import type { ScheduleFireParams, ScheduleRow, ScheduleUpsertParams, ScheduleUpsertResult } from '../storage.js';
import { withTx } from './connection.js';
import type { PgExec } from './executor.js';
import { insertJobs } from './job-ops.js';
import { SCHEDULE_DELETE, SCHEDULE_FIRE, SCHEDULE_LAST_RUN_AT, SCHEDULE_LIST, SCHEDULE_LIST_DUE, SCHEDULE_SET_LAST_JOB, SCHEDULE_UPSERT } from './queries/schedules.js';
import { toInt, toScheduleRow, type ScheduleDbRow } from './rows.js';

/** `Storage.scheduleUpsert`. */
export async function scheduleUpsert(x: PgExec, p: ScheduleUpsertParams): Promise<ScheduleUpsertResult> {
  if ((await x.rows(SCHEDULE_UPSERT, [x.now(), p.name, p.specJson, p.optionsJson, Math.trunc(p.nextRunAt)])).length > 0) return { stored: true };
  // Refused: last_run_at is set and no earlier than nextRunAt (a later fire only moves it on).
  const r = await x.one<{ last_run_at: string }>(SCHEDULE_LAST_RUN_AT, [p.name]);
  return { stored: false, lastRunAt: toInt(r?.last_run_at ?? 0) };
}

/** `Storage.scheduleDelete`. */
export async function scheduleDelete(x: PgExec, p: { name: string }): Promise<boolean> {
  return (await x.rows(SCHEDULE_DELETE, [p.name])).length > 0;
}

/** `Storage.scheduleList`. */
export async function scheduleList(x: PgExec): Promise<ScheduleRow[]> {
  return (await x.rows<ScheduleDbRow>(SCHEDULE_LIST)).map(toScheduleRow);
}

/** `Storage.scheduleListDue`. */
export async function scheduleListDue(x: PgExec, p: { limit: number }): Promise<ScheduleRow[]> {
  return (await x.rows<ScheduleDbRow>(SCHEDULE_LIST_DUE, [x.now(), Math.max(0, Math.trunc(p.limit))])).map(toScheduleRow);
}

/** `Storage.scheduleFire`. */
export function scheduleFire(x: PgExec, p: ScheduleFireParams): Promise<string[] | null> {
  return withTx(x.pool, async (c) => {
    const r = await x.one<{ now: string }>(SCHEDULE_FIRE, [x.now(), p.name, Math.trunc(p.expectedNextRunAt), Math.trunc(p.nextRunAt), Math.trunc(p.slotAt)], c);
    if (r === undefined) return null;
    const ids = p.jobs.length === 0 ? [] : (await insertJobs(x, c, p.jobs, 'skip', toInt(r.now))).inserted;
    if (ids.length > 0) await x.rows(SCHEDULE_SET_LAST_JOB, [p.name, ids[0]], c);
    return ids;
  });
}
