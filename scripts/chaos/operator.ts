/**
 * The operator of a chaos run: actions a person at the console takes while the workers run,
 * recorded for the audit.
 * - `retryJob` of failed gated roots and fan-out parents, of failed gated fan-out children
 *   (found by listing failed `chaos.gate` jobs), and of `noRetry` roots (which fail again). The
 *   `opretry` mark is committed before the call, so a gated job passes only after a retry.
 * - `pauseJob` of plain jobs while they wait for their delay, `resumeJob` some time later.
 * - `pauseQueue` of a queue in use for a while (the metered queue, with its queue limit, among
 *   them), then `resumeQueue` (always before the drain).
 * - Re-definitions of the schedules: `chaos.tick` with its one spec, `chaos.alt` with the
 *   same or the other period: one to three definitions at once, each timed a few ms before a
 *   slot both specs share falls due, through a storage whose `scheduleUpsert` is delayed by up
 *   to 40 ms (a slow operator process) — so a definition that read the clock before the slot
 *   fired writes after it, and must not move the slot back.
 * Timelines and choices come from the operator's own seeded stream; what a call found (a job
 * not failed yet, a refusal) depends on the interleaving and is recorded as it happened.
 */
import { setTimeout as sleepUntil } from 'node:timers/promises';
import { InvalidStateError, JobNotFoundError } from '../../src/errors.js';
import { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import type { Effects } from './effects.js';
import { METERED_QUEUE } from './flow.js';
import type { GateArgs } from './handlers-extra.js';
import { BIG_QUEUE, KIDS_QUEUE, ROOT_QUEUE } from './handlers.js';
import type { Plan } from './load.js';
import type { Rng } from './options.js';
import { ALT, defineAlt, defineTick, TICK } from './schedules.js';

/** One operator retry of a job. */
export interface RetryRecord {
  jobId: string;
  what: 'gate' | 'gatefan' | 'gate-child' | 'fatal';
  /** When the `opretry` mark was written (just before the first `retryJob` call). */
  requestedAt: number | null;
  /** When `retryJob` resolved. */
  appliedAt: number | null;
  result: 'pending' | 'applied' | 'refused' | 'gone' | 'gave-up';
  note: string | null;
}
/** One `pauseJob` … `resumeJob` of a pending job. */
export interface JobPauseRecord {
  jobId: string;
  pausedAt: number | null;
  /** When the first `resumeJob` call was made. */
  resumeRequestedAt: number | null;
  resumedAt: number | null;
  /** Why the pause was refused (the job was no longer pending), with the status then. */
  refused: string | null;
}
/** One `pauseQueue` … `resumeQueue`. */
export interface QueuePauseRecord {
  queue: string;
  pausedAt: number;
  resumeRequestedAt: number | null;
  resumedAt: number | null;
}
/** Everything the operator did. */
export interface OperatorLog {
  retries: Map<string, RetryRecord>;
  jobPauses: Map<string, JobPauseRecord>;
  queuePauses: QueuePauseRecord[];
  scheduleDefs: { name: string; periodMs: number; at: number }[];
  errors: number;
}

interface Action {
  at: number;
  tries: number;
  run: () => Promise<'done' | 'again'>;
}

const AGAIN_MS = 250;
const RETRY_GIVE_UP_MS = 90_000;
const SCAN_MS = 300;

/** Performs and records the operator's actions. */
export class Operator {
  readonly log: OperatorLog = { retries: new Map(), jobPauses: new Map(), queuePauses: [], scheduleDefs: [], errors: 0 };
  #actions: Action[] = [];
  #seen = new Set<string>();
  #nextScan = 0;
  #nextQueuePause: number;
  #nextDefine: number;
  #pausedQueue: QueuePauseRecord | null = null;
  #altPeriod: number = ALT.periodsMs[0];
  #timelines = true;
  #frozen = false;
  #defining: Promise<void> | null = null;
  /** The queue the definitions go through: its storage delays `scheduleUpsert`. */
  readonly #slowQueue: Queue;

  constructor(
    private readonly queue: Queue,
    private readonly storage: Storage,
    private readonly effects: Effects,
    /** One stream per timeline, so their draws never interleave differently. */
    private readonly rngs: { queues: Rng; schedules: Rng; latency: Rng },
    start = Date.now(),
  ) {
    this.#nextQueuePause = start + rngs.queues.int(4000, 12_000);
    this.#nextDefine = start + rngs.schedules.int(1000, 6000);
    this.#slowQueue = new Queue(withLatency(storage, 'scheduleUpsert', () => rngs.latency.int(0, 40)));
  }

  /** Actions still to do, a paused queue included (the drain waits for them). */
  get pending(): number {
    return this.#actions.length + (this.#pausedQueue ? 1 : 0);
  }

  /** Plans the actions on a root job just enqueued. */
  track(id: string, plan: Plan, at: number): void {
    if (plan.kind === 'gate' || plan.kind === 'gatefan') {
      if (plan.args.retry) this.#planRetry(id, plan.kind, at + plan.args.afterMs);
    } else if (plan.kind === 'fatal' && plan.retry) this.#planRetry(id, 'fatal', at + plan.retry.afterMs);
    else if (plan.kind === 'plain' && plan.pause) this.#planPause(id, at + plan.pause.afterMs, plan.pause.holdMs);
  }

  /** Performs what is due: planned actions, the scan for failed gated children, the timelines. */
  async runDue(now = Date.now()): Promise<void> {
    if (this.#frozen) return;
    if (now >= this.#nextScan) {
      this.#nextScan = now + SCAN_MS;
      await this.#scan().catch(() => this.log.errors++);
    }
    if ((this.#timelines || this.#pausedQueue) && now >= this.#nextQueuePause) await this.#queuePauseTimeline(now);
    if (this.#timelines && now >= this.#nextDefine && this.#defining === null) {
      this.#defining = this.#defineTimeline(now).finally(() => (this.#defining = null));
    }
    const due = this.#actions.filter((a) => a.at <= now);
    if (due.length === 0) return;
    this.#actions = this.#actions.filter((a) => a.at > now);
    await Promise.all(
      due.map(async (a) => {
        let outcome: 'done' | 'again';
        try {
          outcome = await a.run();
        } catch {
          this.log.errors++;
          outcome = 'again';
        }
        if (outcome === 'again' && a.tries < 1000) this.#actions.push({ ...a, at: Date.now() + AGAIN_MS, tries: a.tries + 1 });
      }),
    );
  }

  /**
   * The load stopped: no new queue pauses or definitions (resolves once a definition in flight
   * is stored); paused jobs and queues are resumed at the next `runDue`.
   */
  async finish(): Promise<void> {
    this.#timelines = false;
    const now = Date.now();
    for (const a of this.#actions) a.at = Math.min(a.at, now);
    if (this.#pausedQueue) this.#nextQueuePause = now;
    await this.#defining;
  }

  /** Stops every further action (after resuming a queue still paused). */
  async freeze(): Promise<void> {
    await this.#defining;
    for (let i = 0; this.#pausedQueue && i < 20; i++) {
      await this.#resumeQueue(this.#pausedQueue).catch(() => this.log.errors++);
    }
    this.#frozen = true;
    this.#actions = [];
  }

  #planRetry(jobId: string, what: RetryRecord['what'], at: number): void {
    const rec: RetryRecord = { jobId, what, requestedAt: null, appliedAt: null, result: 'pending', note: null };
    this.log.retries.set(jobId, rec);
    const deadline = at + RETRY_GIVE_UP_MS;
    this.#actions.push({ at, tries: 0, run: () => this.#retry(rec, deadline) });
  }

  async #retry(rec: RetryRecord, deadline: number): Promise<'done' | 'again'> {
    const job = await this.queue.getJob(rec.jobId);
    if (!job) {
      rec.result = 'gone';
      return 'done';
    }
    if (rec.requestedAt !== null && job.status !== 'failed') {
      rec.appliedAt = rec.requestedAt;
      rec.result = 'applied';
      rec.note = 'applied by a call that reported an error';
      return 'done';
    }
    if (job.status !== 'failed') {
      if (Date.now() < deadline) return 'again';
      rec.result = 'gave-up';
      rec.note = `still ${job.status} after ${RETRY_GIVE_UP_MS} ms`;
      return 'done';
    }
    if (rec.requestedAt === null) {
      await this.effects.insert({ kind: 'opretry', jobId: rec.jobId, runCount: -1, info: rec.what });
      rec.requestedAt = Date.now();
    }
    try {
      await this.queue.retryJob(rec.jobId);
    } catch (e) {
      if (!(e instanceof InvalidStateError || e instanceof JobNotFoundError)) throw e;
      rec.result = 'refused';
      rec.note = e.message;
      return 'done';
    }
    rec.appliedAt = Date.now();
    rec.result = 'applied';
    return 'done';
  }

  async #scan(): Promise<void> {
    const rows = await this.storage.jobList({ statuses: ['failed'], type: 'chaos.gate', limit: 500 });
    const now = Date.now();
    for (const row of rows) {
      if (row.parentId === null || this.#seen.has(row.id)) continue;
      this.#seen.add(row.id);
      const args = JSON.parse(row.argsJson ?? '{}') as Partial<GateArgs>;
      if (args.retry) this.#planRetry(row.id, 'gate-child', now + (args.afterMs ?? 0));
    }
  }

  #planPause(jobId: string, at: number, holdMs: number): void {
    const rec: JobPauseRecord = { jobId, pausedAt: null, resumeRequestedAt: null, resumedAt: null, refused: null };
    this.log.jobPauses.set(jobId, rec);
    const resume = async (): Promise<'done' | 'again'> => {
      rec.resumeRequestedAt ??= Date.now();
      await this.queue.resumeJob(jobId);
      rec.resumedAt = Date.now();
      return 'done';
    };
    const pause = async (): Promise<'done' | 'again'> => {
      if (!this.#timelines) return 'done';
      try {
        await this.queue.pauseJob(jobId);
      } catch (e) {
        if (!(e instanceof InvalidStateError)) throw e;
        const job = await this.queue.getJob(jobId);
        rec.refused = `${e.message} (then ${String(job?.status)})`;
        return 'done';
      }
      rec.pausedAt = Date.now();
      this.#actions.push({ at: rec.pausedAt + holdMs, tries: 0, run: resume });
      return 'done';
    };
    this.#actions.push({ at, tries: 0, run: pause });
  }

  async #queuePauseTimeline(now: number): Promise<void> {
    if (this.#pausedQueue) {
      await this.#resumeQueue(this.#pausedQueue).catch(() => this.log.errors++);
      if (this.#pausedQueue === null && this.#timelines) this.#nextQueuePause = now + this.rngs.queues.int(4000, 12_000);
      return;
    }
    const queue = this.rngs.queues.pick([ROOT_QUEUE, KIDS_QUEUE, BIG_QUEUE, METERED_QUEUE]);
    const holdMs = this.rngs.queues.int(500, 4000);
    try {
      await this.queue.pauseQueue(queue);
    } catch {
      this.log.errors++;
      this.#nextQueuePause = Date.now() + AGAIN_MS;
      return;
    }
    const rec: QueuePauseRecord = { queue, pausedAt: Date.now(), resumeRequestedAt: null, resumedAt: null };
    this.log.queuePauses.push(rec);
    this.#pausedQueue = rec;
    this.#nextQueuePause = rec.pausedAt + holdMs;
  }

  async #resumeQueue(rec: QueuePauseRecord): Promise<void> {
    rec.resumeRequestedAt ??= Date.now();
    await this.queue.resumeQueue(rec.queue);
    rec.resumedAt = Date.now();
    this.#pausedQueue = null;
  }

  async #defineTimeline(now: number): Promise<void> {
    const r = this.rngs.schedules;
    this.#nextDefine = now + r.int(1500, 5000);
    const tick = r.chance(0.3);
    const change = r.chance(0.6);
    if (!tick && change) this.#altPeriod = this.#altPeriod === ALT.periodsMs[0] ? ALT.periodsMs[1] : ALT.periodsMs[0];
    const name = tick ? TICK.name : ALT.name;
    const periodMs = tick ? TICK.periodMs : this.#altPeriod;
    // Just before the next slot on the 2000 ms grid, which every spec of both schedules fires.
    const grid = ALT.periodsMs[1];
    const slot = (Math.floor((Date.now() + 50) / grid) + 1) * grid;
    const offsets = Array.from({ length: r.int(1, 3) }, () => r.int(0, 6));
    await Promise.all(
      offsets.map(async (offset) => {
        await sleepUntil(Math.max(0, slot - offset - Date.now()));
        try {
          await (tick ? defineTick(this.#slowQueue) : defineAlt(this.#slowQueue, periodMs as (typeof ALT.periodsMs)[number]));
          this.log.scheduleDefs.push({ name, periodMs, at: Date.now() });
        } catch {
          this.log.errors++;
        }
      }),
    );
  }
}

/** `storage` with every call of `method` delayed by `delayMs()` before it is made. */
function withLatency(storage: Storage, method: keyof Storage, delayMs: () => number): Storage {
  return new Proxy(storage, {
    get: (target, prop) => {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const fn = v as (...args: unknown[]) => unknown;
      if (prop !== method) return fn.bind(target);
      return async (...args: unknown[]) => {
        await sleepUntil(delayMs());
        return fn.apply(target, args);
      };
    },
  });
}
