/**
 * Job progress on MySQL/MariaDB: `jobProgressMany` is one short transaction that locks the jobs
 * whose fences hold (in id order, with the database now) and updates them, in as many statements
 * as the server's packet size needs (usually one).
 * @internal
 */
import { lastItemPerJob } from '../shared/progress-items.js';
import type { JobProgressItem, JobProgressManyParams } from '../storage.js';
import { select, write } from './connection.js';
import type { DriverContext } from './driver-context.js';
import { PROGRESS_LOCK, progressUpdateSql } from './queries/progress.js';
import { num, str } from './rows.js';
import { ROW_ALLOWANCE, chunkBySize, textBytes } from './statement-budget.js';

/** `Storage.jobProgressMany`: per item, the time stored at, or null when its fence failed (or a later item of its job applies). */
export async function jobProgressMany(ctx: DriverContext, p: JobProgressManyParams): Promise<(number | null)[]> {
  const apply = lastItemPerJob(p.items);
  const items = apply.map((i) => p.items[i]!);
  const stored = await ctx.db.tx(async (ex) => {
    const locked = await select(ex, PROGRESS_LOCK, [ctx.now(), items.map((it) => it.jobId), items.map((it) => [it.jobId, it.workerId, it.runCount])]);
    const first = locked[0];
    if (first === undefined) return new Map<string, number>();
    const at = num(first['now_ms']);
    const held = new Set(locked.map((r) => str(r['id'])));
    const writing = items.filter((it) => held.has(it.jobId));
    for (const chunk of await chunkBySize(ctx.db, ex, writing, rowBytes)) {
      const values = [...chunk.flatMap((it) => [it.jobId, it.value]), ...chunk.flatMap((it) => [it.jobId, it.message]), at, chunk.map((it) => it.jobId)];
      await write(ex, progressUpdateSql(chunk.length), values);
    }
    return new Map(writing.map((it) => [it.jobId, at]));
  });
  const out: (number | null)[] = p.items.map(() => null);
  for (const i of apply) out[i] = stored.get(p.items[i]!.jobId) ?? null;
  return out;
}

/** Upper bound of one item's share of an update's SQL text. */
function rowBytes(it: JobProgressItem): number {
  return ROW_ALLOWANCE + 2 * textBytes(it.jobId) + textBytes(it.message);
}
