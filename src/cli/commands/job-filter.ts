/**
 * The job filter options shared by `sdj jobs list` and the bulk actions, and the job table.
 * @module
 */
import { Option, type Command } from 'commander';
import type { Job, JobStatus, Queue } from '../../index.js';
import { shownText } from '../encryption.js';
import { relativeTime, shorten, statusStyle, table, type Styler } from '../format.js';
import { parseDuration, parseStatuses } from '../options.js';

/** The filter fields of `queue.listJobs()` and the bulk actions. */
export type JobFilter = Parameters<Queue['retryJobs']>[0];

/** Adds `--status`, `--queue`, `--type`, `--tenant`, `--search`, `--parent` and `--since` to a command. */
export function addFilterOptions(cmd: Command, statusHelp: string): Command {
  return cmd
    .addOption(new Option('--status <statuses>', statusHelp).argParser(parseStatuses))
    .option('--queue <queue>', 'only jobs of this queue')
    .option('--type <type>', 'only jobs of this type')
    .option('--tenant <tenant>', 'only jobs of this tenant')
    .option('--search <text>', 'only jobs whose last error or type contains this text (case-insensitive)')
    .option('--parent <id>', 'only the sub-jobs of this job')
    .addOption(new Option('--since <duration>', 'only jobs created within this long (30s, 15m, 12h, 7d)').argParser(parseDuration));
}

/** The filter the options describe; `now` anchors `--since`. */
export function filterFrom(options: Record<string, unknown>, now: number): JobFilter {
  const f: JobFilter = {};
  const statuses = options['status'] as JobStatus[] | undefined;
  if (statuses !== undefined) f.status = statuses;
  const text = (key: string): string | undefined => options[key] as string | undefined;
  const queue = text('queue');
  if (queue !== undefined) f.queue = queue;
  const type = text('type');
  if (type !== undefined) f.type = type;
  const tenant = text('tenant');
  if (tenant !== undefined) f.tenant = tenant;
  const search = text('search');
  if (search !== undefined) f.search = search;
  const parent = text('parent');
  if (parent !== undefined) f.parentId = parent;
  const since = options['since'] as number | undefined;
  if (since !== undefined) f.createdAfter = new Date(now - since);
  return f;
}

/** Whether any filter option was given. */
export function hasFilter(options: Record<string, unknown>): boolean {
  return ['status', 'queue', 'type', 'tenant', 'search', 'parent', 'since'].some((k) => options[k] !== undefined);
}

/** Jobs as a table: id, type, queue, status, attempt, created, last error. */
export function jobTable(jobs: readonly Job[], now: number, style: Styler): string {
  const rows = jobs.map((j) => [
    j.id,
    j.type,
    j.queue,
    { text: j.status, style: statusStyle(j.status) },
    `${j.attempt}/${j.maxRetries + 1}`,
    relativeTime(j.createdAt, now),
    shorten(shownText(j.lastError), 60),
  ]);
  return table(
    [{ header: 'ID' }, { header: 'TYPE' }, { header: 'QUEUE' }, { header: 'STATUS' }, { header: 'ATTEMPT', align: 'right' }, { header: 'CREATED' }, { header: 'LAST ERROR' }],
    rows,
    style,
  );
}
