/**
 * The front end's client of the dashboard's JSON API: typed reads, and mutations sent the way
 * the server requires (POST, JSON body, the same-site header).
 *
 * The shapes it reads are the library's public types as JSON makes them ({@link Json}): type-only
 * imports, erased by the bundler, so the pages cannot drift from the API they show.
 */
import type { JobPage, QueueInfo, StepInfo, WorkerInfo } from '../../queue/operator-types.js';
import type { ScheduleInfo } from '../../queue/schedule-types.js';
import type { Job, JobCounts, JobStatus } from '../../types.js';

/**
 * What `JSON.stringify` makes of a `T` read back with `JSON.parse`: instants (`Date`) become ISO
 * strings, arrays and objects keep their shape (read-only or not), other values stay.
 */
export type Json<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { -readonly [K in keyof T]: Json<T[K]> }
      : T;

/** A job's status. */
export type Status = JobStatus;
/** Every status, in the order the pages show them. */
export const STATUSES: Status[] = ['pending', 'running', 'waiting', 'paused', 'completed', 'failed', 'cancelled'];

/** A job as the API sends it: fields the dashboard redacts are left out and named in `redacted`. */
export type JobJson = Json<Partial<Job>> & { id: string; redacted?: string[] };

/** A page of jobs. */
export type JobPageJson = Omit<Json<JobPage>, 'jobs'> & { jobs: JobJson[] };

/** A checkpoint (redacted fields named in `redacted`). */
export type StepJson = Json<StepInfo> & { redacted?: string[] };

/** A signal sent to a job (`consumedAt` absent while it is buffered). */
export interface SignalJson {
  seq: number;
  name: string;
  payload?: unknown;
  sentAt: string;
  consumedAt?: string;
  redacted?: string[];
}

/** A queue, with its limits and how full they are. */
export type QueueJson = Json<QueueInfo>;

/** A live worker. */
export type WorkerJson = Json<WorkerInfo>;

/** A schedule, and whether its next fire is overdue (redacted options named in `redacted`). */
export type ScheduleJson = Json<ScheduleInfo> & { overdue: boolean; redacted?: string[] };

/** Counts per status; the server caps them at `countCap` (shown by `countText`, count-text.ts). */
export type Counts = Json<JobCounts>;

/**
 * The throughput series. This and the two below are the dashboard server's own answers
 * (`ThroughputSeries`, `DashboardConfig`, `LiveSnapshot` in src/dashboard/), not public types.
 */
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
  /** Counts (of `stats` and `queues`) are exact up to this; above it they read `countCap + 1`. */
  countCap: number;
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
