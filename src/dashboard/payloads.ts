/**
 * From query strings and JSON bodies to the Queue API's arguments, and from its results to what
 * the dashboard sends, with the payloads the `redact` option hides taken out.
 * @module
 */
import { InvalidArgumentError, JOB_STATUSES, PayloadTooLargeError, type Job, type JobFilterOptions, type JobStatus, type ListJobsOptions, type ScheduleInfo, type SignalInfo, type StepInfo } from '../index.js';
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

/**
 * The scan budget of the jobs page (`listJobs({ scanLimit })`): a filter few jobs match reads
 * at most this many jobs per request, and the page offers to continue. Measured at a million
 * jobs (docs/dashboard.md, "Large databases"): 36 to 116 ms a request across the drivers, where
 * an unbounded walk took up to seconds; 20,000 cost less per request but left common filters'
 * pages empty behind a backlog of newer jobs.
 */
export const LIST_SCAN_LIMIT = 50_000;

/** Reads `listJobs` options from a URL's query, with the page's scan budget. @throws InvalidArgumentError */
export function listOptionsOf(query: URLSearchParams, redact: Required<RedactOptions>): ListJobsOptions {
  const o: ListJobsOptions = filterOf((n) => query.get(n) ?? undefined, redact);
  o.scanLimit = LIST_SCAN_LIMIT;
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

/** A signal with its payload removed when args are redacted (a signal's payload is an input). */
export function signalOut(signal: SignalInfo, redact: Required<RedactOptions>): SignalInfo & { redacted?: string[] } {
  if (!redact.args || !('payload' in signal)) return signal;
  const { payload: _, ...rest } = signal;
  return { ...rest, redacted: ['payload'] };
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

/** The largest request body a mutation may send (1 MiB); a larger one is refused with 413. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** How deep a request body's arrays and objects may nest. */
export const MAX_BODY_DEPTH = 64;

/** Bodies already read by a route's guard, by request (a body can be read once). */
const readBodies = new WeakMap<Request, string>();

/**
 * The request's body as text, reading no more than {@link MAX_BODY_BYTES}, whether or not the
 * request says its length; a body read before for the same request is not read again.
 * @throws PayloadTooLargeError (413) for a larger body
 */
export async function bodyTextOf(request: Request): Promise<string> {
  const known = readBodies.get(request);
  if (known !== undefined) return known;
  const declared = Number(request.headers.get('content-length') ?? 0);
  if (declared > MAX_BODY_BYTES) throw new PayloadTooLargeError('the request body', declared, MAX_BODY_BYTES);
  const text = await textOf(request);
  readBodies.set(request, text);
  return text;
}

/**
 * Reads a JSON body's object (`{}` for an empty body), as {@link bodyTextOf} reads it.
 * @throws PayloadTooLargeError (413) for a larger body; InvalidArgumentError for one that is
 * not a JSON object or nests deeper than {@link MAX_BODY_DEPTH}
 */
export async function bodyOf(request: Request): Promise<Record<string, unknown>> {
  const text = await bodyTextOf(request);
  if (text.trim() === '') return {};
  if (tooDeep(text)) throw new InvalidArgumentError(`the request body nests deeper than ${MAX_BODY_DEPTH} levels`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('the request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('the request body must be a JSON object');
  return v as Record<string, unknown>;
}

/** The body as text, read chunk by chunk and given up as soon as it passes the limit. */
async function textOf(request: Request): Promise<string> {
  if (request.body === null) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw new PayloadTooLargeError('the request body', size, MAX_BODY_BYTES);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Whether JSON text nests arrays and objects deeper than {@link MAX_BODY_DEPTH} (strings skipped). */
function tooDeep(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_BODY_DEPTH) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
