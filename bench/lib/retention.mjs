// retention-steady (ours): do table and index sizes stay flat under a steady load with
// retention on? Two fresh databases of the same target run side by side for the same wall
// time, each with its own worker process and the same paced producer (lib/retention-mix.mjs):
// one whose Queue has retention ages scaled down to seconds, one with `retention: false`.
// Their sizes are sampled every few seconds from the database catalog (lib/retention-sizes.mjs).
//
// Time scale: only the ages (and the prune interval) are scaled; rates, the maintenance pass
// and everything else run in real time. The run spans several retention periods, which is what
// decides whether sizes level off; see bench/README.md ("retention-steady").
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { CONCURRENCY, loadLibrary } from '../targets/sdj-common.mjs';
import { mixProducer, openStorage } from './retention-mix.mjs';
import { autovacuumSettings, autovacuumStandIn, sizeSampler } from './retention-sizes.mjs';
import { nowMs, sleep } from './stats.mjs';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'retention-child.mjs');

/**
 * The scaled settings. Warm-up: two periods of the longest age, after which every kind of
 * finished job is being pruned as fast as it finishes. Steady phase: the rest of the run.
 */
export const RETENTION_SCALE = {
  full: { ages: { completed: 20_000, failed: 40_000, cancelled: 40_000 }, runS: 160, sampleS: 5, pruneInterval: 1000, vacuumEveryS: 5 },
  quick: { ages: { completed: 5_000, failed: 10_000, cancelled: 10_000 }, runS: 40, sampleS: 2, pruneInterval: 1000, vacuumEveryS: 2 },
};
/** Flat: the total size (tables + indexes) after warm-up stays within this max ÷ min. */
export const FLAT_TOLERANCE = 1.2;
const TICK_MS = 100;

/** The settings of this run: `p.quick` picks the scale; BENCH_RETENTION_RUN_S lengthens (or shortens) the run. */
export function retentionSettings(p) {
  const s = { ...(p.quick ? RETENTION_SCALE.quick : RETENTION_SCALE.full) };
  s.warmUpS = (2 * Math.max(...Object.values(s.ages))) / 1000;
  const runS = Number(process.env.BENCH_RETENTION_RUN_S || s.runS);
  if (!(runS >= s.warmUpS + 2 * s.sampleS)) throw new Error(`BENCH_RETENTION_RUN_S must be at least ${s.warmUpS + 2 * s.sampleS} (the warm-up and two samples)`);
  s.runS = runS;
  s.rate = p.count;
  s.vacuum = process.env.BENCH_RETENTION_VACUUM === 'server' ? 'server' : 'stand-in';
  return s;
}

/** A worker process of this shape (lib/retention-child.mjs), answering one request at a time. */
function startChild(init) {
  const proc = fork(CHILD, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' });
  proc.stdout.pipe(process.stderr);
  proc.stderr.pipe(process.stderr);
  let waiter;
  let failure;
  let exited = false;
  const settle = (msg) => {
    if (msg.ev === 'error' || msg.ev === 'exit') failure ??= msg.ev === 'error' ? `worker process: ${msg.message}` : `worker process exited (code ${msg.code})`;
    const w = waiter;
    waiter = undefined;
    if (!w) return;
    if (failure) w.reject(new Error(failure));
    else if (msg.ev === w.ev) w.resolve(msg);
  };
  proc.on('message', settle);
  proc.on('exit', (code) => {
    exited = true;
    settle({ ev: 'exit', code });
  });
  const request = (cmd, ev, timeoutMs = 60_000) =>
    new Promise((resolve, reject) => {
      if (failure) return reject(new Error(failure));
      const timer = setTimeout(() => reject(new Error(`worker process: no ${ev} within ${timeoutMs} ms`)), timeoutMs);
      waiter = { ev, resolve: (m) => (clearTimeout(timer), resolve(m)), reject: (e) => (clearTimeout(timer), reject(e)) };
      proc.send(cmd);
    });
  return {
    ready: request({ cmd: 'init', ...init }, 'ready'),
    /** Throws if the process reported an error or exited. */
    check() {
      if (failure) throw new Error(failure);
    },
    counters: () => request({ cmd: 'counters' }, 'counters'),
    async stop() {
      if (!exited) await request({ cmd: 'stop' }, 'stopped');
    },
    kill() {
      if (!exited) proc.kill('SIGKILL');
    },
  };
}

/**
 * Least-squares slope of ys over ts, times `periodS`, divided by the mean of ys: the trend
 * per period as a fraction of the level (0.1: growing by a tenth of the size each period).
 */
export function trendPerPeriod(ts, ys, periodS) {
  const n = ts.length;
  const mt = ts.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (ts[i] - mt) * (ys[i] - my);
    den += (ts[i] - mt) ** 2;
  }
  return den === 0 || my === 0 ? 0 : ((num / den) * periodS) / my;
}

/**
 * Figures of the samples after warm-up: max ÷ min and last ÷ first of the total size and rows,
 * and the size's trend per period of `periodS` (the shortest age).
 */
