/**
 * MySQL/MariaDB statements of the bounded counts (`jobCountByStatusCapped`,
 * `queueSummaryCapped`). A count is `COUNT(*)` over `SELECT 1 ... LIMIT ?` (cap + 1) on an index
 * led by the status (`sdj_jobs_wake`: status, wake_at, queue, ...) or by the queue and status
 * (`sdj_jobs_claim`: queue, status, limited, priority DESC, run_at, id), both forced: one range,
 * read in the index alone, stopped at the limit. So a count reads at most cap + 1 entries,
 * whatever the number of jobs kept. Values are bound; the statements built here repeat a fixed
 * fragment per status or per queue.
 * @internal
 */
import { NOW } from './common.js';

/** A statement and its values. */
export interface CountStatement {
  sql: string;
  values: unknown[];
}

/** The statuses counted, in the order of the columns. */
const STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled', 'paused'] as const;

/** Each status (of `only`, default all) over all queues: one range of `sdj_jobs_wake` each. Result: one row, a column per status. */
export function jobCountCapped(limit: number, only: readonly string[] = STATUSES): CountStatement {
  const statuses = STATUSES.filter((s) => only.includes(s));
  const parts = statuses.map((s) => `(SELECT COUNT(*) FROM (SELECT 1 FROM sdj_jobs FORCE INDEX (sdj_jobs_wake) WHERE status = '${s}' LIMIT ?) t) AS ${s}`);
  return { sql: `SELECT ${parts.join(', ')}`, values: statuses.map(() => limit) };
}

/** The count of one (queue, status[, limited]) range of `sdj_jobs_claim`, up to the limit; pushes its values. */
function inQueue(values: unknown[], queue: string, status: string, limit: number, limited?: 0 | 1): string {
  values.push(queue, limit);
  const l = limited === undefined ? '' : ` AND limited = ${limited}`;
  return `(SELECT COUNT(*) FROM (SELECT 1 FROM sdj_jobs FORCE INDEX (sdj_jobs_claim) WHERE queue = ? AND status = '${status}'${l} LIMIT ?) t)`;
}

/** Each status (of `only`, default all) in one queue: one range of `sdj_jobs_claim` each. Result: as {@link jobCountCapped}. */
export function jobCountCappedInQueue(queue: string, limit: number, only: readonly string[] = STATUSES): CountStatement {
  const values: unknown[] = [];
  const parts = STATUSES.filter((s) => only.includes(s)).map((s) => `${inQueue(values, queue, s, limit)} AS ${s}`);
  return { sql: `SELECT ${parts.join(', ')}`, values };
}

/** The first queue name of the jobs, in order: one probe of `sdj_jobs_claim`. Params: none. Result: `{ queue }` or nothing. */
export const QUEUE_FIRST = 'SELECT queue FROM sdj_jobs FORCE INDEX (sdj_jobs_claim) ORDER BY queue LIMIT 1';

/**
 * The next queue name after ? (a skip scan, one probe per queue: the driver calls it from
 * queue to queue, since a correlated range is not used by every server). Params: queue.
 * Result: `{ queue }` or nothing.
 */
export const QUEUE_NEXT = 'SELECT queue FROM sdj_jobs FORCE INDEX (sdj_jobs_claim) WHERE queue > ? ORDER BY queue LIMIT 1';

/** The queues paused by `queueSetPaused`. Params: none. Result: `{ name }[]`. */
export const QUEUES_PAUSED = 'SELECT name FROM sdj_queues WHERE paused = 1';

/**
 * Per queue given: its capped counts (pending not limited and limited apart, running, waiting,
 * paused, failed: one range of `sdj_jobs_claim` each) and its paused flag, plus now (the
 * injected clock or the database's). Result: `{ name, pending0, pending1, running, waiting,
 * paused_jobs, failed, paused, now }[]`, a row per queue.
 */
export function queueCountsCapped(queues: readonly string[], limit: number, now: number | null): CountStatement {
  const values: unknown[] = [];
  const rows = queues.map((q) => {
    values.push(q);
    const cols = [
      `${inQueue(values, q, 'pending', limit, 0)} AS pending0`,
      `${inQueue(values, q, 'pending', limit, 1)} AS pending1`,
      `${inQueue(values, q, 'running', limit)} AS running`,
      `${inQueue(values, q, 'waiting', limit)} AS waiting`,
      `${inQueue(values, q, 'paused', limit)} AS paused_jobs`,
      `${inQueue(values, q, 'failed', limit)} AS failed`,
    ];
    values.push(q, now);
    return `SELECT ? AS name, ${cols.join(', ')}, COALESCE((SELECT paused FROM sdj_queues WHERE name = ?), 0) AS paused, ${NOW} AS now`;
  });
  return { sql: rows.join(' UNION ALL '), values };
}

/**
 * The highest priority in use among a queue's pending jobs (limited or not), below a bound or
 * not, with the smallest run_at at that priority: two probes of `sdj_jobs_claim` (queue, status,
 * limited, priority DESC, run_at, id). The driver walks the priorities down with it, so a backlog
 * of any size costs a few probes. Params: queue, limited, queue, limited[, priority bound].
 * Result: `{ priority, run_at }` or nothing.
 */
export function oldestAtPriority(below: boolean): string {
  return (
    'SELECT p.priority, (SELECT j.run_at FROM sdj_jobs j FORCE INDEX (sdj_jobs_claim) ' +
    "WHERE j.queue = ? AND j.status = 'pending' AND j.limited = ? AND j.priority = p.priority ORDER BY j.run_at LIMIT 1) AS run_at " +
    "FROM (SELECT priority FROM sdj_jobs FORCE INDEX (sdj_jobs_claim) WHERE queue = ? AND status = 'pending' AND limited = ?" +
    `${below ? ' AND priority < ?' : ''} ORDER BY priority DESC LIMIT 1) p`
  );
}
