/**
 * Job progress on PostgreSQL: `jobProgressMany` is one fenced statement for every job.
 * @internal
 */
import { lastItemPerJob } from '../shared/progress-items.js';
import type { JobProgressManyParams } from '../storage.js';
import type { PgExec } from './executor.js';
import { JOB_PROGRESS } from './queries/progress.js';
import { toInt } from './rows.js';

/** `Storage.jobProgressMany`: per item, the time stored at, or null when its fence failed (or a later item of its job applies). */
export async function jobProgressMany(x: PgExec, p: JobProgressManyParams): Promise<(number | null)[]> {
  const out: (number | null)[] = p.items.map(() => null);
  const apply = lastItemPerJob(p.items);
  const items = apply.map((i) => p.items[i]!);
  const rows = await x.rows<{ id: string; at: unknown }>(JOB_PROGRESS, [
    x.now(),
    items.map((it) => it.jobId),
    items.map((it) => it.workerId),
    items.map((it) => Math.trunc(it.runCount)),
    items.map((it) => it.value),
    items.map((it) => it.message),
  ]);
  const stored = new Map(rows.map((r) => [r.id, toInt(r.at)]));
  for (const i of apply) out[i] = stored.get(p.items[i]!.jobId) ?? null;
  return out;
}
