// Drains measured from the driver process, and the helpers every shape shares: a producer in
// this process, worker processes (lib/worker-child.mjs), completion read from the target's own
// storage (or, for ours, reported by the worker once each outcome is stored). Used by drain,
// drain-1m, drain-after-history, fleet and memory (lib/shapes.mjs).
import { WorkerChild } from './child.mjs';
import { CLAIM_OPS, installPgCounter } from './roundtrips.mjs';
import { serverCounters, waitNoBackends } from './pg.mjs';
import { addServerCpu, startServerCpu } from './server-cpu.mjs';
import { nowMs, until } from './stats.mjs';
import { autovacuumSettings, autovacuumStandIn } from './retention-sizes.mjs';

/**
 * While a long drain runs on a PostgreSQL server whose autovacuum is off, does what autovacuum
 * would do with its settings: every `autovacuum_naptime`, vacuum (and analyze) each table of the
 * run's database past autovacuum's thresholds (lib/retention-sizes.mjs). Every PostgreSQL target
 * alike; a server with autovacuum on does it itself, and this does nothing. Resolves with
 * `stop()`, which returns the number of vacuums done.
 */
async function vacuumLikeAutovacuum(cfg) {
  const settings = await autovacuumSettings(cfg);
  if (settings.autovacuum !== 'off') return { stop: async () => undefined };
  const standIn = await autovacuumStandIn(cfg, settings, null);
  let vacuums = 0;
  let running = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => void (vacuums += (await standIn.check()).vacuums)).catch(() => {});
  }, Number(settings.autovacuum_naptime) * 1000);
  return {
    async stop() {
      clearInterval(timer);
      await running;
      await standIn.close();
      return vacuums;
    },
  };
}

export async function withProducer(target, cfg, fn) {
  const producer = await target.producer(cfg);
  try {
    return await fn(producer);
  } finally {
    await producer.close();
  }
}

/** Enqueues n no-op jobs ({ i }) in batches; each batch's arguments are built only when it is sent. */
export async function enqueueAll(producer, n, batch) {
  for (let from = 0; from < n; from += batch) {
    const size = Math.min(batch, n - from);
    await producer.enqueueBatch(Array.from({ length: size }, (_, i) => ({ i: from + i })));
  }
}

/** Wait until the target reports no unfinished job, polling its own storage. */
export async function waitDurable(producer, timeoutMs) {
  let polls = 0;
  await until(async () => (polls++, (await producer.incomplete()) === 0), { every: 2, timeoutMs, what: 'durable completion' });
  return polls;
}

/**
 * Waits until every job's outcome is stored: from the worker's own reports of stored outcomes
 * (targets with `durableCompletions`), else by polling the target's storage.
 */
async function finished(target, child, producer, p) {
  if (target.durableCompletions) return child.next('completed', p.timeoutMs);
  await child.next('handled', p.timeoutMs);
  return waitDurable(producer, p.timeoutMs);
}

/** After the timed part: the target's storage must show no unfinished job. */
async function checkNoneLeft(target, producer) {
  if (!target.durableCompletions) return;
  const left = await producer.incomplete();
  if (left !== 0) throw new Error(`${left} job(s) still unfinished in storage after every outcome was reported stored`);
}

export async function startWorker(ctx, cfg, { concurrency } = {}) {
  const child = new WorkerChild();
  try {
    await child.init(ctx.targetUrl, cfg, { concurrency });
  } catch (err) {
    await child.kill();
    throw err;
  }
  return child;
}

/**
 * Storage-call figures of a worker whose storage calls are counted (ours, countingStorage), per
 * job: every storage call; claim calls (`jobClaim`, `jobClaimLimited`) and those that returned no
 * job; `jobClaimLimited` calls, the jobs each returned and the ms each took on average (and the
 * ms of a `jobClaim` call); on PostgreSQL the round trips of the claim calls. Nothing for a target
 * that does not count them.
 */
export function callFigures(c, count) {
  const calls = c.calls ?? {};
  const total = Object.values(calls).reduce((n, k) => n + k, 0);
  if (total === 0) return {};
  const claimCalls = CLAIM_OPS.reduce((n, op) => n + (calls[op] ?? 0), 0);
  const out = { callsPerJob: total / count, claimsPerJob: claimCalls / count };
  if (c.claims) out.emptyClaimsPerJob = CLAIM_OPS.reduce((n, op) => n + (c.claims[op]?.empty ?? 0), 0) / count;
  if (c.claims?.jobClaim && calls.jobClaim) out.msPerClaim = c.claims.jobClaim.ms / calls.jobClaim;
  if (calls.jobClaimLimited) {
    out.limitedClaimsPerJob = calls.jobClaimLimited / count;
    if (c.claims?.jobClaimLimited) {
      out.jobsPerLimitedClaim = c.claims.jobClaimLimited.rows / calls.jobClaimLimited;
      out.msPerLimitedClaim = c.claims.jobClaimLimited.ms / calls.jobClaimLimited;
    }
  }
  if (c.roundTripsByOp) out.claimRtPerJob = CLAIM_OPS.reduce((n, op) => n + (c.roundTripsByOp[op] ?? 0), 0) / count;
  return out;
}

