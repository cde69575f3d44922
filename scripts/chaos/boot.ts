/**
 * Watching a worker after its `stop()` resolved, and the boot game of a chaos worker process:
 * `void worker.start(); await worker.stop()` at a point of the start drawn from the seed.
 *
 * A worker is watched through its own `Queue` over a wrapped storage: every storage call made
 * after the stop resolved, every line it logs after that, a LISTEN subscription still open a
 * moment later, and a `start()` promise that does not resolve are recorded as `zombie` effects
 * (one per kind of evidence). The stop instant itself is recorded as a `stopped` effect, so the
 * audit can also find handler runs of that worker that ended after it.
 */
import { setImmediate as immediate, setTimeout as delay } from 'node:timers/promises';
import type { Storage } from '../../src/storage/storage.js';
import type { Logger } from '../../src/types.js';
import type { Worker } from '../../src/worker/worker.js';
import type { Effects } from './effects.js';
import type { Rng } from './options.js';

/** Where in `start()` the boot game calls `stop()`. */
export type StopPoint = 'sync' | 'microtasks' | 'immediates' | 'ms' | 'late-ms';

/** A storage and a logger that report what a worker does after its `stop()` resolved. */
export class StopWatch {
  /** The instant `stop()` resolved, once it did. */
  stoppedAt: number | null = null;
  workerId = '';
  #openListens = 0;
  readonly #seen = new Set<string>();
  readonly #writes = new Set<Promise<unknown>>();

  constructor(private readonly effects: Effects) {}

  /** `storage`, with every call after the stop reported. */
  wrap(storage: Storage): Storage {
    return new Proxy(storage, {
      get: (target, prop) => {
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== 'function') return v;
        const fn = v as (...args: unknown[]) => unknown;
        return (...args: unknown[]) => {
          this.#late(`storage.${String(prop)}() called`);
          const out = fn.apply(target, args);
          return prop === 'listen' ? this.#trackListen(out as Promise<() => Promise<void>>) : out;
        };
      },
    });
  }

  /** `logger`, with every line logged after the stop reported. */
  logger(base: Logger): Logger {
    const watched = (level: keyof Logger) => (message: string, fields?: Record<string, unknown>) => {
      if (level !== 'debug') this.#late(`logged "${message}"`);
      base[level](message, fields);
    };
    return { debug: watched('debug'), info: watched('info'), warn: watched('warn'), error: watched('error') };
  }

  /** Records the stop instant (call right after `stop()` resolved). */
  async markStopped(info: string): Promise<void> {
    this.stoppedAt = Date.now();
    await this.effects.insert({ kind: 'stopped', jobId: this.workerId, runCount: -1, info, startedAt: this.stoppedAt });
  }

  /** Records a LISTEN subscription still open now, after the stop. */
  checkListens(): void {
    if (this.stoppedAt !== null && this.#openListens > 0) this.#report(`LISTEN subscription still open ${Date.now() - this.stoppedAt} ms after stop()`);
  }

  /** Records evidence against the stopped worker (once per kind). */
  report(what: string): void {
    this.#report(what);
  }

  #late(what: string): void {
    if (this.stoppedAt === null) return;
    this.#report(`${what} ${Date.now() - this.stoppedAt} ms after stop() resolved`);
  }

  #report(what: string): void {
    const key = what.replace(/\d+ ms/, '');
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    const write = this.effects.insert({ kind: 'zombie', jobId: this.workerId, runCount: -1, info: what.slice(0, 300) }).catch(() => {});
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
  }

  /** Waits until the evidence recorded so far is stored. */
  async flushed(): Promise<void> {
    await Promise.all([...this.#writes]);
  }

  async #trackListen(p: Promise<() => Promise<void>>): Promise<() => Promise<void>> {
    const unlisten = await p;
    this.#openListens++;
    let open = true;
    return async () => {
      await unlisten();
      if (open) this.#openListens--;
      open = false;
    };
  }
}

/**
 * Starts `worker` and stops it at a point drawn from `rng`; records the stop instant and any
 * evidence that the worker went on afterwards. Resolves with the point used.
 */
export async function stopDuringStart(worker: Worker, watch: StopWatch, rng: Rng): Promise<StopPoint> {
  const point = rng.pick<StopPoint>(['sync', 'microtasks', 'immediates', 'ms', 'late-ms']);
  const turns = rng.int(1, 6);
  const ms = point === 'late-ms' ? rng.int(100, 800) : rng.int(1, 60);
  watch.workerId = worker.id;
  const started = worker.start();
  let startSettled = false;
  started.then(
    () => (startSettled = true),
    (e: unknown) => {
      startSettled = true;
      watch.report(`start() rejected: ${String(e)}`);
    },
  );
  switch (point) {
    case 'sync':
      break;
    case 'microtasks':
      for (let i = 0; i < turns; i++) await Promise.resolve();
      break;
    case 'immediates':
      for (let i = 0; i < turns; i++) await immediate();
      break;
    default:
      await delay(ms);
  }
  await worker.stop();
  await watch.markStopped(`boot:${point}`);
  // start() resolves when the worker has stopped (after stop() resolved it must be settled soon).
  await Promise.race([started.catch(() => {}), delay(5000)]);
  if (!startSettled) watch.report('start() still pending 5 s after stop() resolved');
  return point;
}
