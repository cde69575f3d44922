/**
 * The storage boundary of a payload codec: a view of a `Storage` that encodes every user
 * payload on its way in and decodes it on its way out. A `Queue` installs it only when
 * `QueueOptions.codec` is given, so a queue without a codec calls its driver directly.
 *
 * Encoded on write: job args (inserts, debounce replacements, schedule fires, fan-out
 * children), results, error texts of failed and retried runs, checkpoint outputs and step
 * errors, signal payloads, progress messages, fleet events and schedule options. Left as they
 * are: type, queue, meta, unique/concurrency/rate/debounce keys, tenant, step and signal
 * names, the `ctx.patched` answers (`true`/`false`, counted in SQL by `stepPatchSummary`), and
 * the fixed texts and timer values the drivers write themselves (read back as plaintext: a
 * value without the `sdj1:` prefix is plaintext).
 *
 * Decoding never throws for a whole read. A payload the codec cannot decode is handed on:
 * - args, results, checkpoint outputs, signal payloads (consumed and listed), events and
 *   schedule options as an in-memory marker (`UNDECODED_PREFIX`), so decoding it as JSON throws
 *   `CodecError` naming the job and the reason — a run fails with it at once, a listing shows
 *   the job without payloads (checkpoints and signals with the reason instead);
 * - error texts and progress messages as a bracketed text saying why they cannot be read; a
 *   row whose error text is such a note also carries the `CodecError` (`UNDECODED_ERROR`), so a
 *   workflow replaying a failed step or collecting a failed child fails with it.
 * @internal
 */
import { CodecError, InvalidArgumentError, PayloadOpaqueError } from '../errors.js';
import { ENCODED_PREFIX, UNDECODED_ERROR, UNDECODED_PREFIX } from '../storage/codec.js';
import { PATCH_STEP_PREFIX, type JobFilter, type JobInsert, type JobRow, type Storage, type StepRow } from '../storage/storage.js';
import { decodeStored, encodeStored, type PayloadCodec } from './payload-codec.js';

/** The storage methods the view replaces (every one that carries or returns a user payload). */
type Wrapped =
  | 'jobInsertMany'
  | 'jobGet'
  | 'jobGetMany'
  | 'jobList'
  | 'jobListScan'
  | 'jobCount'
  | 'jobClaim'
  | 'jobClaimLimited'
  | 'jobFinishMany'
  | 'jobProgressMany'
  | 'stepList'
  | 'stepRecord'
  | 'stepRecordMany'
  | 'jobSuspendFanOut'
  | 'jobSuspend'
  | 'fanOutCollect'
  | 'signalSend'
  | 'signalList'
  | 'signalConsumeOrWait'
  | 'eventAppendMany'
  | 'eventReadAfter'
  | 'scheduleUpsert'
  | 'scheduleList'
  | 'scheduleListDue'
  | 'scheduleFire';

/**
 * Every other storage method, each checked to carry no user payload. A method added to
 * `Storage` fails to compile here until it is listed (or wrapped). @internal
 */
export const PASSED_THROUGH = {
  dialect: true,
  migrate: true,
  close: true,
  clockNow: true,
  jobCountByStatus: true,
  jobCountByStatusCapped: true,
  jobHeartbeat: true,
  jobRelease: true,
  jobReclaimExpired: true,
  jobWakeDue: true,
  jobCancel: true,
  jobPause: true,
  jobResume: true,
  jobRetry: true,
  jobRetryMany: true,
  jobDeleteMany: true,
  jobPrune: true,
  limitSet: true,
  limitDelete: true,
  limitList: true,
  limitUsage: true,
  queueSetPaused: true,
  queueSummary: true,
  queueSummaryCapped: true,
  workerBeat: true,
  workerList: true,
  workerRemove: true,
  eventPrune: true,
  eventSubscriberBeat: true,
  eventSubscribersActive: true,
  eventSubscriberRemove: true,
  jobSuspendUntil: true,
  fanOutGet: true,
  fanOutExpire: true,
  scheduleDelete: true,
  stepPatchSummary: true,
  listen: true,
  eventListen: true,
  dataVersion: true,
} as const satisfies Record<Exclude<keyof Storage, Wrapped>, true>;

/** Encodes and decodes payloads with one codec, naming what fails. */
class Payloads {
  constructor(readonly codec: PayloadCodec) {}

  enc(text: string, what: string): string {
    return encodeStored(this.codec, text, what);
  }

  encOrNull(text: string | null, what: string): string | null {
    return text === null ? null : encodeStored(this.codec, text, what);
  }

