/**
 * From query strings and JSON bodies to the Queue API's arguments, and from its results to what
 * the dashboard sends, with the payloads the `redact` option hides taken out.
 * @module
 */
import { InvalidArgumentError, JOB_STATUSES, type Job, type JobFilterOptions, type JobStatus, type ListJobsOptions, type ScheduleInfo, type StepInfo } from '../index.js';
import type { RedactOptions } from './options.js';

/** A job as the dashboard sends it: the `Job`, less what is redacted, naming what was. */
export type DashboardJob = Partial<Job> & { id: string; redacted?: string[] };

/** The filter fields the dashboard accepts (a query string or a bulk action's body). */
const FILTER_FIELDS = ['status', 'queue', 'type', 'tenant', 'parentId', 'search', 'createdAfter', 'createdBefore'] as const;

/** Reads a filter from string fields (query parameters or a JSON body's `filter`). @throws InvalidArgumentError */
export function filterOf(get: (name: string) => unknown, redact: Required<RedactOptions>): JobFilterOptions {
  const f: { -readonly [K in keyof JobFilterOptions]: JobFilterOptions[K] } = {};
  for (const name of FILTER_FIELDS) {
    const raw = get(name);
    if (raw === undefined || raw === null || raw === '') continue;
    if (typeof raw !== 'string') throw new InvalidArgumentError(`filter field ${name} must be a string`);
    switch (name) {
      case 'status':
        f.status = statusesOf(raw);
        break;
      case 'createdAfter':
      case 'createdBefore':
        f[name] = dateOf(raw, name);
        break;
      case 'search':
        if (redact.errors) throw new InvalidArgumentError('search is off: this dashboard hides error texts, which search matches');
        f.search = raw;
        break;
      case 'queue':
      case 'type':
      case 'tenant':
      case 'parentId':
        f[name] = raw;
        break;
    }
  }
  return f;
}

/** Reads `listJobs` options from a URL's query. @throws InvalidArgumentError */
export function listOptionsOf(query: URLSearchParams, redact: Required<RedactOptions>): ListJobsOptions {
  const o: ListJobsOptions = filterOf((n) => query.get(n) ?? undefined, redact);
  const limit = query.get('limit');
  if (limit !== null && limit !== '') {
    if (!/^\d{1,4}$/.test(limit)) throw new InvalidArgumentError('limit must be a whole number from 1 to 500');
    o.limit = Number(limit);
  }
  const cursor = query.get('cursor');
  if (cursor !== null && cursor !== '') o.cursor = cursor;
  const order = query.get('order');
  if (order === 'asc' || order === 'desc') o.order = order;
  else if (order !== null && order !== '') throw new InvalidArgumentError('order must be asc or desc');
  return o;
}

function statusesOf(raw: string): JobStatus[] {
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of list) {
    if (!(JOB_STATUSES as readonly string[]).includes(s)) throw new InvalidArgumentError(`unknown status "${s}" (expected ${JOB_STATUSES.join(', ')})`);
  }
  return list as JobStatus[];
}

function dateOf(raw: string, name: string): Date {
  const d = new Date(raw);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`${name} must be an ISO date, got ${JSON.stringify(raw.slice(0, 40))}`);
  return d;
}

/** The job with the redacted payloads removed. */
export function jobOut(job: Job, redact: Required<RedactOptions>): DashboardJob {
  const out: Record<string, unknown> = { ...job };
  const hidden: string[] = [];
  const hide = (key: string): void => {
    if (key in out) hidden.push(key);
    delete out[key];
  };
  if (redact.args) {
    hide('args');
    hide('meta');
  }
  if (redact.results) {
    hide('result');
    if (job.progress !== null && job.progress.message !== null) {
      out['progress'] = { ...job.progress, message: null };
      hidden.push('progress.message');
    }
  }
  if (redact.errors) hide('lastError');
  if (hidden.length > 0) out['redacted'] = hidden;
  return out as DashboardJob;
}

/** A checkpoint with the redacted payloads removed. */
export function stepOut(step: StepInfo, redact: Required<RedactOptions>): StepInfo & { redacted?: string[] } {
  const out: StepInfo & { redacted?: string[] } = { ...step };
  const hidden: string[] = [];
  // A signal step's output is the signal's payload (an input), any other step's is a result.
  const isInput = step.name.startsWith('signal:');
  if ('output' in out && ((isInput && redact.args) || (!isInput && redact.results))) {
    delete out.output;
    hidden.push('output');
  }
  if ('error' in out && redact.errors) {
    delete out.error;
    hidden.push('error');
  }
  if (hidden.length > 0) out.redacted = hidden;
  return out;
}

/** How long past its next fire time a schedule is shown as overdue. */
export const OVERDUE_AFTER_MS = 60_000;

/** A schedule as the dashboard sends it: redacted args, and whether its fire is overdue. */
export function scheduleOut(s: ScheduleInfo, redact: Required<RedactOptions>, now: number): Record<string, unknown> {
  const options: Record<string, unknown> = { ...s.options };
  const out: Record<string, unknown> = { ...s, options, overdue: s.nextRunAt.getTime() < now - OVERDUE_AFTER_MS };
  if (redact.args) {
    delete options['args'];
    delete options['meta'];
    out['redacted'] = ['options.args', 'options.meta'];
  }
  return out;
}

/** Reads a JSON body's object (`{}` for an empty body). @throws InvalidArgumentError */
export async function bodyOf(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('the request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('the request body must be a JSON object');
  return v as Record<string, unknown>;
}
