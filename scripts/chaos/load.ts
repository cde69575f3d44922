/**
 * The load of a chaos run, drawn from the seeded RNG: batches of plain, flaky, fatal
 * (noRetry), workflow, sleep, signal and fan-out jobs every tick (and the extra kinds of
 * load-extra.ts, and the flow-controlled kinds of load-flow.ts, each from a stream of its own),
 * plus the timed actions the orchestrator takes on them (sending signals, cancelling fan-out
 * parents; operator actions are in operator.ts).
 * Remembers what it planned for every root job so the audit can compare outcomes with
 * intentions.
 */
import type { Queue } from '../../src/queue/queue.js';
import type { BatchItem } from '../../src/types.js';
import type { BigArgs, GateArgs, GateFanArgs, OddArgs } from './handlers-extra.js';
import { ROOT_QUEUE, type ChildArgs, type FanOutArgs, type PlainArgs } from './handlers.js';
import type { FlowArgs } from './flow.js';
import { addGates, extraLoad } from './load-extra.js';
import { flowLoad } from './load-flow.js';
import type { Rng } from './options.js';

/** What the orchestrator intended for one root job. */
export type Plan =
  /** `pause`: enqueued with a delay; the operator pauses it `afterMs` after the enqueue and resumes it `holdMs` later. */
  | { kind: 'plain'; args: PlainArgs; pause?: { afterMs: number; holdMs: number } }
  | { kind: 'flaky'; failTimes: number }
  /** `retry`: the operator retries it once it failed (it fails again). */
  | { kind: 'fatal'; retry?: { afterMs: number } }
  | { kind: 'gate'; args: GateArgs }
  | { kind: 'gatefan'; args: GateFanArgs }
  | { kind: 'odd'; args: OddArgs }
  | { kind: 'big'; args: BigArgs }
  /** A job of a flow type (flow.ts): completes (`{ n, attempt }`) however long its limits hold it back. */
  | { kind: 'flow'; type: string; args: FlowArgs }
  | { kind: 'wf'; steps: number }
  | { kind: 'sleep'; ms: number }
  | { kind: 'signal'; count: number; sent: { sig: string; seq: number }[] }
  | { kind: 'fanout'; args: FanOutArgs; cancel: { plannedAfterMs: number | null; requestedAt: number | null; appliedAt: number | null } };

/** A signal or cancellation due at an instant. */
interface Action {
  kind: 'signal' | 'cancel';
  at: number;
  tries: number;
  run: (a: Action) => Promise<'done' | 'again'>;
}

/** Counters of the orchestrator's actions. */
export interface LoadStats {
  enqueued: number;
  batches: number;
  signalsSent: number;
  cancels: number;
  /** Planned cancellations that found the parent already finished. */
  cancelsTooLate: number;
  actionErrors: number;
}

/** Generates the load and performs the timed actions. */
export class Load {
  readonly plans = new Map<string, Plan>();
  readonly stats: LoadStats = { enqueued: 0, batches: 0, signalsSent: 0, cancels: 0, cancelsTooLate: 0, actionErrors: 0 };
  /** Called with every root job enqueued (the operator plans its actions on it). */
  onEnqueued: (id: string, plan: Plan, at: number) => void = () => {};
  #actions: Action[] = [];

  /** @param extraRng the stream of the extra kinds (load-extra.ts) @param flowRng the stream of the flow kinds (load-flow.ts) */
  constructor(
    private readonly queue: Queue,
    private readonly rng: Rng,
    private readonly scale: number,
    private readonly extraRng: Rng,
    private readonly flowRng: Rng,
  ) {}

  /** Signals not sent yet. */
  get pendingSignals(): number {
    return this.#actions.filter((a) => a.kind === 'signal').length;
  }

  /** Enqueues one tick's batch (about 0.5 s of load). */
  async tick(): Promise<void> {
    const r = this.rng;
    const s = this.scale;
    const items: { item: BatchItem; plan: Plan }[] = [];
    const add = (type: string, args: unknown, plan: Plan, retries = 8): void => {
      items.push({ item: { type, args, options: { queue: ROOT_QUEUE, retries, priority: r.int(-3, 3), ...(r.chance(0.2) ? { meta: { seed: 'chaos', n: r.int(0, 1e6) } } : {}) } }, plan });
    };
    for (let i = r.count(6 * s); i > 0; i--) {
      const args: PlainArgs = { k: 'plain', n: r.int(0, 1e9), ms: r.int(10, 400), pad: 'é€😀x'.repeat(r.int(0, 400)) };
      if (r.chance(0.3)) args.nested = { list: [r.int(-1e6, 1e6), r.token(6), r.chance(0.5), null], deep: { x: r.next() } };
      add('chaos.plain', args, { kind: 'plain', args });
    }
    for (let i = r.count(1.5 * s); i > 0; i--) {
      const failTimes = r.int(1, 3);
      add('chaos.flaky', { k: 'flaky', failTimes }, { kind: 'flaky', failTimes }, failTimes + 8);
    }
    for (let i = r.count(0.5 * s); i > 0; i--) add('chaos.fatal', { k: 'fatal' }, { kind: 'fatal' });
    for (let i = r.count(0.8 * s); i > 0; i--) add('chaos.workflow', { k: 'wf', steps: 5, ms: r.int(20, 300) }, { kind: 'wf', steps: 5 });
    for (let i = r.count(0.8 * s); i > 0; i--) {
      const ms = r.int(100, 2500);
      add('chaos.sleep', { k: 'sleep', ms }, { kind: 'sleep', ms });
    }
    for (let i = r.count(0.5 * s); i > 0; i--) {
      const count = r.int(1, 3);
      add('chaos.signal', { k: 'signal', count }, { kind: 'signal', count, sent: [] });
    }
    for (let i = r.count(0.15 * s); i > 0; i--) {
      // About a third are cancelled while their children run: those children take longer.
      const cancelAt = r.chance(0.4) ? r.int(300, 1500) : null;
      const args = this.#fanOutArgs(cancelAt === null ? 400 : 1500);
      // Gated children are retried by the operator: never under a parent that is cancelled.
      if (cancelAt === null) addGates(args, this.extraRng);
      add('chaos.fanout', args, { kind: 'fanout', args, cancel: { plannedAfterMs: cancelAt, requestedAt: null, appliedAt: null } });
    }
    for (const x of [...extraLoad(this.extraRng, s), ...flowLoad(this.flowRng, s)]) items.push({ item: { type: x.type, args: x.args, options: x.options }, plan: x.plan });
    if (items.length === 0) return;
    const ids = await this.queue.enqueueBatch(items.map((x) => x.item));
    this.stats.batches++;
    this.stats.enqueued += ids.length;
    const now = Date.now();
    ids.forEach((id, i) => {
      const plan = items[i]!.plan;
      this.plans.set(id, plan);
      if (plan.kind === 'signal') this.#planSignals(id, plan, now);
      if (plan.kind === 'fanout' && plan.cancel.plannedAfterMs !== null) this.#planCancel(id, plan, now + plan.cancel.plannedAfterMs);
      this.onEnqueued(id, plan, now);
    });
  }

