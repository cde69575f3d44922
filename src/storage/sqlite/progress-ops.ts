/**
 * Job progress on SQLite: `jobProgressMany` is one synchronous `BEGIN IMMEDIATE` transaction
 * with one fenced update per job, all at the transaction's one `now`.
 * @internal
 */
import { lastItemPerJob } from '../shared/progress-items.js';
import type { JobProgressManyParams } from '../storage.js';
import { JOB_PROGRESS } from './queries/progress.js';
import type { SqliteContext } from './statements.js';

/** `Storage.jobProgressMany`: per item, the time stored at, or null when its fence failed (or a later item of its job applies). */
export function jobProgressMany(ctx: SqliteContext, p: JobProgressManyParams): (number | null)[] {
  const out: (number | null)[] = p.items.map(() => null);
  const apply = lastItemPerJob(p.items);
  return ctx.write((c, now) => {
    const stmt = c.st(JOB_PROGRESS);
    for (const i of apply) {
      const it = p.items[i]!;
      const changes = stmt.run({ id: it.jobId, workerId: it.workerId, runCount: it.runCount, value: it.value, message: it.message, now }).changes;
      if (changes === 1) out[i] = now;
    }
    return out;
  });
}
