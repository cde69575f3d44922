#!/usr/bin/env node
// simple-durable-jobs benchmark orchestrator: every shape on every target, one table.
//   node bench/run.mjs [--quick] [--targets a,b] [--shapes x,y] [--runs N] [--count ...]
// Each (target, shape, run) runs in its own driver process (lib/driver.mjs) with fresh
// state; worker-side shapes fork a separate worker process (lib/worker-child.mjs).
// Exit status is non-zero only when a run errors, never because of a figure.
import { fork } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import os from 'node:os';
import path from 'node:path';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
if (!existsSync(path.join(BENCH, 'node_modules', 'pg'))) {
  console.error('bench dependencies are missing: run `npm --prefix bench ci` first');
  process.exit(2);
}

const { parseArgs, shapeParams, USAGE, HEAVY_SHAPES, OURS_ONLY_SHAPES } = await import('./lib/args.mjs');
const { median, medianMetrics } = await import('./lib/stats.mjs');
/** Sustained drains reported against the same target's drain (`vsDrain`). */
const VS_DRAIN = ['drain-1m', 'drain-after-history', 'drain-limited', 'drain-keyed', 'drain-otel', 'drain-passthrough'];
const { buildTable, buildDoc, errorList, FLOW_PEERS_NOTE, FLOW_SHAPES } = await import('./lib/report.mjs');
const { OTEL_NOTE } = await import('./lib/otel.mjs');
const { PASSTHROUGH_NOTE } = await import('./lib/passthrough.mjs');
const { retentionSection } = await import('./lib/retention-report.mjs');
const { machineInfo, postgresInfo, redisInfo } = await import('./lib/environment.mjs');
const { dropDatabasesLike } = await import('./lib/pg.mjs');
const { sweepStale } = await import('./lib/cleanup.mjs');
const { REPO_DIR } = await import('./lib/util.mjs');

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (err) {
  console.error(err.message);
  process.exit(2);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}

const DB_PREFIX = `sdj_bench_${process.pid}_`;
const targetUrl = (name) => pathToFileURL(path.join(BENCH, 'targets', `${name}.mjs`)).href;
const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

let current; // the running driver, killed with its process group on SIGINT/SIGTERM
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, async () => {
    log(`${sig}: stopping`);
    try {
      if (current) process.kill(-current.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await dropDatabasesLike(DB_PREFIX).catch(() => {});
    process.exit(130);
  });
}

