/**
 * Fleet events as feed rows and back. An event is stored as JSON text: the event with its `Date`
 * fields (at the top level, in `job`, and one level below `job`, e.g. `job.progress.at`) written
 * as epoch ms and their paths listed, so decoding gives back `Date`s exactly where they were. User
 * payloads (`args`, `result`, `meta`) are copied as JSON, never searched for dates.
 *
 * Bounds: error texts (`error`, `job.lastError`) go through `storableErrorText` (at most 8192
 * characters, NUL and lone surrogates replaced, as stored on the job itself); an event whose JSON
 * would exceed {@link MAX_EVENT_BYTES} loses `job.args`, `job.result` and `job.meta` (decoded as
 * `undefined`, absent and `{}`). Any other text — NUL, lone surrogates included — survives as a
 * JSON escape.
 * @internal
 */
import { storableErrorText } from '../internal/error-text.js';
import type { EventAppendItem, EventRow } from '../storage/storage.js';
import type { FleetEvent, FleetGapEvent, FleetJobEvent, JobEvent } from '../types.js';

/** Largest encoded event (bytes of JSON text) carrying the job's args, result and meta. @internal */
export const MAX_EVENT_BYTES = 32 * 1024;

/** Keys holding user payloads: copied as they are, never walked. */
const USER_PAYLOAD = new Set(['args', 'result', 'meta']);
/** Keys holding error texts: bounded like stored errors. */
const ERROR_TEXT = new Set(['error', 'lastError']);

/** The stored form: the event with dates as ms (`d`: their paths), `x` when user payloads were left out. */
interface Envelope {
  e: Record<string, unknown>;
  d: string[];
  x?: 1;
}

/** Whether an event is relayed to the fleet: job events only (worker errors and prune notices stay local). @internal */
export function isFleetEvent(e: JobEvent): boolean {
  return e.type.startsWith('job.');
}

/** A copy of `value` with dates as ms (paths recorded in `dates`) and error texts bounded. */
function plain(value: object, path: string, dates: string[], depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined) continue;
    const p = path === '' ? k : `${path}.${k}`;
    if (v instanceof Date) {
      out[k] = v.getTime();
      dates.push(p);
    } else if (typeof v === 'string' && ERROR_TEXT.has(k)) out[k] = storableErrorText(v);
    else if (depth < 2 && !USER_PAYLOAD.has(k) && v !== null && typeof v === 'object' && !Array.isArray(v)) out[k] = plain(v as object, p, dates, depth + 1);
    else out[k] = v;
  }
  return out;
}

/** JSON text, or undefined when the value cannot be encoded (a BigInt or a cycle in a result). */
function tryStringify(v: unknown): string | undefined {
  try {
    return JSON.stringify(v);
  } catch {
    return undefined;
  }
}

/** The envelope's text within {@link MAX_EVENT_BYTES}: user payloads left out when needed. */
function envelopeText(env: Envelope): string {
  const full = tryStringify(env);
  if (full !== undefined && (full.length <= MAX_EVENT_BYTES / 3 || Buffer.byteLength(full, 'utf8') <= MAX_EVENT_BYTES)) return full;
  const job = env.e['job'];
  const e = job !== null && typeof job === 'object' ? { ...env.e, job: { ...(job as Record<string, unknown>), args: undefined, result: undefined, meta: {} } } : env.e;
  const trimmed = tryStringify({ ...env, e, x: 1 });
  if (trimmed !== undefined && Buffer.byteLength(trimmed, 'utf8') <= MAX_EVENT_BYTES) return trimmed;
  // Still too big (only error and message texts are left): keep the event's identity and times.
  const bare: Record<string, unknown> = { type: env.e['type'], at: env.e['at'] };
  for (const k of ['jobId', 'jobType', 'queue', 'status', 'reason']) if (typeof env.e[k] === 'string') bare[k] = env.e[k];
  return JSON.stringify({ e: bare, d: env.d.includes('at') ? ['at'] : [], x: 1 });
}

/** The feed row of a local event, or undefined for an event that is not relayed. @internal */
export function encodeEvent(event: JobEvent, origin: string): EventAppendItem | undefined {
  if (!isFleetEvent(event)) return undefined;
  const dates: string[] = [];
  const e = plain(event, '', dates, 0);
  const job = (event as { job?: { id?: unknown } }).job;
  const direct = (event as { jobId?: unknown }).jobId;
  const jobId = typeof direct === 'string' ? direct : typeof job?.id === 'string' ? job.id : null;
  return { type: event.type, jobId, origin, payloadJson: envelopeText({ e, d: dates }) };
}

/** The feed row telling subscribers that this process dropped `missed` events before storing them. @internal */
export function encodeRelayGap(missed: number, origin: string, at: Date): EventAppendItem {
  const e = { type: 'events.gap', missed, reason: 'relay', at: at.getTime() };
  return { type: 'events.gap', jobId: null, origin, payloadJson: JSON.stringify({ e, d: ['at'] }) };
}

/** Sets `value` at a dotted path of `root` (objects only). */
function setAt(root: Record<string, unknown>, path: string, make: (v: unknown) => unknown): void {
  const keys = path.split('.');
  let o: Record<string, unknown> = root;
  for (const k of keys.slice(0, -1)) {
    const next = o[k];
    if (next === null || typeof next !== 'object') return;
    o = next as Record<string, unknown>;
  }
  const last = keys[keys.length - 1]!;
  if (last in o) o[last] = make(o[last]);
}

/** The event a feed row holds, with its origin; undefined when the row cannot be read. @internal */
export function decodeEvent(row: EventRow): FleetEvent | undefined {
  let env: Envelope;
  try {
    env = JSON.parse(row.payloadJson) as Envelope;
  } catch {
    return undefined;
  }
  if (env === null || typeof env !== 'object' || env.e === null || typeof env.e !== 'object' || typeof env.e['type'] !== 'string') return undefined;
  const e = env.e;
  for (const p of Array.isArray(env.d) ? env.d : []) setAt(e, p, (v) => new Date(typeof v === 'number' ? v : NaN));
  const job = e['job'];
  if (job !== null && typeof job === 'object' && !('meta' in job)) (job as Record<string, unknown>)['meta'] = {};
  if (e['type'] === 'events.gap') return { ...(e as unknown as FleetGapEvent), origin: row.origin };
  return { ...(e as unknown as FleetJobEvent), origin: row.origin };
}