  /** A payload that must decode to be used: on failure, the marker that throws when parsed. */
  strict(text: string | null, what: string): string | null {
    if (text === null || !text.startsWith(ENCODED_PREFIX)) return text;
    try {
      return decodeStored(this.codec, text);
    } catch (e) {
      return `${UNDECODED_PREFIX}${what} cannot be decoded: ${(e as Error).message}`;
    }
  }

  /** A text shown to people (error, progress message): on failure, a text saying why. */
  lenient(text: string | null, what: string): string | null {
    return this.lenientOr(text, what).text;
  }

  /** {@link lenient}, and the decode failure when there was one. */
  lenientOr(text: string | null, what: string): { text: string | null; error?: CodecError } {
    if (text === null || !text.startsWith(ENCODED_PREFIX)) return { text };
    try {
      return { text: decodeStored(this.codec, text) };
    } catch (e) {
      const why = `${what} cannot be decoded: ${(e as Error).message}`;
      return { text: `[${why}]`, error: new CodecError('decode', why, { cause: e }) };
    }
  }

  job(j: JobInsert): JobInsert {
    return j.argsJson === null ? j : { ...j, argsJson: this.enc(j.argsJson, `args of job ${j.id}`) };
  }

  row(r: JobRow): JobRow {
    if (!some(r.argsJson, r.resultJson, r.lastError, r.progressMessage)) return r;
    const lastError = this.lenientOr(r.lastError, `last error of job ${r.id}`);
    return withUndecoded(
      {
        ...r,
        argsJson: this.strict(r.argsJson, `args of job ${r.id}`),
        resultJson: this.strict(r.resultJson, `result of job ${r.id}`),
        lastError: lastError.text,
        progressMessage: this.lenient(r.progressMessage, `progress message of job ${r.id}`),
      },
      lastError.error,
    );
  }

  rows(rs: JobRow[]): JobRow[] {
    return rs.map((r) => this.row(r));
  }

  stepIn(s: StepRow): StepRow {
    // A `ctx.patched` answer (`true`/`false`, the engine's own) stays plaintext: the patch
    // summary counts answers in SQL.
    if (s.stepIndex < 0 && s.stepName.startsWith(PATCH_STEP_PREFIX)) return s;
    const what = `step ${s.stepIndex} ("${s.stepName}") of job ${s.jobId}`;
    return { ...s, outputJson: this.encOrNull(s.outputJson, `output of ${what}`), error: this.encOrNull(s.error, `error of ${what}`) };
  }

  stepOut(s: StepRow): StepRow {
    if (!some(s.outputJson, s.error)) return s;
    const what = `step ${s.stepIndex} ("${s.stepName}") of job ${s.jobId}`;
    const error = this.lenientOr(s.error, `error of ${what}`);
    return withUndecoded({ ...s, outputJson: this.strict(s.outputJson, `output of ${what}`), error: error.text }, error.error);
  }
}

/** `row`, carrying the decode failure of its error text (non-enumerable), if any. */
function withUndecoded<R extends object>(row: R, error: CodecError | undefined): R {
  if (error !== undefined) Object.defineProperty(row, UNDECODED_ERROR, { value: error });
  return row;
}

function some(...texts: (string | null)[]): boolean {
  for (const t of texts) if (t !== null && t.startsWith(ENCODED_PREFIX)) return true;
  return false;
}

/** The refusal of a search into payload text that an opaque codec stores. */
function checkSearch(codec: PayloadCodec, f: JobFilter): void {
  if (f.search !== undefined && codec.opaque) {
    throw new PayloadOpaqueError(
      `search cannot be used: it matches error texts, which the payload codec "${codec.name}" stores encrypted; filter by type, status, queue, tenant or time instead`,
    );
  }
}

