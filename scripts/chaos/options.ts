/**
 * Command-line options of the chaos run and the seeded random source every random choice of
 * the orchestrator goes through (so a seed reproduces the same plan: the same jobs, the same
 * kill schedule, the same signals and cancellations; only the OS interleaving differs).
 */

/** Which database the run tortures. */
export type Backend = 'postgres' | 'mysql' | 'sqlite';

/** Parsed options of `npm run chaos -- ...`. */
export interface ChaosOptions {
  backend: Backend;
  /** Length of the load-and-kill phase (fractions allowed). */
  minutes: number;
  seed: number;
  /** Worker processes. */
  workers: number;
  /** Multiplies the load (jobs per second). */
  scale: number;
  /** Mean seconds between two SIGKILLs. */
  killEvery: number;
  /** Keep the database (schema, database or file) after the run, for inspection. */
  keep: boolean;
  /** Longest wait for the backlog to drain after the load stopped. */
  drainSeconds: number;
  /**
   * Audit self-check: `lease` runs the workers with a lease far shorter than their heartbeat
   * interval, so live owners lose their jobs to other workers; the audit must report it.
   * `prune` deletes an unfinished job, a root younger than its age and a finished child of an
   * unfinished workflow as if it were a prune (holding the prune lock); the audit must report each.
   * `flow` runs the workers with the flow types registered without limits (the queue limit stays):
   * the flow audits must report the type limits exceeded and missing.
   */
  fault: 'none' | 'lease' | 'prune' | 'flow';
  /** How many violations of each invariant to print. */
  examples: number;
  /**
   * Retention the queues run with (ms per finished status), or null (`--retention off`: keep
   * every finished job). `--retention N`: completed jobs N s, failed and cancelled ones 2N s.
   */
  retention: RetentionAges | null;
}

/** Retention ages per finished status, in ms. */
export interface RetentionAges {
  completed: number;
  failed: number;
  cancelled: number;
}

/** The ages of `--retention <seconds>`: completed jobs that long, failed and cancelled ones twice that. */
export function retentionAges(seconds: number): RetentionAges {
  const ms = Math.round(seconds * 1000);
  return { completed: ms, failed: 2 * ms, cancelled: 2 * ms };
}

const USAGE = `usage: npm run chaos -- [--backend postgres|mysql|sqlite] [--minutes 2] [--seed 42]
                     [--workers 4] [--scale 1] [--kill-every 3.5] [--drain-seconds 180] [--keep]
                     [--retention 20 | off]   (completed jobs kept N s, failed/cancelled 2N s)
                     [--fault lease|prune|flow]    (audit self-check: must end with violations)
                     [--examples 5]    (violations printed per invariant)`;

/** Parses argv (after the script name). Throws with a usage text on bad input. */
export function parseOptions(argv: readonly string[]): ChaosOptions {
  const o: ChaosOptions = { backend: 'postgres', minutes: 2, seed: 42, workers: 4, scale: 1, killEvery: 3.5, keep: false, drainSeconds: 180, fault: 'none', examples: 5, retention: retentionAges(20) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    const num = (min: number, max: number): number => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < min || v > max) throw new Error(`${flag} must be a number in [${min}, ${max}]\n${USAGE}`);
      return v;
    };
    switch (flag) {
      case '--backend': {
        const b = value();
        if (b !== 'postgres' && b !== 'mysql' && b !== 'sqlite') throw new Error(`unknown backend "${b}"\n${USAGE}`);
        o.backend = b;
        break;
      }
      case '--minutes':
        o.minutes = num(0.05, 24 * 60);
        break;
      case '--seed':
        o.seed = Math.trunc(num(0, 2 ** 32 - 1));
        break;
      case '--workers':
        o.workers = Math.trunc(num(2, 32));
        break;
      case '--scale':
        o.scale = num(0.05, 100);
        break;
      case '--kill-every':
        o.killEvery = num(0.5, 3600);
        break;
      case '--drain-seconds':
        o.drainSeconds = num(10, 3600);
        break;
      case '--fault': {
        const f = value();
        if (f !== 'none' && f !== 'lease' && f !== 'prune' && f !== 'flow') throw new Error(`unknown fault "${f}"\n${USAGE}`);
        o.fault = f;
        break;
      }
      case '--retention': {
        const r = inline ?? argv[i + 1];
        if (r === 'off') {
          if (inline === undefined) i++;
          o.retention = null;
        } else o.retention = retentionAges(num(1, 24 * 3600));
        break;
      }
      case '--examples':
        o.examples = Math.trunc(num(0, 1e6));
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--help':
      case '-h':
        throw new Error(USAGE);
      default:
        throw new Error(`unknown option "${arg}"\n${USAGE}`);
    }
  }
  return o;
}

/** A stream number derived from a name (FNV-1a), for an `Rng` of its own per worker process. */
export function streamOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return 1000 + (h % 1_000_000);
}

/** A small seeded PRNG (mulberry32): fast, good enough for test plans, reproducible. */
export class Rng {
  #s: number;

  /** @param seed any 32-bit integer; `stream` derives independent sequences from one seed */
  constructor(seed: number, stream = 0) {
    this.#s = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A count whose mean is `mean` (whole part plus a Bernoulli of the fraction). */
  count(mean: number): number {
    const whole = Math.floor(mean);
    return whole + (this.chance(mean - whole) ? 1 : 0);
  }

  /** A hex token of `n` characters (for payload nonces). */
  token(n = 12): string {
    let s = '';
    while (s.length < n) s += Math.floor(this.next() * 0x100000000).toString(16).padStart(8, '0');
    return s.slice(0, n);
  }
}
