// Command-line flags of bench/run.mjs.

export const ALL_TARGETS = ['sdj-sqlite', 'sdj-postgres', 'graphile-worker', 'pg-boss', 'bullmq', 'dbos'];
export const ALL_SHAPES = ['enqueue-single', 'enqueue-batch', 'drain', 'drain-1m', 'drain-after-history', 'drain-limited', 'drain-keyed', 'drain-otel', 'drain-passthrough', 'fleet',
  'latency', 'workflow', 'workflow-serial', 'fan-out', 'sleep-steps', 'fan-out-resume', 'memory', 'retention-steady'];
/** Shapes of ours only, run on every target with `ours` (they use the library beyond the target interface). */
export const OURS_ONLY_SHAPES = ['drain-limited', 'drain-keyed', 'drain-otel', 'drain-passthrough', 'retention-steady'];

const FULL = { 'enqueue-single': 5000, 'enqueue-batch': 20000, drain: 20000, 'drain-1m': 1_000_000, 'drain-after-history': 20000,
  'drain-limited': 20000, 'drain-keyed': 20000, 'drain-otel': 20000, 'drain-passthrough': 20000, fleet: 20000,
  latency: 200, workflow: 500, 'workflow-serial': 200, 'fan-out': 10000, 'sleep-steps': 200, 'fan-out-resume': 200, memory: 100000,
  'retention-steady': 50 };
const QUICK = { 'enqueue-single': 200, 'enqueue-batch': 200, drain: 200, 'drain-1m': 1000, 'drain-after-history': 200,
  'drain-limited': 200, 'drain-keyed': 200, 'drain-otel': 200, 'drain-passthrough': 200, fleet: 200,
  latency: 20, workflow: 20, 'workflow-serial': 10, 'fan-out': 200, 'sleep-steps': 20, 'fan-out-resume': 20, memory: 1000,
  'retention-steady': 20 };
/** Finished jobs put in storage before `drain-after-history` (written by SQL, see bench/README.md). */
const HISTORY = { full: 5_000_000, quick: 2000 };
/** Concurrency keys of `drain-keyed` (its jobs are spread over them in equal consecutive blocks). */
const KEYS = { full: 1000, quick: 10 };

/**
 * Shapes whose one run takes minutes (a million jobs, a 5,000,000-row fixture, three fleets):
 * one run each unless --runs is given, and a longer time limit unless --timeout is given.
 */
export const HEAVY_SHAPES = ['drain-1m', 'drain-after-history', 'fleet', 'retention-steady'];
const HEAVY_TIMEOUT_S = 1800;

export const USAGE = `usage: node bench/run.mjs [flags]
  --quick              tiny counts, 1 run, no docs/benchmarks.md (CI smoke; numbers mean nothing)
  --targets a,b        ${ALL_TARGETS.join(', ')} (default: all)
  --shapes x,y         ${ALL_SHAPES.join(', ')} (default: all)
  --runs N             runs per shape and target; the median is reported (default 3; 1 for
                       ${HEAVY_SHAPES.join(', ')})
  --count N            job count for every shape, or per shape: --count drain=5000,latency=50
                       (retention-steady: root jobs enqueued per second, default 50)
  --history N          finished jobs in storage before drain-after-history (default 5000000)
  --keys N             concurrency keys of drain-keyed (default 1000; --quick: 10)
  --batch-size N       enqueue-batch / pre-enqueue batch size (default 1000)
  --steps N            ctx.call steps per workflow, ctx.sleep steps per sleep-steps workflow (default 5)
  --concurrency N      workflows in flight (default 16)
  --baseline NAME      target the ratios are relative to (default sdj-postgres, else sdj-sqlite)
  --timeout S          per run time limit in seconds (default 600; ${HEAVY_TIMEOUT_S} for the heavy shapes)
  --out PATH           where to write the report (default docs/benchmarks.md; --quick writes only with --out)
  --no-write           print the table only`;

function list(value, allowed, what) {
  const items = String(value).split(',').map((s) => s.trim()).filter(Boolean);
  for (const x of items) if (!allowed.includes(x)) throw new Error(`unknown ${what} '${x}' (known: ${allowed.join(', ')})`);
  return items;
}

function int(value, flag) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} needs a positive integer, got '${value}'`);
  return n;
}

export function parseArgs(argv) {
  const o = { quick: false, targets: ALL_TARGETS, shapes: ALL_SHAPES, shapesGiven: false, runs: undefined, countAll: undefined, counts: {}, history: undefined, keys: undefined,
    batchSize: 1000, steps: 5, concurrency: 16, baseline: undefined, timeoutS: undefined, out: undefined, write: true, help: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => (inline !== undefined ? inline : argv[++i] ?? '');
    switch (flag) {
      case '--quick': o.quick = true; break;
      case '--targets': o.targets = list(value(), ALL_TARGETS, 'target'); break;
      case '--shapes': o.shapes = list(value(), ALL_SHAPES, 'shape'); o.shapesGiven = true; break;
      case '--runs': o.runs = int(value(), flag); break;
      case '--count': {
        const v = value();
        if (/^\d+$/.test(v)) o.countAll = int(v, flag);
        else for (const kv of v.split(',')) {
          const [k, n] = kv.split('=');
          list(k, ALL_SHAPES, 'shape');
          o.counts[k] = int(n, `--count ${k}`);
        }
        break;
      }
      case '--history': o.history = int(value(), flag); break;
      case '--keys': o.keys = int(value(), flag); break;
      case '--batch-size': o.batchSize = int(value(), flag); break;
      case '--steps': o.steps = int(value(), flag); break;
      case '--concurrency': o.concurrency = int(value(), flag); break;
      case '--baseline': o.baseline = list(value(), ALL_TARGETS, 'target')[0]; break;
      case '--timeout': o.timeoutS = int(value(), flag); break;
      case '--out': o.out = value(); break;
      case '--no-write': o.write = false; break;
      case '-h': case '--help': o.help = true; break;
      default: throw new Error(`unknown flag '${argv[i]}'\n${USAGE}`);
    }
  }
  const base = o.quick ? QUICK : FULL;
  const runs = o.runs;
  o.runs ??= o.quick ? 1 : 3;
  o.history ??= o.quick ? HISTORY.quick : HISTORY.full;
  o.keys ??= o.quick ? KEYS.quick : KEYS.full;
  o.countFor = (shape) => o.counts[shape] ?? o.countAll ?? base[shape];
  o.runsFor = (shape) => runs ?? (HEAVY_SHAPES.includes(shape) ? 1 : o.runs);
  o.timeoutFor = (shape) => o.timeoutS ?? (HEAVY_SHAPES.includes(shape) ? HEAVY_TIMEOUT_S : 600);
  if (o.quick && o.out === undefined) o.write = false;
  return o;
}

/** Parameters handed to one shape run. */
export function shapeParams(o, shape) {
  return {
    count: o.countFor(shape),
    batchSize: o.batchSize,
    steps: o.steps,
    concurrency: o.concurrency,
    sleepMs: 50,
    fanOutChildren: 4,
    history: o.history,
    keys: o.keys,
    timeoutMs: o.timeoutFor(shape) * 1000,
    idleMs: o.quick ? 100 : 300,
    gapMs: o.quick ? 2 : 10,
    quick: o.quick,
  };
}