/** One run in a fresh driver process group, bounded by the time limit. */
function runOnce(name, shape, params, seq) {
  return new Promise((resolve) => {
    const driver = (current = fork(path.join(BENCH, 'lib', 'driver.mjs'), [], {
      detached: true, // own process group, so a hung run and its worker child can be killed together
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    }));
    let reply;
    const limit = params.timeoutMs + 60_000;
    const timer = setTimeout(() => {
      reply ??= { ok: false, error: `run exceeded ${limit / 1000} s and was killed` };
      try {
        process.kill(-driver.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, limit);
    driver.on('message', (msg) => (reply ??= msg));
    driver.on('exit', (code, signal) => {
      clearTimeout(timer);
      try {
        process.kill(-driver.pid, 'SIGKILL'); // any worker child left behind
      } catch {
        /* group already empty */
      }
      resolve(reply ?? { ok: false, error: `driver exited (code ${code}, signal ${signal}) without a result` });
    });
    driver.send({ targetUrl: targetUrl(name), shape, params, env: { dbPrefix: DB_PREFIX, seq } });
  });
}

const swept = await sweepStale().catch((err) => log(`could not sweep old runs: ${err.message}`));
if (swept?.databases || swept?.keys) log(`removed leftovers of dead runs: ${swept.databases} database(s), ${swept.keys} Redis key(s)`);

const started = new Date();
const results = new Map();
const meta = new Map();
const details = []; // per-run detail of shapes that return one (retention-steady's samples)
let seq = 0;
let failures = 0;
// Other work on the machine slows the round-trip-heavy targets most (DBOS makes ~9 round trips
// per step): the busiest 1-minute load average seen when a run started goes into the report.
let busiest = { load: -1, where: '' };

for (const name of opts.targets) {
  let target;
  try {
    target = (await import(targetUrl(name))).default;
  } catch (err) {
    log(`${name}: cannot load target module: ${err.message}`);
    results.set(name, new Map([[opts.shapes[0], { error: `cannot load: ${err.message}` }]]));
    failures++;
    continue;
  }
  meta.set(name, { version: target.version(), settings: target.settings, ours: Boolean(target.ours), note: target.note });
  const perShape = new Map();
  results.set(name, perShape);
  let fatal;
  try {
    target.preflight?.();
  } catch (err) {
    fatal = err.message;
    failures++;
    log(`${name}: ${fatal}`);
  }
  // A target's optional shapes run only when --shapes names them.
  const runnable = [...target.shapes, ...(target.ours ? OURS_ONLY_SHAPES : []), ...(opts.shapesGiven ? target.optionalShapes ?? [] : [])];
  const shapes = opts.shapes.filter((s) => runnable.includes(s));
  if (fatal) {
    for (const shape of shapes) perShape.set(shape, { error: fatal });
    continue;
  }
  /** Per shape: its parameters, its runs' metrics so far, and the error that ended its runs. */
  const state = new Map(shapes.map((shape) => [shape, { params: shapeParams(opts, shape), runCount: opts.runsFor(shape), runs: [], error: undefined }]));
  async function runShape(shape, r) {
    const st = state.get(shape);
    if (st.error || fatal) return;
    const t0 = Date.now();
    const load = os.loadavg()[0];
    if (load > busiest.load) busiest = { load, where: `${name} ${shape}` };
    const reply = await runOnce(name, shape, st.params, ++seq);
    if (reply.ok) {
      const { detail, ...metrics } = reply.metrics;
      st.runs.push(metrics);
      if (detail) details.push({ target: name, shape, run: r + 1, detail });
      const shown = Object.entries(metrics).map(([k, v]) => `${k}=${+v.toPrecision(4)}`).join(' ');
      log(`${name} ${shape} run ${r + 1}/${st.runCount}: ${shown} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } else {
      st.error = reply.error;
      const stack = process.env.BENCH_DEBUG && reply.stack ? `\n${reply.stack}` : '';
      log(`${name} ${shape} run ${r + 1}/${st.runCount} FAILED: ${reply.error}${stack}`);
      if (/build not found/.test(reply.error)) fatal = reply.error;
    }
  }
  // The shapes compared with drain run in rounds with it (drain's run r, then theirs), so that
  // the machine's drift over the minutes of a run affects both sides of each ratio alike.
  const paired = shapes.includes('drain') ? shapes.filter((s) => s === 'drain' || (VS_DRAIN.includes(s) && !HEAVY_SHAPES.includes(s))) : [];
  for (const shape of shapes) {
    if (!paired.includes(shape)) {
      for (let r = 0; r < state.get(shape).runCount; r++) await runShape(shape, r);
    } else if (shape === paired[0]) {
      const rounds = Math.max(...paired.map((s) => state.get(s).runCount));
      for (let r = 0; r < rounds; r++) for (const s of paired) if (r < state.get(s).runCount) await runShape(s, r);
    }
  }
  for (const [shape, st] of state) {
    if (st.error || (fatal && st.runs.length === 0)) {
      failures++;
      perShape.set(shape, { error: st.error ?? fatal, runs: st.runs.length });
    } else {
      perShape.set(shape, { metrics: medianMetrics(st.runs), runs: st.runs.length });
    }
  }
  // Sustained drains against the same target's 20,000-job drain of this run: the median of the
  // ratios of the rounds when the shape ran in rounds with drain, else the ratio of the medians.
  const drainRuns = state.get('drain')?.runs ?? [];
  const drainRate = perShape.get('drain')?.metrics?.jobsPerSec;
  for (const s of VS_DRAIN) {
    const m = perShape.get(s)?.metrics;
    if (!m?.jobsPerSec || !drainRate) continue;
    const runs = state.get(s).runs;
    const rounds = paired.includes(s) && runs.length === drainRuns.length;
    m.vsDrain = rounds ? median(runs.map((x, i) => x.jobsPerSec / drainRuns[i].jobsPerSec)) : m.jobsPerSec / drainRate;
  }
}
await dropDatabasesLike(DB_PREFIX).catch((err) => log(`could not drop leftover databases: ${err.message}`));

const shown = opts.targets.filter((t) => results.has(t));
const hasValues = (t) => [...(results.get(t)?.values() ?? [])].some((r) => r.metrics);
const baseline = [opts.baseline, 'sdj-postgres', 'sdj-sqlite'].find((t) => t && shown.includes(t) && hasValues(t));
const ranShapes = opts.shapes.filter((s) => [...results.values()].some((m) => m.has(s)));
const counts = Object.fromEntries(ranShapes.map((s) => [s, opts.countFor(s)]));
const history = ranShapes.includes('drain-after-history') ? opts.history : undefined;
const keys = ranShapes.includes('drain-keyed') ? opts.keys : undefined;
const table = buildTable(shown, results, baseline, counts, history, keys);
const errors = errorList(results);
console.log(`\n${table}\n`);
const flowRan = ranShapes.some((s) => FLOW_SHAPES.includes(s));
if (flowRan) console.log(`${FLOW_PEERS_NOTE}\n`);
const otelRan = ranShapes.includes('drain-otel');
if (otelRan) console.log(`${OTEL_NOTE}\n`);
const passthroughRan = ranShapes.includes('drain-passthrough');
if (passthroughRan) console.log(`${PASSTHROUGH_NOTE}\n`);
const runsNote = ranShapes.map((sh) => opts.runsFor(sh)).some((n) => n !== opts.runs)
  ? `; ${HEAVY_SHAPES.filter((sh) => ranShapes.includes(sh)).join(', ')}: ${opts.runsFor(HEAVY_SHAPES[0])} run(s)`
  : '';
if (baseline) console.log(`ratios: figure / ${baseline}'s figure; medians of ${opts.runs} run(s)${runsNote}`);
if (errors) console.log(`\nerrors:\n${errors}`);
const sections = retentionSection(details);
if (sections) console.log(`\n${sections}`);

if (opts.write) {
  const versions = { ...(await postgresInfo()), ...(await redisInfo()) };
  const settings = {};
  for (const [t, m] of meta) {
    versions[t] = m.ours ? `simple-durable-jobs ${m.version}` : m.version;
    settings[t] = m.settings;
  }
  settings.counts = Object.entries(counts).map(([s, n]) => `${s} ${n}`).join(', ');
  if (history) settings.history = `${history} completed jobs written by SQL before drain-after-history (ours)`;
  settings.runs = `${opts.runs} per shape and target (median reported)${runsNote}`;
  const notes = [];
  if (shown.includes('bullmq')) notes.push('BullMQ keeps its jobs in Redis memory: its completions are only as durable as the Redis persistence settings above.');
  if (shown.includes('pg-boss')) notes.push('pg-boss v10 polls (no LISTEN/NOTIFY; minimum interval 0.5 s), which bounds its idle latency; versions 11+ need Node >= 22.');
  if (shown.includes('graphile-worker')) notes.push('graphile-worker 0.18 needs Node >= 22.18, so 0.17.3 is measured.');
  if (history) notes.push('drain-after-history runs on our targets only: graphile-worker deletes completed jobs and BullMQ removes them (removeOnComplete), so they carry no history; pg-boss would need a fixture written into its own schema.');
  if (ranShapes.includes('drain-1m') && shown.includes('pg-boss') && !results.get('pg-boss')?.has('drain-1m')) {
    notes.push('drain-1m leaves pg-boss out unless --shapes names it: with a backlog of 1,000,000 its fetch slows to about 500 jobs/s (437,000 jobs in 15 min on this machine), past the time limit of a run.');
  }
  if (flowRan) notes.push(FLOW_PEERS_NOTE);
  if (otelRan) notes.push(OTEL_NOTE);
  if (passthroughRan) notes.push(PASSTHROUGH_NOTE);
  if (ranShapes.includes('fleet')) notes.push('fleet runs on PostgreSQL targets that start several worker processes on one database: ours and graphile-worker (pg-boss is bound by its 0.5 s polling, BullMQ is not on PostgreSQL).');
  for (const [, m] of meta) if (m.note) notes.push(m.note);
  const doc = buildDoc({
    date: started.toISOString(),
    command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { ...machineInfo(), "highest 1-min load average at a run's start": `${busiest.load.toFixed(2)} (before ${busiest.where}; ${os.cpus().length} CPUs)` },
    versions,
    settings,
    params: { runs: opts.runs, batchSize: opts.batchSize, steps: opts.steps, concurrency: opts.concurrency, workflow: counts.workflow, counts, history, keys },
    table,
    errors,
    baseline,
    notes,
    sections,
  });
  const out = path.resolve(opts.out ?? path.join(REPO_DIR, 'docs', 'benchmarks.md'));
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, doc);
  log(`wrote ${out}`);
}
log(`done in ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s${failures ? `, ${failures} failed shape(s)` : ''}`);
process.exit(failures ? 1 : 0);
