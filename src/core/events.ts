/**
 * The in-process event hub behind `queue.onJob*` hooks and `queue.events()`.
 * Hooks and subscribers are isolated: one that throws, rejects or is slow never breaks or
 * stalls a worker. Subscribers have a bounded buffer; when it is full the oldest event is
 * dropped and counted.
 */
import type { Job, JobEvent, Logger } from '../types.js';

/** Hook signatures. */
export type JobHook = (job: Job) => void | Promise<void>;
/** Hook with the error that caused it. */
export type JobErrorHook = (job: Job, err: Error) => void | Promise<void>;
/** A hook of the jobs the lease reaper took back (`job.reclaimed` events). */
export type ReclaimHook = (event: Extract<JobEvent, { type: 'job.reclaimed' }>) => void | Promise<void>;
/** Removes a hook or subscription. */
export type Unsubscribe = () => void;

/** Options of `queue.events()`. */
export interface EventStreamOptions {
  /** Most events buffered for a slow consumer before the oldest are dropped. @default 10000 */
  bufferSize?: number;
}

interface Subscriber {
  push(e: JobEvent): void;
}

/** Routes engine happenings to hooks and subscribers. @internal */
export class EventHub {
  readonly #start = new Set<JobHook>();
  readonly #complete = new Set<JobHook>();
  readonly #fail = new Set<JobErrorHook>();
  readonly #retry = new Set<JobErrorHook>();
  readonly #reclaim = new Set<ReclaimHook>();
  readonly #subs = new Set<Subscriber>();

  constructor(private readonly logger: Logger) {}

  /** Registers a hook; returns its remover. */
  onStart(fn: JobHook): Unsubscribe {
    return add(this.#start, fn);
  }
  /** Registers a hook; returns its remover. */
  onComplete(fn: JobHook): Unsubscribe {
    return add(this.#complete, fn);
  }
  /** Registers a hook; returns its remover. */
  onFail(fn: JobErrorHook): Unsubscribe {
    return add(this.#fail, fn);
  }
  /** Registers a hook; returns its remover. */
  onRetry(fn: JobErrorHook): Unsubscribe {
    return add(this.#retry, fn);
  }

  /** Registers a hook of reclaimed jobs; returns its remover. */
  onReclaim(fn: ReclaimHook): Unsubscribe {
    return add(this.#reclaim, fn);
  }

  /** True when anyone listens for events (lets the hot path skip building them). */
  get hasSubscribers(): boolean {
    return this.#subs.size > 0;
  }

  /**
   * Adds a raw subscriber that receives every event synchronously, unbuffered (the fleet relay,
   * while a fleet subscriber listens); it counts as a subscriber. Returns its remover.
   */
  tap(push: (event: JobEvent) => void): Unsubscribe {
    const sub: Subscriber = { push };
    this.#subs.add(sub);
    return () => this.#subs.delete(sub);
  }

  /** True when an event of this type would reach a subscriber or a hook (else skip building it). */
  wants(type: 'job.started' | 'job.completed' | 'job.failed' | 'job.retrying'): boolean {
    if (this.#subs.size > 0) return true;
    switch (type) {
      case 'job.started':
        return this.#start.size > 0;
      case 'job.completed':
        return this.#complete.size > 0;
      case 'job.failed':
        return this.#fail.size > 0;
      case 'job.retrying':
        return this.#retry.size > 0;
    }
  }

  /** Publishes an event and runs the matching hooks. */
  emit(event: JobEvent, err?: Error): void {
    for (const s of this.#subs) s.push(event);
    switch (event.type) {
      case 'job.started':
        this.#run(this.#start, (fn) => fn(event.job), event.job);
        break;
      case 'job.completed':
        this.#run(this.#complete, (fn) => fn(event.job), event.job);
        break;
      case 'job.failed':
        this.#run(this.#fail, (fn) => fn(event.job, err ?? new Error(event.error)), event.job);
        break;
      case 'job.retrying':
        this.#run(this.#retry, (fn) => fn(event.job, err ?? new Error(event.error)), event.job);
        break;
      case 'job.reclaimed':
        this.#run(this.#reclaim, (fn) => fn(event), { id: event.jobId, type: event.jobType, queue: event.queue, attempt: undefined });
        break;
      // No hooks for these: subscribers only.
      case 'job.enqueued':
      case 'job.suspended':
      case 'job.progress':
      case 'job.released':
      case 'job.cancelled':
      case 'worker.error':
      case 'jobs.pruned':
        break;
    }
  }

  /** An async iterator over events from now on; leaving the loop unsubscribes. */
  stream(options: EventStreamOptions = {}): AsyncIterableIterator<JobEvent> {
    const cap = options.bufferSize ?? 10_000;
    const buffer: JobEvent[] = [];
    let waiter: ((r: IteratorResult<JobEvent>) => void) | undefined;
    let done = false;
    const sub: Subscriber = {
      push: (e) => {
        if (waiter) {
          const w = waiter;
          waiter = undefined;
          w({ value: e, done: false });
          return;
        }
        buffer.push(e);
        if (buffer.length > cap) {
          buffer.shift();
          this.logger.warn('event subscriber is slow; dropped the oldest buffered event', { bufferSize: cap });
        }
      },
    };
    this.#subs.add(sub);
    const finish = (): IteratorResult<JobEvent> => {
      done = true;
      this.#subs.delete(sub);
      buffer.length = 0;
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w({ value: undefined, done: true });
      }
      return { value: undefined, done: true };
    };
    const it: AsyncIterableIterator<JobEvent> = {
      next: () => {
        const e = buffer.shift();
        if (e) return Promise.resolve({ value: e, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (waiter = resolve));
      },
      return: () => Promise.resolve(finish()),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Runs each hook; a hook that throws or rejects is logged with the job's fields. */
  #run<F>(hooks: Set<F>, call: (fn: F) => void | Promise<void>, job: HookSubject): void {
    for (const fn of hooks) {
      try {
        const r = call(fn);
        if (r && typeof (r as Promise<void>).then === 'function') {
          (r as Promise<void>).catch((e: unknown) => this.logger.error('a job hook rejected', { ...hookFields(job), error: String(e) }));
        }
      } catch (e) {
        this.logger.error('a job hook threw', { ...hookFields(job), error: String(e) });
      }
    }
  }
}

/** What a hook's log line names of its job. */
type HookSubject = Pick<Job, 'id' | 'type' | 'queue'> & { attempt: number | undefined };

/** The fields of a log line about a hook's job. */
function hookFields(job: HookSubject): Record<string, unknown> {
  return { jobId: job.id, type: job.type, queue: job.queue, attempt: job.attempt };
}

function add<F>(set: Set<F>, fn: F): Unsubscribe {
  set.add(fn);
  return () => set.delete(fn);
}
