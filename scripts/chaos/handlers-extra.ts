/**
 * The chaos job types that exercise operator actions and odd inputs:
 * - `chaos.gate` fails (noRetry) until the operator retried it, then succeeds: it looks for
 *   the operator's `opretry` mark, which is committed before `retryJob` is called, so its
 *   outcome is known from the operator's record alone;
 * - `chaos.gatefan` fans out plain children, then fails the same way until retried (a retry
 *   drops its checkpoints and children and runs the fan-out again);
 * - `chaos.odd` throws errors whose message holds NUL, lone surrogates and sometimes a long
 *   tail: retryable ones before it succeeds, or one noRetry failure, or a workflow step that
 *   fails with such a message and whose failure is checkpointed;
 * - `chaos.big` returns a result of a planned size close to the payload cap;
 * - `chaos.alt` is the job of the schedule whose spec the operator changes.
 */
import { noRetry } from '../../src/errors.js';
import type { Queue } from '../../src/queue/queue.js';
import type { JobContext } from '../../src/workflow/job-context.js';
import { fanOutStep, tracked, work, type ChildArgs, type HandlerHost } from './handlers.js';

/** `chaos.gate`: fails until the operator retried it. */
export interface GateArgs {
  k: 'gate';
  ms: number;
  /** The operator retries it once it failed (after `afterMs`). */
  retry: boolean;
  afterMs: number;
}
/** `chaos.gatefan`: a collect-all fan-out of plain children, then fails until retried. */
export interface GateFanArgs {
  k: 'gatefan';
  children: ChildArgs[];
  retry: boolean;
  afterMs: number;
}
/** `chaos.odd`: errors with NUL and lone surrogates in their message. */
export interface OddArgs {
  k: 'odd';
  /** `flaky`: `failTimes` retryable odd errors, then success; `fatal`: one noRetry odd error; `step`: a step fails with one. */
  mode: 'flaky' | 'fatal' | 'step';
  failTimes: number;
  /** Extra characters appended to the message (tests that stored error text is bounded). */
  tail: number;
  token: string;
}
/** `chaos.big`: returns {@link bigResult} of its args. */
export interface BigArgs {
  k: 'big';
  n: number;
  /** UTF-8 size of the result's JSON text. */
  bytes: number;
  ms: number;
}

/** The message every gated job fails with before its retry. */
export const GATE_ERROR = 'gate by design: fails until retried by the operator';
/** The readable start of every odd error message. */
export const ODD_MARK = 'odd error by design';

/** An error message holding NUL, lone surrogates (high and low) and a tail of `tail` characters. */
export function oddMessage(a: OddArgs, attempt: number): string {
  return `${ODD_MARK} ${a.mode} attempt ${attempt} [nul:\u0000] [hi:\uD800] [lo:\uDC00] [pair:😀] ${a.token}${'~'.repeat(a.tail)}`;
}

/** The result of a `chaos.big` job: JSON text of exactly `a.bytes` UTF-8 bytes. */
export function bigResult(a: BigArgs): { n: number; fill: string } {
  const head = `é€😀${a.n}:`;
  const overhead = Buffer.byteLength(JSON.stringify({ n: a.n, fill: head }), 'utf8');
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  let body = '';
  const want = Math.max(0, a.bytes - overhead);
  const chunk = Array.from({ length: 997 }, (_, i) => alphabet[(i * 7 + a.n) % alphabet.length]).join('');
  while (body.length < want) body += chunk;
  return { n: a.n, fill: head + body.slice(0, want) };
}

/** Registers the extra chaos job types on `queue`. */
export function registerExtraHandlers(queue: Queue, host: HandlerHost): void {
  const passGate = async (jobId: string): Promise<boolean> => host.effects.has('opretry', jobId);

  queue.register(
    'chaos.gate',
    tracked(host, async (a: GateArgs, ctx, run) => {
      await work(a.ms, ctx.abortSignal);
      if (!(await passGate(ctx.job.id))) {
        await run.effect('gate', 'failed');
        throw noRetry(new Error(GATE_ERROR));
      }
      await run.effect('gate', 'passed');
      return { gate: 'passed' };
    }),
  );

  queue.register(
    'chaos.gatefan',
    tracked(host, async (a: GateFanArgs, ctx, run) => {
      const out = await fanOutStep(ctx as JobContext<unknown>, run, a.children, 'collect-all');
      if (!(await passGate(ctx.job.id))) {
        await run.effect('gate', 'failed');
        throw noRetry(new Error(GATE_ERROR));
      }
      await run.effect('gate', 'passed');
      return out;
    }),
  );

  queue.register('chaos.oddstep', async (a: OddArgs) => {
    throw noRetry(new Error(oddMessage(a, 0)));
  });

  queue.register(
    'chaos.odd',
    tracked(host, async (a: OddArgs, ctx) => {
      if (a.mode === 'fatal') throw noRetry(new Error(oddMessage(a, ctx.job.attempt)));
      if (a.mode === 'step') {
        try {
          await ctx.call('chaos.oddstep', a);
          return { caught: false };
        } catch (e) {
          return { caught: e instanceof Error && e.message.startsWith(ODD_MARK) };
        }
      }
      if (ctx.job.attempt <= a.failTimes) throw new Error(oddMessage(a, ctx.job.attempt));
      return { attempt: ctx.job.attempt };
    }),
  );

  queue.register(
    'chaos.big',
    tracked(host, async (a: BigArgs, ctx) => {
      await work(a.ms, ctx.abortSignal);
      return bigResult(a);
    }),
  );

  queue.register(
    'chaos.alt',
    tracked(host, async (_args: unknown, ctx, run) => {
      await run.effect('tick', String(ctx.job.meta['scheduledFor']));
    }),
  );
}