  /** Performs the actions that are due; returns how many ran. */
  async runDue(now = Date.now()): Promise<number> {
    const due = this.#actions.filter((a) => a.at <= now);
    if (due.length === 0) return 0;
    this.#actions = this.#actions.filter((a) => a.at > now);
    await Promise.all(
      due.map(async (a) => {
        let outcome: 'done' | 'again';
        try {
          outcome = await a.run(a);
        } catch {
          this.stats.actionErrors++;
          outcome = 'again';
        }
        if (outcome === 'again' && a.tries < 50) this.#actions.push({ ...a, at: Date.now() + 300, tries: a.tries + 1 });
      }),
    );
    return due.length;
  }

  /** Stops the load: drops pending cancellations; signals are made due now (they must all arrive). */
  finish(): void {
    const now = Date.now();
    this.#actions = this.#actions.filter((a) => a.kind === 'signal').map((a) => ({ ...a, at: Math.min(a.at, now) }));
  }

  /** A fan-out's children; `maxMs` bounds how long each child works. */
  #fanOutArgs(maxMs: number): FanOutArgs {
    const r = this.rng;
    const n = r.int(20, 50);
    const strategy = r.pick<FanOutArgs['strategy']>(['fail-fast', 'collect-all', { threshold: 0.8 }]);
    let failing: number;
    if (strategy === 'fail-fast') failing = r.chance(0.5) ? 0 : r.int(1, 2);
    else if (strategy === 'collect-all') failing = r.int(0, 5);
    else failing = r.int(0, Math.ceil(n * 0.3));
    const children: ChildArgs[] = Array.from({ length: n }, () => ({ fail: false, flaky: r.chance(0.1), ms: r.int(5, maxMs), nest: [] }));
    for (let k = 0; k < failing; k++) children[r.int(0, n - 1)]!.fail = true;
    for (const c of children) {
      if (!c.fail && r.chance(0.08)) {
        c.nest = Array.from({ length: r.int(2, 5) }, () => ({ fail: r.chance(0.2), flaky: r.chance(0.1), ms: r.int(10, 300), nest: [] }));
      }
    }
    return { k: 'fanout', strategy, children };
  }

  #planSignals(id: string, plan: Extract<Plan, { kind: 'signal' }>, now: number): void {
    let at = now;
    for (let seq = 0; seq < plan.count; seq++) {
      at += this.rng.int(0, 2500);
      const payload = { sig: this.rng.token(16), seq };
      const signal = async (): Promise<'done' | 'again'> => {
        await this.queue.signal(id, 'go', payload);
        plan.sent.push(payload);
        this.stats.signalsSent++;
        return 'done';
      };
      // Signals of one job must go out in order: each waits for the previous one.
      const prior = seq;
      this.#actions.push({ kind: 'signal', at, tries: 0, run: async () => (plan.sent.length === prior ? signal() : 'again') });
    }
  }

  #planCancel(id: string, plan: Extract<Plan, { kind: 'fanout' }>, at: number): void {
    const cancel = async (a: Action): Promise<'done' | 'again'> => {
      const job = await this.queue.getJob(id);
      if (!job || job.status === 'completed' || job.status === 'failed' || job.status === 'cancelled') {
        this.stats.cancelsTooLate++;
        return 'done';
      }
      // Prefer a parent that is waiting on its children (a subtree to cancel); give up waiting after a while.
      if (job.status !== 'waiting' && a.tries < 8) return 'again';
      plan.cancel.requestedAt = Date.now();
      await this.queue.cancelJob(id);
      const after = await this.queue.getJob(id);
      if (after?.status === 'cancelled') {
        plan.cancel.appliedAt = after.completedAt?.getTime() ?? Date.now();
        this.stats.cancels++;
      } else this.stats.cancelsTooLate++;
      return 'done';
    };
    this.#actions.push({ kind: 'cancel', at, tries: 0, run: cancel });
  }
}
