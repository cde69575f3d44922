/**
 * The part of a chaos run's load that exercises operator actions and odd inputs, drawn from its
 * own seeded stream: gated roots and fan-out parents (fail until the operator retries them),
 * `noRetry` failures the operator retries anyway (they fail again), plain jobs the operator
 * pauses and resumes while they wait for their delay, errors with NUL and lone surrogates, and
 * bursts of results close to the payload cap finishing together. Also turns a few children of
 * collect-all fan-outs into gated children.
 */
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/storage/codec.js';
import type { EnqueueOptions } from '../../src/types.js';
import type { BigArgs, GateArgs, GateFanArgs, OddArgs } from './handlers-extra.js';
import { BIG_QUEUE, ROOT_QUEUE, type ChildArgs, type FanOutArgs, type PlainArgs } from './handlers.js';
import type { Plan } from './load.js';
import type { Rng } from './options.js';

/** One root job to enqueue, with what the orchestrator intends for it. */
export interface ExtraItem {
  type: string;
  args: unknown;
  options: EnqueueOptions;
  plan: Plan;
}

/** How long a pausable plain job waits before it may run (the operator pauses it meanwhile). */
const PAUSABLE_DELAY_MS = { min: 1500, max: 3000 } as const;

/** The payload cap the workers run with (the queue's default). */
export const PAYLOAD_CAP = DEFAULT_MAX_PAYLOAD_BYTES;

/** Draws one tick's (0.5 s) extra roots. */
export function extraLoad(r: Rng, scale: number): ExtraItem[] {
  const out: ExtraItem[] = [];
  const root = (retries = 8): EnqueueOptions => ({ queue: ROOT_QUEUE, retries, priority: r.int(-3, 3) });
  for (let i = r.count(0.15 * scale); i > 0; i--) {
    const args: GateArgs = { k: 'gate', ms: r.int(5, 200), retry: r.chance(0.8), afterMs: r.int(0, 800) };
    out.push({ type: 'chaos.gate', args, options: root(), plan: { kind: 'gate', args } });
  }
  for (let i = r.count(0.06 * scale); i > 0; i--) {
    const children: ChildArgs[] = Array.from({ length: r.int(3, 8) }, () => ({ fail: r.chance(0.2), flaky: r.chance(0.1), ms: r.int(5, 300), nest: [] }));
    const args: GateFanArgs = { k: 'gatefan', children, retry: r.chance(0.8), afterMs: r.int(0, 800) };
    out.push({ type: 'chaos.gatefan', args, options: root(), plan: { kind: 'gatefan', args } });
  }
  for (let i = r.count(0.08 * scale); i > 0; i--) {
    // A collect-all fan-out with gated children: the operator retries them while siblings run.
    const children: ChildArgs[] = Array.from({ length: r.int(4, 16) }, () => ({ fail: r.chance(0.1), flaky: r.chance(0.1), ms: r.int(5, 400), nest: [] }));
    const args: FanOutArgs = { k: 'fanout', strategy: 'collect-all', children };
    addGates(args, r, true);
    out.push({ type: 'chaos.fanout', args, options: root(), plan: { kind: 'fanout', args, cancel: { plannedAfterMs: null, requestedAt: null, appliedAt: null } } });
  }
  for (let i = r.count(0.1 * scale); i > 0; i--) {
    out.push({ type: 'chaos.fatal', args: { k: 'fatal' }, options: root(), plan: { kind: 'fatal', retry: { afterMs: r.int(0, 800) } } });
  }
  for (let i = r.count(0.25 * scale); i > 0; i--) {
    const args: PlainArgs = { k: 'plain', n: r.int(0, 1e9), ms: r.int(10, 200), pad: 'ü'.repeat(r.int(0, 40)) };
    const delay = r.int(PAUSABLE_DELAY_MS.min, PAUSABLE_DELAY_MS.max);
    const pause = { afterMs: r.int(50, 600), holdMs: r.int(300, 4000) };
    out.push({ type: 'chaos.plain', args, options: { ...root(), delay }, plan: { kind: 'plain', args, pause } });
  }
  for (let i = r.count(0.4 * scale); i > 0; i--) {
    const mode = r.pick<OddArgs['mode']>(['flaky', 'fatal', 'step']);
    const args: OddArgs = { k: 'odd', mode, failTimes: mode === 'flaky' ? r.int(1, 2) : 0, tail: r.chance(0.3) ? r.int(10_000, 150_000) : r.int(0, 50), token: r.token(8) };
    out.push({ type: 'chaos.odd', args, options: root(), plan: { kind: 'odd', args } });
  }
  // About every 15 s: a burst of results of 90–99 % of the cap, all due at the same instant.
  if (r.chance(0.033 * Math.min(1, scale))) {
    const runAt = new Date(Date.now() + 1000);
    const ms = r.int(50, 150);
    for (let i = r.int(16, 30); i > 0; i--) {
      const args: BigArgs = { k: 'big', n: r.int(0, 1e6), bytes: Math.floor(PAYLOAD_CAP * (0.9 + 0.09 * r.next())), ms };
      out.push({ type: 'chaos.big', args, options: { queue: BIG_QUEUE, retries: 8, runAt }, plan: { kind: 'big', args } });
    }
  }
  return out;
}

/**
 * Turns one to three children of a collect-all fan-out (half of them, or `always`) into gated children (most of them retried
 * by the operator once they failed) and lets their siblings work longer, so that a retry often
 * lands while the fan-out is still undecided.
 */
export function addGates(args: FanOutArgs, r: Rng, always = false): void {
  if (args.strategy !== 'collect-all' || !(r.chance(0.5) || always)) return;
  const plain = args.children.filter((c) => !c.fail && c.nest.length === 0);
  for (let k = r.int(1, 3); k > 0 && plain.length > 0; k--) {
    const c = plain.splice(r.int(0, plain.length - 1), 1)[0]!;
    c.gate = { retry: r.chance(0.85), afterMs: r.int(0, 300) };
    c.ms = r.int(5, 60);
  }
  for (const c of args.children) if (!c.gate && c.nest.length === 0) c.ms = Math.max(c.ms, r.int(300, 1500));
}
