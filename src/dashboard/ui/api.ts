/**
 * The front end's client of the dashboard's JSON API: typed reads, and mutations sent the way
 * the server requires (POST, JSON body, the same-site header).
 */

/** A job's status. */
export type Status = 'pending' | 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled' | 'paused';
/** Every status, in the order the pages show them. */
export const STATUSES: Status[] = ['pending', 'running', 'waiting', 'paused', 'completed', 'failed', 'cancelled'];

/** A job as the API sends it (instants are ISO strings). */
export interface JobJson {
  id: string;
  type?: string;
  queue?: string;
  args?: unknown;
  status?: Status;
  priority?: number;
  attempt?: number;
  maxRetries?: number;
  runAt?: string;
  createdAt?: string;
  startedAt?: string;
  completedAt?: string;
  result?: unknown;
  lastError?: string;
  parentId?: string;
  tenant?: string;
  meta?: Record<string, unknown>;
  timeout?: number;
  unique?: string;
  progress?: { value: number; message: string | null; at: string } | null;
  redacted?: string[];
}

/** A page of jobs. */
export interface JobPageJson {
  jobs: JobJson[];
  nextCursor?: string;
}

/** A checkpoint. */
export interface StepJson {
  index: number;
  name: string;
  status: 'completed' | 'failed' | 'waiting';
  output?: unknown;
  error?: string;
  at: string;
  redacted?: string[];
}

/** A queue. */
export interface QueueJson {
  name: string;
  paused: boolean;
  pending: number;
  running: number;
  waiting: number;
  failed: number;
  pausedJobs: number;
  oldestPendingAgeMs?: number;
  limits?: { concurrency?: { limit: number; running: number }; rateLimit?: { limit: number; period: number; nextStartInMs: number } };
}

/** A live worker. */
export interface WorkerJson {
  id: string;
  name: string;
  host: string;
  pid: number;
  queues: string[];
  running: number;
  startedAt: string;
  lastSeenAt: string;
}

/** A schedule. */
export interface ScheduleJson {
  name: string;
  type: string;
  description: string;
  nextRunAt: string;
  lastRunAt?: string;
  lastJobId?: string;
  overdue: boolean;
  options: { queue?: string };
}

/** Counts per status. */
export type Counts = Record<Status, number>;

/** The throughput series. */
export interface SeriesJson {
  at: number[];
  completed: number[];
  failed: number[];
  retried: number[];
}

/** What `api/config` says. */
export interface ConfigJson {
  apiVersion: number;
  readOnly: boolean;
  redact: { args: boolean; results: boolean; errors: boolean };
  pollInterval: number;
}

/** A live snapshot. */
export interface SnapshotJson {
  version: number;
  at: number;
  stats: Counts;
  queues: QueueJson[];
  changed: string[];
  changedOverflow: boolean;
  error?: string;
}

/** An error the API answered with. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The API's base URL: `api/` beside the page (the page is served at `<basePath>/`). */
export function apiBase(): string {
  return new URL('api/', `${location.origin}${location.pathname}`).href;
}

async function answer<T>(r: Response): Promise<T> {
  const body = (await r.json().catch(() => undefined)) as { error?: { code: string; message: string } } | undefined;
  if (!r.ok) throw new ApiError(r.status, body?.error?.code ?? 'HTTP', body?.error?.message ?? `HTTP ${r.status}`);
  return body as T;
}

/** GET `api/<path>` with an optional query. */
export async function get<T>(path: string, query?: Record<string, string | undefined>): Promise<T> {
  const url = new URL(path, apiBase());
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, v);
  return answer<T>(await fetch(url, { headers: { accept: 'application/json' } }));
}

/** POST `api/<path>` with a JSON body and the dashboard's same-site header. */
export async function post<T = { ok: true }>(path: string, body: unknown = {}): Promise<T> {
  const r = await fetch(new URL(path, apiBase()), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-sdj-dashboard': '1', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  return answer<T>(r);
}
