// Small statistics helpers: medians across runs, percentiles within a run.

export function median(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const mid = Math.floor(xs.length / 2);
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of an unsorted array. */
export function percentile(values, p) {
  const xs = [...values].sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * xs.length);
  return xs[Math.min(xs.length - 1, Math.max(0, rank - 1))];
}

/** Median of each metric over a list of per-run metric objects. */
export function medianMetrics(runs) {
  const keys = new Set(runs.flatMap((r) => Object.keys(r)));
  const out = {};
  for (const k of keys) {
    const m = median(runs.map((r) => r[k]));
    if (m !== undefined) out[k] = m;
  }
  return out;
}

/** Monotonic clock shared by every process on the machine (CLOCK_MONOTONIC), in ms. */
export function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll fn until it returns truthy, every `every` ms, failing after `timeoutMs`. */
export async function until(fn, { every = 5, timeoutMs = 60_000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** Run tasks with at most `limit` in flight; tasks is an array of () => Promise. */
export async function pool(limit, count, task) {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (next < count) {
      const i = next++;
      await task(i);
    }
  });
  await Promise.all(lanes);
}
