/**
 * The worker processes of a chaos run: spawns them, SIGKILLs one on demand and restarts it at
 * once, replaces a process that exited cleanly by its plan (`exit-by-plan`), notices crashes
 * (an exit nobody asked for), stops them gracefully at the end, and keeps the life record of
 * every process (pid, start, ready, exit) for the audit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** The life of one worker process. */
export interface ProcLife {
  name: string;
  pid: number;
  startedAt: number;
  /** When the process printed `ready`. */
  readyAt: number | null;
  /** The process announced a clean exit by its plan (after a worker stopped during its start). */
  plannedExit: boolean;
  /** When the orchestrator sent SIGKILL. */
  killedAt: number | null;
  /** When the orchestrator saw the process exit. */
  exitedAt: number | null;
  exit: number | string | null;
  /** Exited without being killed or asked to stop. */
  crashed: boolean;
  /**
   * When this process last reported an outcome of each job committed (`stored <id>` lines), by
   * job id: a job may run several times on one process, so the audit compares the time with the
   * run in question.
   */
  stored: Map<string, number>;
  /**
   * When this process's worker logged each job's lease as run out (heartbeats did not renew it
   * in time, so the run was abandoned), by job id.
   */
  leaseRanOut: Map<string, number>;
  /** The slowest heartbeat call of this process (ms; only calls of 500 ms or more are reported) and when it was sent. */
  slowestHeartbeat: { ms: number; sentAt: number } | null;
}

interface Slot {
  index: number;
  generation: number;
  proc: ChildProcess | undefined;
  life: ProcLife | undefined;
  exited: Promise<void>;
}

const WORKER = new URL('./worker.ts', import.meta.url).pathname;

/** A fixed number of worker slots, each always holding one live process until `stop()`. */
export class Fleet {
  readonly lives: ProcLife[] = [];
  readonly #slots: Slot[] = [];
  readonly #log: WriteStream;
  #stopping = false;
  #draining = false;
  kills = 0;
  /** Processes that exited cleanly by their plan. */
  plannedExits = 0;

  constructor(
    private readonly count: number,
    private readonly env: Record<string, string>,
    logDir: string,
  ) {
    this.#log = createWriteStream(join(logDir, 'workers.log'), { flags: 'a' });
  }

  /** Processes that exited without being killed or stopped. */
  get crashes(): ProcLife[] {
    return this.lives.filter((l) => l.crashed);
  }

  /** Starts every slot and waits until each process printed `ready`. */
  async start(): Promise<void> {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < this.count; i++) {
      const slot: Slot = { index: i, generation: 0, proc: undefined, life: undefined, exited: Promise.resolve() };
      this.#slots.push(slot);
      ready.push(this.#spawn(slot));
    }
    await Promise.all(ready);
  }

  /** How long the process of slot `index` has been up (ms), or -1 when it is not running. */
  uptime(index: number): number {
    const life = this.#slots[index]?.life;
    return life && life.exitedAt === null ? Date.now() - life.startedAt : -1;
  }

  /** From now on, processes start in the drain phase (no schedule definitions, no boot game). */
  drain(): void {
    this.#draining = true;
  }

  /**
   * Waits until every slot holds a process that printed `ready` (processes that exit by plan
   * are replaced meanwhile). False after `timeoutMs`.
   */
  async settled(timeoutMs = 60_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.#slots.every((s) => s.life !== undefined && s.life.readyAt !== null && s.life.exitedAt === null)) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  }

  /** Emergency stop (the orchestrator is interrupted): SIGKILLs every live process. */
  abort(): void {
    this.#stopping = true;
    for (const slot of this.#slots) if (slot.life?.exitedAt === null) slot.proc?.kill('SIGKILL');
  }

  /** SIGKILLs the process of slot `index` and starts its replacement at once. */
  async kill(index: number): Promise<ProcLife | undefined> {
    const slot = this.#slots[index];
    if (!slot?.proc || !slot.life || slot.life.exitedAt !== null) return undefined;
    const life = slot.life;
    life.killedAt = Date.now();
    slot.proc.kill('SIGKILL');
    this.kills++;
    await slot.exited;
    void this.#spawn(slot);
    return life;
  }

  /** Stops every process gracefully (SIGTERM), SIGKILLing any still alive after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.#stopping = true;
    const exits = this.#slots.map(async (slot) => {
      if (!slot.proc || !slot.life || slot.life.exitedAt !== null) return;
      slot.proc.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        slot.exited.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
      ]);
      clearTimeout(timer);
      if (timedOut && slot.life.exitedAt === null) {
        slot.life.crashed = true; // did not stop within its drain budget
        slot.proc.kill('SIGKILL');
        await slot.exited;
      }
    });
    await Promise.all(exits);
    await new Promise<void>((resolve) => this.#log.end(resolve));
  }

  #spawn(slot: Slot): Promise<void> {
    slot.generation++;
    const name = `W${slot.index + 1}.${slot.generation}`;
    const proc = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      env: { ...process.env, ...this.env, CHAOS_WORKER_NAME: name, CHAOS_PHASE: this.#draining ? 'drain' : 'load' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const life: ProcLife = { name, pid: proc.pid ?? -1, startedAt: Date.now(), readyAt: null, plannedExit: false, killedAt: null, exitedAt: null, exit: null, crashed: false, stored: new Map(), leaseRanOut: new Map(), slowestHeartbeat: null };
    this.lives.push(life);
    slot.proc = proc;
    slot.life = life;
    let onReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (line.startsWith('stored ')) {
        life.stored.set(line.slice(7), Date.now());
        return;
      }
      if (line.startsWith('slow-heartbeat ')) {
        const [sentAt, ms] = line.slice(15).split(' ').map(Number);
        if (ms! > (life.slowestHeartbeat?.ms ?? 0)) life.slowestHeartbeat = { ms: ms!, sentAt: sentAt! };
      }
      if (line.startsWith('ready ')) {
        life.readyAt = Date.now();
        onReady();
      }
      if (line.startsWith('exit-by-plan ')) life.plannedExit = true;
      this.#log.write(`${name} out ${line}\n`);
    });
    createInterface({ input: proc.stderr! }).on('line', (line) => {
      if (line.includes('"job leases ran out')) for (const id of leaseRanOutIds(line)) life.leaseRanOut.set(id, Date.now());
      this.#log.write(`${name} err ${line}\n`);
    });
    slot.exited = new Promise<void>((resolve) => {
      proc.on('exit', (code, signal) => {
        life.exitedAt = Date.now();
        life.exit = code ?? signal;
        onReady();
        const expected = life.killedAt !== null || (this.#stopping && code === 0);
        if (life.plannedExit && code === 0 && life.killedAt === null) {
          this.plannedExits++;
          if (!this.#stopping) void this.#spawn(slot);
        } else if (!expected) {
          life.crashed = true;
          this.#log.write(`${name} CRASHED exit=${String(life.exit)}\n`);
          // Keep the run going; the crash is reported as a violation.
          if (!this.#stopping) void this.#spawn(slot);
        }
        resolve();
      });
    });
    return ready;
  }
}

/** The job ids of a worker's "job leases ran out" warning (one JSON line of its log). */
function leaseRanOutIds(line: string): string[] {
  try {
    const fields = JSON.parse(line) as { message?: unknown; jobIds?: unknown };
    if (typeof fields.message !== 'string' || !fields.message.startsWith('job leases ran out') || !Array.isArray(fields.jobIds)) return [];
    return fields.jobIds.filter((id): id is string => typeof id === 'string');
  } catch {
    return [];
  }
}
