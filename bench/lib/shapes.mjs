// The benchmark shapes, written once against the common target interface:
//   target.prepare(env) -> cfg; target.cleanup(cfg); target.producer(cfg) ->
//   { enqueue, enqueueBatch, incomplete, close, [enqueueWorkflows, enqueueFanOut, waitFor] };
//   target.worker(cfg, hooks) -> { start, stop } (inside a worker child process);
//   target.runWorkflows(cfg, params) (in-process workflow engines such as DBOS).
import { WorkerChild } from './child.mjs';
import { installPgCounter } from './roundtrips.mjs';
import { serverCounters, waitNoBackends } from './pg.mjs';
import { chunks } from './util.mjs';
import { nowMs, percentile, sleep, until } from './stats.mjs';

const args = (n, from = 0) => Array.from({ length: n }, (_, i) => ({ i: from + i }));

async function withProducer(target, cfg, fn) {
  const producer = await target.producer(cfg);
  try {
    return await fn(producer);
  } finally {
    await producer.close();
  }
}

async function enqueueAll(producer, n, batch) {
  for (const list of chunks(args(n), batch)) await producer.enqueueBatch(list);
}

/** Wait until the target reports no unfinished job, polling its own storage. */
async function waitDurable(producer, timeoutMs) {
  let polls = 0;
  await until(async () => (polls++, (await producer.incomplete()) === 0), { every: 2, timeoutMs, what: 'durable completion' });
  return polls;
}

async function startWorker(ctx, cfg, { concurrency } = {}) {
  const child = new WorkerChild();
  try {
    await child.init(ctx.targetUrl, cfg, { concurrency });
  } catch (err) {
    await child.kill();
    throw err;
  }
  return child;
}

/** Enqueue in this process, handler in a worker process: enqueue call to handler start. */
function crossProcessLatency(target, cfg, p, ctx) {
  return withProducer(target, cfg, async (producer) => {
    const child = await startWorker(ctx, cfg);
    try {
      await child.go(p.count + 1, p.timeoutMs);
      // One warm-up job, then let the worker settle into its idle state.
      await producer.enqueue({ t0: String(nowMs()) });
      await child.next('latency', p.timeoutMs);
      await sleep(p.idleMs);
      const samples = [];
      for (let i = 0; i < p.count; i++) {
        await producer.enqueue({ t0: String(nowMs()) });
        samples.push((await child.next('latency', p.timeoutMs)).ms);
        await sleep(p.gapMs);
      }
      await child.stop();
      return { p50: percentile(samples, 50), p95: percentile(samples, 95), p99: percentile(samples, 99) };
    } finally {
      await child.kill();
    }
  });
}

/** Storage operations a `ctx.sleep` may call (first execution or replay), in any version of the library. */
export const SLEEP_OPS = ['clockNow', 'jobSuspend', 'jobSuspendUntil', 'stepRecord', 'stepRecordMany'];
/** Storage operations a fan-out parent's resume may call (collect, expire, re-suspend), in any version. */
export const FAN_OUT_RESUME_OPS = ['fanOutGet', 'fanOutExpire', 'fanOutCollect', 'jobList', 'clockNow', 'jobSuspend'];

/** Sum of `byName[op]` over `ops`. */
const sumOf = (byName, ops) => ops.reduce((n, op) => n + (byName?.[op] ?? 0), 0);

/**
 * Durable waits (timers or fan-outs) of `count` workflows in a worker process: what the
 * operation under test costs per unit (storage calls and PostgreSQL round trips made by `ops`),
 * and every round trip of the run per unit.
 */
async function durableWaits(target, cfg, p, ctx, { enqueue, ops, units }) {
  return withProducer(target, cfg, async (producer) => {
    const child = await startWorker(ctx, cfg, { concurrency: p.concurrency });
    try {
      await child.go(p.count, p.timeoutMs);
      await sleep(p.idleMs);
      const t0 = nowMs();
      await enqueue(producer);
      await child.next('handled', p.timeoutMs);
      await waitDurable(producer, p.timeoutMs);
      const seconds = (nowMs() - t0) / 1000;
      const c = await child.counters();
      await child.stop();
      const out = { seconds, opCalls: sumOf(c.calls, ops) / units };
      if (c.roundTripsByOp !== undefined) out.opRt = sumOf(c.roundTripsByOp, ops) / units;
      if (c.roundTrips !== undefined) out.rtPerUnit = c.roundTrips / units;
      return out;
    } finally {
      await child.kill();
    }
  });
}

