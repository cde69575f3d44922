/** Test helper: wait until a condition holds, polling every 10 ms, failing after a timeout. */
import { setTimeout as delay } from 'node:timers/promises';

/** Resolves with the first truthy value of `cond()`; rejects after `timeout` ms (default 10 s). */
export async function waitFor<T>(cond: () => T | Promise<T>, opts: { timeout?: number; message?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeout ?? 10_000);
  for (;;) {
    const v = await cond();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`waitFor timed out${opts.message ? `: ${opts.message}` : ''}`);
    await delay(10);
  }
}
