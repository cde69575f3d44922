/**
 * Which job filters `jobListScan` keeps to a scan budget, once for every driver and for the
 * queue facade (re-exported by `storage.ts`).
 * @module
 */
import type { JobFilter } from '../operator-rows.js';

/**
 * Whether `jobListScan` keeps to its scan budget for this filter: when it names a queue, a
 * type, a tenant, a search or creation bounds — tests no index walked in id order answers, so
 * a value few jobs match would otherwise have the listing read every job after the cursor.
 * Not for a parent or a fan-out (their children are read through their own index), nor for no
 * filter (every job matches) or statuses alone (read through the index or partition holding
 * them, or, on SQLite and MySQL/MariaDB, through the primary key only when more than 5,000
 * jobs have them): those are listed as `jobList` lists them.
 */
export function scanBudgetApplies(f: JobFilter): boolean {
  if (f.parentId !== undefined || f.fanOutId !== undefined) return false;
  return f.queue !== undefined || f.type !== undefined || f.tenant !== undefined || f.search !== undefined || f.createdAfter !== undefined || f.createdBefore !== undefined;
}