export function summarize(samples, warmUpS, periodS) {
  const steady = samples.filter((s) => s.t >= warmUpS);
  const of = (side, key) => steady.map((s) => s[side][key]);
  const maxMin = (xs) => Math.max(...xs) / Math.min(...xs);
  const endStart = (xs) => xs.at(-1) / xs[0];
  const ts = steady.map((s) => s.t);
  return {
    sizeMaxMin: maxMin(of('on', 'totalBytes')),
    sizeEndStart: endStart(of('on', 'totalBytes')),
    sizeTrendPct: 100 * trendPerPeriod(ts, of('on', 'totalBytes'), periodS),
    offSizeTrendPct: 100 * trendPerPeriod(ts, of('off', 'totalBytes'), periodS),
    rowsMaxMin: maxMin(of('on', 'totalRows')),
    offSizeEndStart: endStart(of('off', 'totalBytes')),
    offRowsEndStart: endStart(of('off', 'totalRows')),
    onMB: steady.at(-1).on.totalBytes / 2 ** 20,
    offMB: steady.at(-1).off.totalBytes / 2 ** 20,
  };
}

/** Runs `fn` every `everyS` seconds from t0 until `endS` (and once at endS), or until halted. */
async function every(t0, everyS, endS, state, fn) {
  for (let k = 0; !state.error; k++) {
    const at = Math.min(k * everyS, endS);
    const wait = t0 + at * 1000 - nowMs();
    if (wait > 0) await sleep(wait);
    try {
      await fn(at);
    } catch (err) {
      state.error ??= err;
    }
    if (at >= endS) return;
  }
}

/** The shape: see the header. `cfg` is the retention-on database; the retention-off one is prepared here. */
export async function retentionSteady(target, cfg, p, ctx) {
  const s = retentionSettings(p);
  const log = (msg) => process.stderr.write(`[bench] ${target.name} retention-steady: ${msg}\n`);
  const offCfg = await target.prepare({ ...ctx.env, seq: `${ctx.env.seq}off` });
  const lib = await loadLibrary();
  const sides = { on: { cfg, retention: s.ages }, off: { cfg: offCfg, retention: false } };
  const closers = [];
  try {
    for (const side of Object.values(sides)) {
      side.child = startChild({ config: side.cfg, retention: side.retention, pruneInterval: s.pruneInterval, concurrency: CONCURRENCY });
      closers.push(() => side.child.kill());
      await side.child.ready;
      const storage = openStorage(lib, side.cfg);
      closers.push(() => storage.close());
      side.producer = mixProducer(lib, new lib.Queue(storage), s.rate);
      side.sampler = await sizeSampler(side.cfg);
      closers.push(() => side.sampler.close());
      side.vacuums = { vacuums: 0, analyzes: 0 };
      if (side.cfg.kind === 'postgres' && s.vacuum === 'stand-in') {
        side.standIn = await autovacuumStandIn(side.cfg, (s.serverAutovacuum ??= await autovacuumSettings(side.cfg)));
        closers.push(() => side.standIn.close());
      }
    }
    if (cfg.kind === 'postgres') s.serverAutovacuum ??= await autovacuumSettings(cfg);
    log(`${s.runS} s at ${s.rate} root jobs/s; ages ${JSON.stringify(s.ages)}; warm-up ${s.warmUpS} s`);

    const state = {};
    const samples = [];
    const t0 = nowMs();
    const both = (fn) => Promise.all(Object.values(sides).map(fn));
    await Promise.all([
      every(t0, TICK_MS / 1000, s.runS, state, async (at) => {
        for (const side of Object.values(sides)) side.child.check();
        await both((side) => side.producer.tick(at));
      }),
      every(t0, s.sampleS, s.runS, state, async (at) => {
        const [on, off] = await both((side) => side.sampler.sample());
        samples.push({ t: at, roots: sides.on.producer.roots, on, off });
        if (at % (s.sampleS * 6) === 0 || at === s.runS) log(`t=${at} s: on ${(on.totalBytes / 1024).toFixed(0)} KB ${on.totalRows} rows; off ${(off.totalBytes / 1024).toFixed(0)} KB ${off.totalRows} rows`);
      }),
      every(t0, s.vacuumEveryS, s.runS, state, async () => {
        await both(async (side) => {
          const r = await side.standIn?.check();
          if (r) (side.vacuums.vacuums += r.vacuums), (side.vacuums.analyzes += r.analyzes);
        });
      }),
    ]);
    if (state.error) throw state.error;
    const counters = {};
    for (const [name, side] of Object.entries(sides)) {
      counters[name] = { ...(await side.child.counters()), roots: side.producer.roots, ...side.vacuums };
      delete counters[name].ev;
      await side.child.stop();
    }
    const finished = counters.on.completed + counters.on.failed;
    return {
      ...summarize(samples, s.warmUpS, Math.min(...Object.values(s.ages)) / 1000),
      jobs: finished,
      jobsPerSec: finished / s.runS,
      pruned: counters.on.pruned,
      detail: { kind: cfg.kind, settings: s, samples, counters, tolerance: FLAT_TOLERANCE },
    };
  } finally {
    for (const close of closers.reverse()) await Promise.resolve().then(close).catch(() => {});
    await target.cleanup(offCfg).catch((err) => log(`cleanup of the retention-off database failed: ${err.message}`));
  }
}
