// The benchmark shapes, written once against the common target interface:
//   target.prepare(env) -> cfg; target.cleanup(cfg); target.producer(cfg) ->
//   { enqueue, enqueueBatch, incomplete, close, [enqueueWorkflows, enqueueFanOut, waitFor] };
//   target.worker(cfg, hooks) -> { start, stop } (inside a worker child process);
//   target.runWorkflows(cfg, params) (in-process workflow engines such as DBOS);
//   target.seedHistory(cfg, count, log) (drain-after-history's fixture, ours only);
//   target.armLimits(cfg) and producer.limits() (the flow-control shapes, ours only);
//   cfg.otel and producer.otelStats() / the worker's otelStats() (drain-otel, ours only).
import { installPgCounter } from './roundtrips.mjs';
import { enqueueAll, fleetDrain, measureDrain, startWorker, waitDurable, withProducer } from './drain.mjs';
import { addServerCpu, startServerCpu } from './server-cpu.mjs';
import { nowMs, percentile, sleep } from './stats.mjs';
import { retentionSteady } from './retention.mjs';
import { drainKeyed, drainLimited } from './flow.mjs';
import { drainOtel } from './otel.mjs';
import { drainPassthrough } from './passthrough.mjs';

/** Worker processes of the fleet shape, each drain on a fresh database. */
export const FLEET_SIZES = [1, 2, 4];

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

/**
 * `p.count` workflows of `p.steps` checkpointed steps, `concurrency` in flight, after as many
 * untimed warm-up workflows, for every target alike: a running service has its connections open
 * and its code compiled by the JIT (without it, a 500-workflow DBOS run measured 15-25% below
 * its steady state). Timed from the first enqueue/start to the last workflow finished; the
 * latency of one step is taken around each step call inside the workflow.
 */
async function workflows(target, cfg, p, ctx, concurrency) {
  const params = { count: p.count, steps: p.steps, concurrency, warmUp: p.count };
  const units = p.count * p.steps;
  const pgTarget = target.backend === 'postgres';
  if (target.runWorkflows) {
    // In-process engine: it calls timed.begin() / timed.end() around its timed part, which
    // brackets the server CPU and the round trips of this process (less the CPU sampler's own).
    const counter = pgTarget ? installPgCounter() : undefined;
    let cpuRun;
    let cpu;
    let rt;
    let own;
    const timed = {
      async begin() {
        cpuRun = pgTarget ? await startServerCpu(cfg.db) : undefined;
        counter?.reset();
        own = process.cpuUsage();
      },
      async end() {
        own = process.cpuUsage(own);
        rt = counter?.get();
        cpu = await cpuRun?.stop();
        if (rt !== undefined) rt -= cpu?.queries ?? 0;
      },
    };
    const out = await target.runWorkflows(cfg, { ...params, timed });
    out.cpuUs = (own.user + own.system) / units; // the engine's process (this one)
    if (rt !== undefined) out.rtPerStep = rt / units;
    return addServerCpu(out, cpu, units);
  }
  return withProducer(target, cfg, async (producer) => {
    const child = await startWorker(ctx, cfg, { concurrency });
    try {
      await child.go(params.warmUp, p.timeoutMs);
      await sleep(p.idleMs);
      await producer.enqueueWorkflows(params.warmUp, p.steps);
      await child.next('handled', p.timeoutMs);
      await waitDurable(producer, p.timeoutMs);
      await child.expect(p.count);
      const cpuRun = pgTarget ? await startServerCpu(cfg.db) : undefined;
      const t0 = nowMs();
      await producer.enqueueWorkflows(p.count, p.steps);
      await child.next('handled', p.timeoutMs);
      await waitDurable(producer, p.timeoutMs);
      const seconds = (nowMs() - t0) / 1000;
      const cpu = await cpuRun?.stop();
      const c = await child.counters();
      await child.stop();
      const out = { stepsPerSec: units / seconds, stepP50Ms: percentile(c.stepMs, 50), cpuUs: c.cpuUs / units };
      if (c.roundTrips !== undefined) out.rtPerStep = c.roundTrips / units;
      return addServerCpu(out, cpu, units);
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

  drain: measureDrain,

  /** The drain at a million jobs (sustained); run.mjs adds its ratio to the same target's drain. */
  'drain-1m': measureDrain,

  /** The drain after `p.history` finished jobs were written into the target's storage (lib/history.mjs). */
  async 'drain-after-history'(target, cfg, p, ctx) {
    const t0 = Date.now();
    await target.seedHistory(cfg, p.history, (msg) => process.stderr.write(`[bench] ${target.name} ${msg}\n`));
    const fixtureS = (Date.now() - t0) / 1000;
    return { ...(await measureDrain(target, cfg, p, ctx)), fixtureS };
  },

  /** The drain of jobs whose type has a concurrency limit that never binds (lib/flow.mjs; ours). */
  'drain-limited': drainLimited,

  /** The drain of jobs over `p.keys` keys with a limit of 1 per key (lib/flow.mjs; ours). */
  'drain-keyed': drainKeyed,

  /** The drain with the producer's and the worker's Queue instrumented by OpenTelemetry (lib/otel.mjs; ours). */
  'drain-otel': drainOtel,

  /** The drain with a codec and middleware that do nothing, in the producer and the worker (lib/passthrough.mjs; ours). */
  'drain-passthrough': drainPassthrough,

  /** The drain with 1, 2 and 4 worker processes on one database (a fresh database for each size). */
  async fleet(target, cfg, p, ctx) {
    const out = {};
    for (const n of FLEET_SIZES) {
      const own = n === FLEET_SIZES[0] ? cfg : await target.prepare({ ...ctx.env, seq: `${ctx.env.seq}w${n}` });
      try {
        out[`fleet${n}`] = await fleetDrain(target, own, p, ctx, n);
      } finally {
        if (own !== cfg) await target.cleanup(own);
      }
    }
    out.fleetScale = out[`fleet${FLEET_SIZES.at(-1)}`] / out.fleet1;
    return out;
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

  /** Workflows of `p.steps` checkpointed steps, `p.concurrency` in flight. */
  workflow: (target, cfg, p, ctx) => workflows(target, cfg, p, ctx, p.concurrency),

  /** The same workflows one at a time: steps/s and the latency of one step. */
  'workflow-serial': (target, cfg, p, ctx) => workflows(target, cfg, p, ctx, 1),

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

  /** Sizes under a steady load with retention on (scaled-down ages) and off, side by side (lib/retention.mjs; ours). */
  'retention-steady': retentionSteady,

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
