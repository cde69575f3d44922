// The flow-control shapes (ours): the drain of lib/drain.mjs with a concurrency limit registered
// on the job type (`queue.register(type, handler, { concurrency })`, /work/shared/API.md "Flow
// control"). The peers have no such limits to compare with (bench/README.md, "Flow-control shapes").
//
// - drain-limited: a type-wide limit far above the worker's slots (10,000 against 50), so it never
//   binds: what the limit itself costs a drain (run.mjs divides by the same target's drain).
// - drain-keyed: a limit of 1 per concurrency key, the key taken from the job's arguments, the
//   jobs in equal consecutive blocks per key (the 20 jobs of a key are enqueued one after the
//   other): the claim has to look past the blocked backlog of the keys that are running.
//
// Before the jobs are enqueued the target stores the limit as a deployed worker would have
// (`armLimits`, untimed), so that the jobs are inserted already limited, and the shape checks
// with `queue.limits()` that every enqueued job is a pending limited job before the timed part.
import { enqueueAll, measureDrain } from './drain.mjs';

/** drain-limited: the type-wide concurrency limit (the worker has 50 slots: it never binds). */
export const TYPE_LIMIT = 10_000;
/** drain-keyed: at most this many jobs of one key running at once. */
export const KEY_LIMIT = 1;

/** Checks, before the timed part, that the storage holds every job as a pending limited job. */
async function checkLimited(producer, count) {
  const row = (await producer.limits()).find((l) => l.scope === 'type' && l.name === 'noop');
  if (!row) throw new Error('queue.limits() lists no limit for noop after the enqueue');
  if (row.pending !== count) throw new Error(`queue.limits() reports ${row.pending} pending limited noop job(s), expected ${count}: the jobs were not inserted limited`);
}

/** The drain with `flow` registered on the job type; `enqueue` and `extra` as for measureDrain. */
async function limitedDrain(target, cfg, p, ctx, flow, { enqueue, extra } = {}) {
  if (!target.armLimits) throw new Error(`${target.name} has no flow-control limits (ours only)`);
  const own = { ...cfg, flow };
  await target.armLimits(own, p.timeoutMs);
  return measureDrain(target, own, p, ctx, { enqueue, ready: (producer) => checkLimited(producer, p.count), extra });
}

/** drain-limited: `p.count` jobs of a type with a concurrency limit of TYPE_LIMIT. */
export function drainLimited(target, cfg, p, ctx) {
  return limitedDrain(target, cfg, p, ctx, { limit: TYPE_LIMIT }, { enqueue: (producer) => enqueueAll(producer, p.count, p.batchSize) });
}

/** The key of job i of n over `keys` keys: equal consecutive blocks (keys 0, 0, ..., 1, 1, ...). */
export const keyOf = (i, n, keys) => `acct-${Math.floor((i * keys) / n)}`;

/**
 * drain-keyed: `p.count` jobs over `p.keys` keys with a limit of KEY_LIMIT per key (the key is
 * the `account` argument, read by the registered key function at enqueue). The worker counts
 * its running jobs per key from its hooks; a key seen running more than KEY_LIMIT at once fails
 * the run (a figure of a drain that broke its limit would mean nothing).
 */
export function drainKeyed(target, cfg, p, ctx) {
  const keys = Math.min(p.keys, p.count);
  async function enqueue(producer) {
    for (let from = 0; from < p.count; from += p.batchSize) {
      const size = Math.min(p.batchSize, p.count - from);
      await producer.enqueueBatch(Array.from({ length: size }, (_, j) => ({ i: from + j, account: keyOf(from + j, p.count, keys) })));
    }
  }
  function extra(c) {
    if (!c.flow) throw new Error('the worker reported no per-key counts');
    if (c.flow.maxPerKey > KEY_LIMIT) throw new Error(`per-key limit ${KEY_LIMIT} not kept: ${c.flow.maxPerKey} jobs of one key ran at once in the worker`);
    return { peakRunning: c.flow.peakRunning };
  }
  return limitedDrain(target, cfg, p, ctx, { limit: KEY_LIMIT, key: true }, { enqueue, extra });
}