/** The replaced methods, bound to the driver. */
function wrappers<Tx>(s: Storage<Tx>, p: Payloads): Pick<Storage<Tx>, Wrapped> {
  const codec = p.codec;
  return {
    jobInsertMany: async (q) => s.jobInsertMany({ ...q, jobs: q.jobs.map((j) => p.job(j)) }),
    jobGet: async (q) => {
      const r = await s.jobGet(q);
      return r === undefined ? r : p.row(r);
    },
    jobGetMany: async (q) => p.rows(await s.jobGetMany(q)),
    jobList: async (q) => {
      checkSearch(codec, q);
      return p.rows(await s.jobList(q));
    },
    jobListScan: async (q) => {
      checkSearch(codec, q);
      const r = await s.jobListScan(q);
      return { ...r, rows: p.rows(r.rows) };
    },
    jobCount: async (q) => {
      checkSearch(codec, q);
      return s.jobCount(q);
    },
    jobClaim: async (q) => p.rows(await s.jobClaim(q)),
    jobClaimLimited: async (q) => {
      const r = await s.jobClaimLimited(q);
      return { ...r, rows: p.rows(r.rows) };
    },
    jobFinishMany: async (q) =>
      s.jobFinishMany({
        items: q.items.map((i) =>
          i.outcome === 'completed' ? { ...i, resultJson: p.encOrNull(i.resultJson, `result of job ${i.jobId}`) } : { ...i, error: p.enc(i.error, `error of job ${i.jobId}`) },
        ),
      }),
    jobProgressMany: async (q) => s.jobProgressMany({ items: q.items.map((i) => ({ ...i, message: p.encOrNull(i.message, `progress message of job ${i.jobId}`) })) }),
    stepList: async (q) => (await s.stepList(q)).map((r) => p.stepOut(r)),
    stepRecord: async (q) => s.stepRecord({ ...q, step: p.stepIn(q.step) }),
    stepRecordMany: async (q) => s.stepRecordMany({ items: q.items.map((i) => ({ ...i, step: p.stepIn(i.step) })) }),
    jobSuspendFanOut: async (q) => s.jobSuspendFanOut({ ...q, step: p.stepIn(q.step), children: q.children.map((j) => p.job(j)) }),
    jobSuspend: async (q) => s.jobSuspend({ ...q, step: q.step === null ? null : p.stepIn(q.step) }),
    fanOutCollect: async (q) => {
      const r = await s.fanOutCollect(q);
      return r === undefined ? r : { ...r, children: p.rows(r.children) };
    },
    signalSend: async (q) => s.signalSend({ ...q, payloadJson: p.encOrNull(q.payloadJson, `payload of signal "${q.name}" to job ${q.jobId}`) }),
    signalList: async (q) =>
      (await s.signalList(q)).map((r) => (some(r.payloadJson) ? { ...r, payloadJson: p.strict(r.payloadJson, `payload of signal ${r.seq} ("${r.name}") of job ${q.jobId}`) } : r)),
    signalConsumeOrWait: async (q) => {
      const r = await s.signalConsumeOrWait(q);
      return r.kind === 'consumed' ? { ...r, payloadJson: p.strict(r.payloadJson, `payload of signal "${q.signalName}" of job ${q.fence.jobId}`) } : r;
    },
    eventAppendMany: async (q) => s.eventAppendMany({ events: q.events.map((e) => ({ ...e, payloadJson: p.enc(e.payloadJson, `fleet event ${e.type}`) })) }),
    eventReadAfter: async (q) => (await s.eventReadAfter(q)).map((e) => (some(e.payloadJson) ? { ...e, payloadJson: p.strict(e.payloadJson, `fleet event ${e.id}`) ?? '' } : e)),
    scheduleUpsert: async (q) => s.scheduleUpsert({ ...q, optionsJson: p.enc(q.optionsJson, `options of schedule "${q.name}"`) }),
    scheduleList: async () => (await s.scheduleList()).map((r) => ({ ...r, optionsJson: p.strict(r.optionsJson, `options of schedule "${r.name}"`) ?? '' })),
    scheduleListDue: async (q) => (await s.scheduleListDue(q)).map((r) => ({ ...r, optionsJson: p.strict(r.optionsJson, `options of schedule "${r.name}"`) ?? '' })),
    scheduleFire: async (q) => s.scheduleFire({ ...q, jobs: q.jobs.map((j) => p.job(j)) }),
  };
}

/**
 * A view of `storage` that passes every payload through `codec` (see the module docs). Every
 * other property is the driver's own (methods bound to it); `instanceof` still holds.
 * @internal
 */
export function withCodec<Tx>(storage: Storage<Tx>, codec: PayloadCodec): Storage<Tx> {
  // `new Queue(other.storage, { codec })`: a second codec would encode every payload twice.
  if (VIEWS.has(storage)) throw new InvalidArgumentError('this storage is already seen through a payload codec (another queue\'s `queue.storage`): give the driver itself, or leave out `codec`');
  const replaced: Record<PropertyKey, unknown> = wrappers(storage, new Payloads(codec));
  const bound = new Map<PropertyKey, { fn: unknown; bound: unknown }>();
  const view = new Proxy(storage, {
    get(target, prop) {
      if (Object.hasOwn(replaced, prop)) return replaced[prop];
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const hit = bound.get(prop);
      if (hit?.fn === v) return hit.bound;
      const b = (v as (...a: unknown[]) => unknown).bind(target);
      bound.set(prop, { fn: v, bound: b });
      return b;
    },
  });
  VIEWS.add(view);
  return view;
}

/** Every view {@link withCodec} made. */
const VIEWS = new WeakSet<object>();
