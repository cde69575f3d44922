/**
 * The WHERE clause of a job filter (`jobList`, `jobCount`), field by field, once for every
 * driver: each dialect says how it binds a value and writes each kind of test; this walks the
 * filter fields given, in a fixed order, so a new field is added in one place.
 * @internal
 */
import type { JobFilter } from '../storage.js';

/** How one dialect writes each test of a filter. Each method binds its values itself. @internal */
export interface FilterDialect {
  /** The tests of a non-empty list of distinct statuses. */
  statuses(statuses: string[]): string[];
  /** An empty status list: matches nothing. */
  readonly nothing: string;
  /** No test at all: matches everything. */
  readonly everything: string;
  /** `column` equals `value` (`exact`: free text, compared with its trailing spaces). */
  equal(column: string, value: string, exact: boolean): string;
  /** Case-insensitive literal substring of `type` or `last_error`. */
  search(text: string): string;
  /** `created_at` strictly after (`>`) or before (`<`) `ms`. */
  created(op: '>' | '<', ms: number): string;
}

/** The conditions of `f`, ANDed (`d.everything` when none). @internal */
export function filterConditions(f: JobFilter, d: FilterDialect): string {
  const conds: string[] = [];
  if (f.statuses !== undefined) {
    const statuses = [...new Set(f.statuses)];
    conds.push(...(statuses.length === 0 ? [d.nothing] : d.statuses(statuses)));
  }
  if (f.queue !== undefined) conds.push(d.equal('queue', f.queue, false));
  if (f.type !== undefined) conds.push(d.equal('type', f.type, true));
  if (f.tenant !== undefined) conds.push(d.equal('tenant', f.tenant, true));
  if (f.parentId !== undefined) conds.push(d.equal('parent_id', f.parentId, false));
  if (f.fanOutId !== undefined) conds.push(d.equal('fan_out_id', f.fanOutId, false));
  if (f.search !== undefined) conds.push(d.search(f.search));
  if (f.createdAfter !== undefined) conds.push(d.created('>', Math.trunc(f.createdAfter)));
  if (f.createdBefore !== undefined) conds.push(d.created('<', Math.trunc(f.createdBefore)));
  return conds.length === 0 ? d.everything : conds.join(' AND ');
}
