/**
 * The flow part of a chaos run's load (see flow.ts), drawn from its own seeded stream: jobs of
 * every limited type, steady and in bursts (so the limits hold jobs back often), some failing
 * their first attempt, some of the keyed and rate-limited ones on the queue with a queue limit.
 * Half of the keyed jobs name their keys at enqueue (`concurrencyKey` / `rateLimitKey`, as a
 * producer that did not register the type would); the others leave them to the key functions
 * of the orchestrator's own registration of the types. Either way the keys equal the args'.
 */
import type { EnqueueOptions } from '../../src/types.js';
import { KEYED_KEYS, KEYRATE_ACCOUNTS, KEYRATE_REGIONS, METERED_QUEUE, type FlowArgs } from './flow.js';
import { ROOT_QUEUE } from './handlers.js';
import type { ExtraItem } from './load-extra.js';
import type { Rng } from './options.js';

/** Draws one tick's (0.5 s) flow jobs. */
export function flowLoad(r: Rng, scale: number): ExtraItem[] {
  const out: ExtraItem[] = [];
  const add = (type: string, ms: number, keys: { ckey?: string; rkey?: string } = {}, metered = false): void => {
    const args: FlowArgs = { k: 'flow', n: r.int(0, 1e9), ms, failFirst: r.chance(0.1), ...keys };
    const options: EnqueueOptions = { queue: metered ? METERED_QUEUE : ROOT_QUEUE, retries: 8, priority: r.int(-3, 3) };
    if (r.chance(0.5)) {
      if (keys.ckey !== undefined) options.concurrencyKey = keys.ckey;
      if (keys.rkey !== undefined) options.rateLimitKey = keys.rkey;
    }
    out.push({ type, args, options, plan: { kind: 'flow', type, args } });
  };
  // chaos.conc (3 at once): ~1.2/s, now and then a burst of 10.
  let conc = r.count(0.6 * scale) + (r.chance(0.04) ? 10 : 0);
  while (conc-- > 0) add('chaos.conc', r.int(20, 300));
  // chaos.keyed (1 per key): ~2/s, 30 % on the hot key, a fifth on the metered queue.
  for (let i = r.count(1 * scale); i > 0; i--) {
    const ckey = r.chance(0.3) ? KEYED_KEYS[0] : r.pick(KEYED_KEYS);
    add('chaos.keyed', r.int(10, 250), { ckey }, r.chance(0.2));
  }
  // chaos.rated (20/s): ~2.4/s, and a burst of 15–30 every 10 s or so (held back 50 ms apart).
  let rated = r.count(1.2 * scale) + (r.chance(0.05) ? r.int(15, 30) : 0);
  while (rated-- > 0) add('chaos.rated', r.int(5, 60), {}, r.chance(0.15));
  // chaos.keyrate (2 per account, 3 per 500 ms per region): ~1.2/s.
  for (let i = r.count(0.6 * scale); i > 0; i--) add('chaos.keyrate', r.int(50, 500), { ckey: r.pick(KEYRATE_ACCOUNTS), rkey: r.pick(KEYRATE_REGIONS) });
  // chaos.metered (the queue's limit only): ~2/s.
  for (let i = r.count(1 * scale); i > 0; i--) add('chaos.metered', r.int(20, 400), {}, true);
  return out;
}
