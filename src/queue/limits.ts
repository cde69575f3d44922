/**
 * The producer side of flow control: `queue.setQueueLimits()`, `queue.limits()` and the limits
 * part of `queue.queues()`. Type limits are stored by workers (see `worker/limited-claims.ts`).
 * @internal
 */
import { withMigrateHint } from '../core/migrate-hint.js';
import { checkQueueLimits } from '../core/flow.js';
import type { QueueCore } from '../core/queue-core.js';
import { checkQueueName } from '../core/validate.js';
import type { LimitInfo, QueueLimitInfo } from '../flow-types.js';
import type { LimitRow, LimitUsageRow } from '../storage/storage.js';

/** `queue.setQueueLimits()`: stores (replaces) or, with `null`, removes a queue's limits. */
export async function setQueueLimits(core: QueueCore, queue: string, limits: unknown): Promise<void> {
  const name = checkQueueName(queue);
  const v = checkQueueLimits(limits);
  try {
    if (v === null) await core.storage.limitDelete({ scope: 'queue', name });
    else await core.storage.limitSet({ scope: 'queue', name, ...v });
  } catch (e) {
    throw withMigrateHint(e);
  }
  // This process's workers claim under the new limits at once; others within a few seconds.
  for (const w of core.wakers) w.limitsChanged?.();
}

/** A stored limit with its usage (zero usage when the usage read did not see it). */
interface LimitWithUsage {
  row: LimitRow;
  usage: LimitUsageRow | undefined;
}

/** Every stored limit with its usage; `now` is the storage clock, read only when a rate group is blocked. */
async function readLimits(core: QueueCore): Promise<{ limits: LimitWithUsage[]; now: number }> {
  const [rows, usage] = await Promise.all([core.storage.limitList(), core.storage.limitUsage()]).catch((e: unknown) => {
    throw withMigrateHint(e);
  });
  const byKey = new Map(usage.map((u) => [`${u.scope}\u0000${u.name}`, u]));
  const limits = rows.map((row) => ({ row, usage: byKey.get(`${row.scope}\u0000${row.name}`) }));
  const now = limits.some((l) => l.usage?.nextStartAt != null) ? await core.storage.clockNow() : 0;
  return { limits, now };
}

const nextStartIn = (u: LimitUsageRow | undefined, now: number): number => (u?.nextStartAt == null ? 0 : Math.max(0, u.nextStartAt - now));

/** `queue.limits()`: every type and queue limit with how full it is. */
export async function listLimits(core: QueueCore): Promise<LimitInfo[]> {
  const { limits, now } = await readLimits(core);
  return limits.map(({ row, usage: u }) => {
    const info: LimitInfo = {
      scope: row.scope,
      name: row.name,
      running: u?.running ?? 0,
      keysRunning: u?.keysRunning ?? 0,
      keysFull: u?.keysFull ?? 0,
      pending: u?.pending ?? 0,
      nextStartInMs: nextStartIn(u, now),
    };
    if (row.concurrency !== null) info.concurrency = row.concurrency;
    if (row.rateLimit !== null && row.ratePeriodMs !== null) info.rateLimit = { limit: row.rateLimit, period: row.ratePeriodMs };
    return info;
  });
}

/** The queue limits with their usage, by queue name (for `queue.queues()`). */
export async function queueLimitInfos(core: QueueCore): Promise<Map<string, QueueLimitInfo>> {
  const { limits, now } = await readLimits(core);
  const out = new Map<string, QueueLimitInfo>();
  for (const { row, usage: u } of limits) {
    if (row.scope !== 'queue') continue;
    const info: QueueLimitInfo = {};
    if (row.concurrency !== null) info.concurrency = { limit: row.concurrency, running: u?.running ?? 0 };
    if (row.rateLimit !== null && row.ratePeriodMs !== null) info.rateLimit = { limit: row.rateLimit, period: row.ratePeriodMs, nextStartInMs: nextStartIn(u, now) };
    out.set(row.name, info);
  }
  return out;
}