/** Drains of at least this many jobs last minutes: long enough for autovacuum to matter. */
const LONG_DRAIN = 100_000;

/**
 * `p.count` jobs pre-enqueued, then one worker process started: jobs/s from its start command to
 * the last completion visible in storage, its peak RSS, and on PostgreSQL round trips,
 * transactions (and statements) per job and the server CPU per job (lib/server-cpu.mjs); for
 * targets that count their storage calls (ours), storage calls per job.
 *
 * Options (the flow-control shapes, lib/flow.mjs): `enqueue(producer)` replaces the pre-enqueue
 * of `{ i }` jobs; `ready(producer)` runs after it, untimed, before the worker starts (a check of
 * what was stored); `extra(counters)` returns more figures from the worker's counters.
 */
export async function measureDrain(target, cfg, p, ctx, opts = {}) {
  const pgTarget = target.backend === 'postgres';
  await withProducer(target, cfg, async (producer) => {
    await (opts.enqueue ? opts.enqueue(producer) : enqueueAll(producer, p.count, p.batchSize));
    await opts.ready?.(producer);
  });
  let before;
  if (pgTarget) {
    await waitNoBackends(cfg.db);
    before = await serverCounters(cfg.db);
  }
  const local = pgTarget ? installPgCounter() : undefined;
  local?.reset();
  const producer = await target.producer(cfg);
  const child = await startWorker(ctx, cfg);
  let metrics;
  let cpu;
  let vacuum;
  let ours = 0;
  try {
    const cpuRun = pgTarget ? await startServerCpu(cfg.db) : undefined;
    vacuum = pgTarget && p.count >= LONG_DRAIN ? await vacuumLikeAutovacuum(cfg) : undefined;
    const started = nowMs();
    await child.go(p.count, p.timeoutMs);
    await finished(target, child, producer, p);
    const seconds = (nowMs() - started) / 1000;
    cpu = await cpuRun?.stop();
    const vacuums = await vacuum?.stop();
    vacuum = undefined;
    await checkNoneLeft(target, producer);
    const c = await child.counters();
    metrics = { jobsPerSec: p.count / seconds, peakRssMb: c.peakRssMb, cpuUs: c.cpuUs / p.count };
    if (vacuums !== undefined) metrics.vacuums = vacuums;
    if (c.roundTrips !== undefined) metrics.rtPerJob = c.roundTrips / p.count;
    Object.assign(metrics, callFigures(c, p.count));
    if (opts.extra) Object.assign(metrics, opts.extra(c));
    await child.stop();
  } finally {
    await vacuum?.stop();
    await child.kill();
    await producer.close();
    ours = local?.get() ?? 0; // the driver's own polls and connection set-up, not the worker's
  }
  addServerCpu(metrics, cpu, p.count);
  if (pgTarget && before) {
    await waitNoBackends(cfg.db);
    const after = await serverCounters(cfg.db);
    if (after.xacts !== undefined) metrics.xactsPerJob = Math.max(0, after.xacts - before.xacts - ours) / p.count;
    if (after.statements !== undefined && before.statements !== undefined) {
      metrics.stmtsPerJob = Math.max(0, after.statements - before.statements - ours) / p.count;
    }
  }
  return metrics;
}

/**
 * `p.count` jobs pre-enqueued, then `processes` worker processes started together on the same
 * database (`cfg.fleet` tells the target how many share it): jobs/s from their start commands to
 * the last completion visible in storage.
 */
export async function fleetDrain(target, cfg, p, ctx, processes) {
  await withProducer(target, cfg, (producer) => enqueueAll(producer, p.count, p.batchSize));
  const producer = await target.producer(cfg);
  const children = [];
  try {
    for (let i = 0; i < processes; i++) children.push(await startWorker(ctx, { ...cfg, fleet: processes }));
    const started = nowMs();
    await Promise.all(children.map((c) => c.go(undefined, p.timeoutMs)));
    // Handler starts (or stored outcomes) are summed over IPC: no database polling while the fleet works.
    const key = target.durableCompletions ? 'done' : 'handled';
    const sum = async () => (await Promise.all(children.map((c) => c.counters()))).reduce((n, c) => n + c[key], 0);
    await until(async () => (await sum()) >= p.count, { every: 10, timeoutMs: p.timeoutMs, what: `${processes} workers' ${key} jobs` });
    if (!target.durableCompletions) await waitDurable(producer, p.timeoutMs);
    const seconds = (nowMs() - started) / 1000;
    await checkNoneLeft(target, producer);
    await Promise.all(children.map((c) => c.stop()));
    return p.count / seconds;
  } finally {
    for (const c of children) await c.kill();
    await producer.close();
  }
}
