/**
 * The job page's reads (`GET <basePath>/api/jobs/<id>...`): the job with one bounded page of
 * its checkpoints, signals and sub-jobs, the next pages, and one checkpoint or signal whole.
 *
 * Whatever the job holds, an answer stays small: at most {@link STEPS_SHOWN} checkpoints,
 * {@link SIGNALS_SHOWN} signals and {@link CHILDREN_PAGE} sub-jobs, each checkpoint output and
 * signal payload larger than {@link PREVIEW_BYTES} left out (and a step error cut there) with
 * its size named in `clipped`, and sub-jobs as slim rows (no payloads, one short line of error).
 * @module
 */
import type { Hono } from 'hono';
import { InvalidArgumentError, JobNotFoundError, type Job, type Queue, type SignalInfo, type StepInfo } from '../index.js';
import type { RedactOptions, ResolvedOptions } from './options.js';
import { jobOut, signalOut, stepOut } from './payloads.js';
import { problem } from './request-guard.js';

/** Checkpoints in one answer. */
export const STEPS_SHOWN = 100;
/** Signals in one answer. */
export const SIGNALS_SHOWN = 100;
/** Sub-jobs in one answer. */
export const CHILDREN_PAGE = 100;
/** Largest checkpoint output or signal payload (JSON, UTF-8 bytes) sent in a page; longer step errors are cut to this many characters. */
export const PREVIEW_BYTES = 4096;
/** Longest error line of a sub-job row, in characters. */
export const ERROR_LINE_CHARS = 300;

const MAX_INT32 = 2_147_483_647;

/** A checkpoint or signal as a page sends it: `clipped` names what was left out or cut, with its size in bytes. */
type Clipped<T> = T & { redacted?: string[]; clipped?: Record<string, number> };

/** A sub-job as a tree row: who and how it is, without payloads. */
export type ChildRow = Pick<Job, 'id' | 'type' | 'queue' | 'status' | 'attempt' | 'createdAt'> & { completedAt?: Date; lastError?: string; redacted?: string[] };

/** Adds the job page's routes to `app` (already under the base path). @internal */
export function addJobRoutes(app: Hono, queue: Queue, options: ResolvedOptions): void {
  const { redact } = options;
  const noStore = { 'Cache-Control': 'no-store' };

  app.get('/api/jobs/:id', async (c) => {
    const id = c.req.param('id');
    const query = new URL(c.req.url).searchParams;
    const stepsAfter = intParam(query.get('stepsAfter'), 'stepsAfter', -1, MAX_INT32);
    const signalsAfter = intParam(query.get('signalsAfter'), 'signalsAfter', 0, Number.MAX_SAFE_INTEGER);
    const job = await queue.getJob(id);
    if (job === undefined) throw new JobNotFoundError(id);
    // One more than shown tells whether another page exists.
    const [steps, signals, children] = await Promise.all([
      queue.getSteps(id, { limit: STEPS_SHOWN + 1, ...(stepsAfter === undefined ? {} : { after: stepsAfter }) }),
      queue.getSignals(id, { limit: SIGNALS_SHOWN + 1, ...(signalsAfter === undefined ? {} : { after: signalsAfter }) }),
      queue.listJobs({ parentId: id, limit: CHILDREN_PAGE, order: 'asc' }),
    ]);
    const shownSteps = steps.slice(0, STEPS_SHOWN);
    const shownSignals = signals.slice(0, SIGNALS_SHOWN);
    return c.json(
      {
        job: jobOut(job, redact),
        steps: shownSteps.map((s) => clipStep(stepOut(s, redact))),
        stepsNext: steps.length > STEPS_SHOWN ? shownSteps[shownSteps.length - 1]!.index : undefined,
        signals: shownSignals.map((s) => clipSignal(signalOut(s, redact))),
        signalsNext: signals.length > SIGNALS_SHOWN ? shownSignals[shownSignals.length - 1]!.seq : undefined,
        children: { jobs: children.jobs.map((j) => childRow(j, redact)), nextCursor: children.nextCursor },
      },
      200,
      noStore,
    );
  });

  app.get('/api/jobs/:id/children', async (c) => {
    const id = c.req.param('id');
    const cursor = new URL(c.req.url).searchParams.get('cursor');
    if ((await queue.getJob(id)) === undefined) throw new JobNotFoundError(id);
    const page = await queue.listJobs({ parentId: id, limit: CHILDREN_PAGE, order: 'asc', ...(cursor === null || cursor === '' ? {} : { cursor }) });
    return c.json({ jobs: page.jobs.map((j) => childRow(j, redact)), nextCursor: page.nextCursor }, 200, noStore);
  });

  app.get('/api/jobs/:id/steps/:index', async (c) => {
    const id = c.req.param('id');
    const index = intParam(c.req.param('index'), 'checkpoint index', 0, MAX_INT32)!;
    const [step] = await queue.getSteps(id, { after: index - 1, limit: 1 });
    if (step === undefined || step.index !== index) return problem(c, 404, 'NOT_FOUND', `job ${id} has no checkpoint ${index}`);
    return c.json({ step: stepOut(step, redact) }, 200, noStore);
  });

  app.get('/api/jobs/:id/signals/:seq', async (c) => {
    const id = c.req.param('id');
    const seq = intParam(c.req.param('seq'), 'signal seq', 1, Number.MAX_SAFE_INTEGER)!;
    const [signal] = await queue.getSignals(id, { after: seq - 1, limit: 1 });
    if (signal === undefined || signal.seq !== seq) return problem(c, 404, 'NOT_FOUND', `job ${id} has no signal ${seq}`);
    return c.json({ signal: signalOut(signal, redact) }, 200, noStore);
  });
}