export const SHAPES = {
  async 'enqueue-single'(target, cfg, p) {
    return withProducer(target, cfg, async (producer) => {
      await producer.enqueue({ i: -1 }); // warm the connection
      const t0 = nowMs();
      for (let i = 0; i < p.count; i++) await producer.enqueue({ i });
      return { jobsPerSec: p.count / ((nowMs() - t0) / 1000) };
    });
  },

  async 'enqueue-batch'(target, cfg, p) {
    return withProducer(target, cfg, async (producer) => {
      await producer.enqueue({ i: -1 });
      const t0 = nowMs();
      await enqueueAll(producer, p.count, p.batchSize);
      return { jobsPerSec: p.count / ((nowMs() - t0) / 1000) };
    });
  },

  async drain(target, cfg, p, ctx) {
    const pgTarget = target.backend === 'postgres';
    await withProducer(target, cfg, (producer) => enqueueAll(producer, p.count, p.batchSize));
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
    let ours = 0;
    try {
      const started = nowMs();
      await child.go(p.count, p.timeoutMs);
      await child.next('handled', p.timeoutMs);
      await waitDurable(producer, p.timeoutMs);
      const seconds = (nowMs() - started) / 1000;
      const c = await child.counters();
      metrics = { jobsPerSec: p.count / seconds, peakRssMb: c.peakRssMb };
      if (c.roundTrips !== undefined) metrics.rtPerJob = c.roundTrips / p.count;
      await child.stop();
    } finally {
      await child.kill();
      await producer.close();
      ours = local?.get() ?? 0; // the driver's own polls and connection set-up, not the worker's
    }
    if (pgTarget && before) {
      await waitNoBackends(cfg.db);
      const after = await serverCounters(cfg.db);
      if (after.xacts !== undefined) metrics.xactsPerJob = Math.max(0, after.xacts - before.xacts - ours) / p.count;
      if (after.statements !== undefined && before.statements !== undefined) {
        metrics.stmtsPerJob = Math.max(0, after.statements - before.statements - ours) / p.count;
      }
    }
    return metrics;
  },

  async memory(target, cfg, p, ctx) {
    await withProducer(target, cfg, (producer) => enqueueAll(producer, p.count, p.batchSize));
    return withProducer(target, cfg, async (producer) => {
      const child = await startWorker(ctx, cfg);
      try {
        const started = nowMs();
        await child.go(p.count, p.timeoutMs);
        await child.next('handled', p.timeoutMs);
        await waitDurable(producer, p.timeoutMs);
        const seconds = (nowMs() - started) / 1000;
        const c = await child.counters();
        await child.stop();
        return { peakRssMb: c.peakRssMb, jobsPerSec: p.count / seconds };
      } finally {
        await child.kill();
      }
    });
  },

  async latency(target, cfg, p, ctx) {
    const cross = await crossProcessLatency(target, cfg, p, ctx);
    if (!target.latencyInProcess) return cross;
    // Producer and worker in this process, on one Queue (the target's own latency figure).
    const samples = [];
    let started;
    const local = await target.local(cfg, {
      onJob(args) {
        if (args?.t0 !== undefined) started?.(nowMs() - Number(args.t0));
      },
    });
    try {
      const one = async () => {
        const seen = new Promise((resolve) => (started = resolve));
        await local.enqueue({ t0: String(nowMs()) });
        return seen;
      };
      await one();
      await sleep(p.idleMs);
      for (let i = 0; i < p.count; i++) {
        samples.push(await one());
        await sleep(p.gapMs);
      }
    } finally {
      await local.stop();
    }
    return { p50: percentile(samples, 50), p95: percentile(samples, 95), p99: percentile(samples, 99), xp50: cross.p50, xp95: cross.p95, xp99: cross.p99 };
  },

  async workflow(target, cfg, p, ctx) {
    const params = { count: p.count, steps: p.steps, concurrency: p.concurrency };
    if (target.runWorkflows) {
      const counter = target.backend === 'postgres' ? installPgCounter() : undefined;
      return target.runWorkflows(cfg, { ...params, counter });
    }
    return withProducer(target, cfg, async (producer) => {
      const child = await startWorker(ctx, cfg, { concurrency: p.concurrency });
      try {
        await child.go(p.count, p.timeoutMs);
        await sleep(p.idleMs);
        const t0 = nowMs();
        await producer.enqueueWorkflows(p.count, p.steps);
        await child.next('handled', p.timeoutMs);
        await waitDurable(producer, p.timeoutMs);
        const seconds = (nowMs() - t0) / 1000;
        const c = await child.counters();
        await child.stop();
        const out = { stepsPerSec: (p.count * p.steps) / seconds };
        if (c.roundTrips !== undefined) out.rtPerStep = c.roundTrips / (p.count * p.steps);
        return out;
      } finally {
        await child.kill();
      }
    });
  },

  /** `count` workflows of `steps` durable sleeps each; figures per sleep step. */
  async 'sleep-steps'(target, cfg, p, ctx) {
    return durableWaits(target, cfg, p, ctx, {
      enqueue: (producer) => producer.enqueueSleepers(p.count, p.steps, p.sleepMs),
      ops: SLEEP_OPS,
      units: p.count * p.steps,
    });
  },

  /** `count` parents fanning out to `fanOutChildren` children each; figures per parent (one resume each). */
  async 'fan-out-resume'(target, cfg, p, ctx) {
    return durableWaits(target, cfg, p, ctx, {
      enqueue: (producer) => producer.enqueueFanOuts(p.count, p.fanOutChildren),
      ops: FAN_OUT_RESUME_OPS,
      units: p.count,
    });
  },

  async 'fan-out'(target, cfg, p, ctx) {
    return withProducer(target, cfg, async (producer) => {
      const child = await startWorker(ctx, cfg);
      try {
        await child.go(undefined, p.timeoutMs);
        await sleep(p.idleMs);
        const t0 = nowMs();
        const id = await producer.enqueueFanOut(p.count);
        await producer.waitFor(id, p.timeoutMs);
        const seconds = (nowMs() - t0) / 1000;
        await child.stop();
        return { seconds };
      } finally {
        await child.kill();
      }
    });
  },
};
