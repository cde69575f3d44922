/**
 * Operators pruning by hand during a chaos run: `queue.prune()` called from the orchestrator and
 * from `PRUNERS` processes of their own (pruner.ts), all on one shared time grid a few ms apart,
 * so calls from different processes meet (one prunes, the others find the prune lock taken and
 * wait or give up). Workers prune too, in their maintenance (`pruneInterval`). Every call's
 * outcome is counted; a call that rejects is a violation (checkPruneCalls).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import type { Queue } from '../../src/queue/queue.js';
import type { FinalPrune } from './audit-data.js';
import type { PruneCallStats } from './audit-prune.js';
import type { ChaosDb } from './backend.js';
import type { Rng } from './options.js';
import { dbNow } from './prune-archive.js';

/** Pruner processes besides the orchestrator. */
export const PRUNERS = 2;
/** The grid every pruning process calls `queue.prune()` on (ms). */
export const PRUNE_GRID_MS = 2500;

/** Calls `queue.prune()` at every slot of the grid (plus 0–5 ms) until `signal` aborts. */
export async function pruneOnGrid(queue: Queue, rng: Rng, signal: AbortSignal, report: (deleted: number | Error) => void): Promise<void> {
  while (!signal.aborted) {
    const slot = (Math.floor(Date.now() / PRUNE_GRID_MS) + 1) * PRUNE_GRID_MS + rng.int(0, 5);
    try {
      await delay(slot - Date.now(), undefined, { signal });
    } catch {
      return;
    }
    try {
      report(await queue.prune());
    } catch (e) {
      report(e instanceof Error ? e : new Error(String(e)));
    }
  }
}

const PRUNER = new URL('./pruner.ts', import.meta.url).pathname;

/** The pruning processes of a run and the orchestrator's own pruning. */
export class PruneCrew {
  readonly stats: PruneCallStats = { processes: PRUNERS + 1, calls: 0, deleted: 0, errors: [] };
  readonly #procs: { proc: ChildProcess; exited: Promise<void> }[] = [];
  readonly #stop = new AbortController();
  readonly #log: WriteStream;
  #own: Promise<void> = Promise.resolve();

  constructor(
    private readonly queue: Queue,
    private readonly env: Record<string, string>,
    private readonly rng: Rng,
    logDir: string,
  ) {
    this.#log = createWriteStream(join(logDir, 'pruners.log'), { flags: 'a' });
  }

  /** Starts the pruner processes and the orchestrator's own calls. */
  start(): void {
    for (let i = 1; i <= PRUNERS; i++) this.#spawn(`P${i}`);
    this.#own = pruneOnGrid(this.queue, this.rng, this.#stop.signal, (r) => this.#count(r instanceof Error ? r.message : r));
  }

  /** Stops every pruner after the call in flight; resolves once they are gone. */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.#stop.abort();
    await this.#own;
    await Promise.all(
      this.#procs.map(async ({ proc, exited }) => {
        proc.kill('SIGTERM');
        const done = await Promise.race([exited.then(() => true), delay(timeoutMs).then(() => false)]);
        if (!done) {
          this.stats.errors.push(`pruner process ${proc.pid} did not stop within ${timeoutMs} ms`);
          proc.kill('SIGKILL');
          await exited;
        }
      }),
    );
    await new Promise<void>((resolve) => this.#log.end(resolve));
  }

  /** Emergency stop (the orchestrator is interrupted): SIGKILLs the pruner processes. */
  abort(): void {
    this.#stop.abort();
    for (const { proc } of this.#procs) if (proc.exitCode === null) proc.kill('SIGKILL');
  }

  #count(r: number | string): void {
    this.stats.calls++;
    if (typeof r === 'number') this.stats.deleted += r;
    else this.stats.errors.push(r);
  }

  #spawn(name: string): void {
    const proc = spawn(process.execPath, ['--import', 'tsx', PRUNER], { env: { ...process.env, ...this.env, CHAOS_PRUNER_NAME: name }, stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (line.startsWith('pruned ')) this.#count(Number(line.slice(7)));
      else if (line.startsWith('prune-error ')) this.#count(`${name}: ${line.slice(12)}`);
      this.#log.write(`${name} out ${line}\n`);
    });
    createInterface({ input: proc.stderr! }).on('line', (line) => this.#log.write(`${name} err ${line}\n`));
    const exited = new Promise<void>((resolve) =>
      proc.on('exit', (code, signal) => {
        if (code !== 0 && !this.#stop.signal.aborted) this.stats.errors.push(`pruner ${name} exited on its own: ${String(code ?? signal)}`);
        resolve();
      }),
    );
    this.#procs.push({ proc, exited });
  }
}

/**
 * The orchestrator's last `queue.prune()`, once every other process stopped (null when the run
 * keeps every finished job): nothing can be busy or locked, so every workflow due when it began
 * must be gone after it (checkFinalPrune).
 */
export async function lastPrune(queue: Queue, db: ChaosDb, retentionOn: boolean): Promise<FinalPrune | null> {
  if (!retentionOn) return null;
  const before = await dbNow(db);
  try {
    return { before, deleted: await queue.prune(), error: null };
  } catch (e) {
    return { before, deleted: 0, error: e instanceof Error ? e.message : String(e) };
  }
}