/** A whole-number parameter in [min, max]; undefined when absent or empty. @throws InvalidArgumentError */
function intParam(raw: string | null | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === null || raw === undefined || raw === '') return undefined;
  const n = /^-?\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw.slice(0, 40))}`);
  return n;
}

/** UTF-8 bytes of the JSON text of a value (0 for `undefined`). */
function jsonBytes(v: unknown): number {
  const text = JSON.stringify(v) as string | undefined;
  return text === undefined ? 0 : Buffer.byteLength(text, 'utf8');
}

/** The first `n` characters of a text, without splitting a surrogate pair. */
function cut(text: string, n: number): string {
  const head = text.slice(0, n);
  const last = head.charCodeAt(head.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? head.slice(0, -1) : head;
}

/** A checkpoint for a page: a large output left out, a long error cut (both named in `clipped`). */
function clipStep(step: Clipped<StepInfo>): Clipped<StepInfo> {
  const clipped: Record<string, number> = {};
  const out = { ...step };
  if ('output' in out) {
    const bytes = jsonBytes(out.output);
    if (bytes > PREVIEW_BYTES) {
      delete out.output;
      clipped['output'] = bytes;
    }
  }
  if (out.error !== undefined && out.error.length > PREVIEW_BYTES) {
    clipped['error'] = Buffer.byteLength(out.error, 'utf8');
    out.error = cut(out.error, PREVIEW_BYTES);
  }
  return Object.keys(clipped).length > 0 ? { ...out, clipped } : out;
}

/** A signal for a page: a large payload left out (named in `clipped`). */
function clipSignal(signal: Clipped<SignalInfo>): Clipped<SignalInfo> {
  if (!('payload' in signal)) return signal;
  const bytes = jsonBytes(signal.payload);
  if (bytes <= PREVIEW_BYTES) return signal;
  const { payload: _, ...rest } = signal;
  return { ...rest, clipped: { payload: bytes } };
}

/** A sub-job as a tree row: no payloads, and the first line of its error, short. */
export function childRow(job: Job, redact: Required<RedactOptions>): ChildRow {
  const row: ChildRow = { id: job.id, type: job.type, queue: job.queue, status: job.status, attempt: job.attempt, createdAt: job.createdAt };
  if (job.completedAt !== undefined) row.completedAt = job.completedAt;
  if (job.lastError !== undefined) {
    if (redact.errors) row.redacted = ['lastError'];
    else row.lastError = cut(job.lastError.split('\n', 1)[0] ?? '', ERROR_LINE_CHARS);
  }
  return row;
}
