/**
 * Batches of the PostgreSQL driver that carry more payload than one statement should. Each
 * column of a batch travels as one text-array parameter, which the client builds as one string
 * (at most about 512 M characters in V8) and the server takes in one message (at most 1 GB).
 * A statement therefore carries at most {@link STATEMENT_TEXT_BUDGET} characters of payload:
 * a larger batch is split into consecutive parts, applied in one transaction. Batches under the
 * budget — nearly all — take the one-statement path unchanged.
 * @internal
 */
import type { JobFinishItem } from '../storage.js';
import { withTx } from './connection.js';
import type { PgExec } from './executor.js';
import { accountFanOutOutcomes, cancelSubtrees, descendants, lockFanOutsOf } from './fan-out-accounting.js';
import { JOB_FINISH_CHILDREN, JOB_FINISH_PLAIN } from './queries/run.js';
import { toInt, type FanOutDbRow } from './rows.js';
import { splitBySize } from '../shared/batch-split.js';

/**
 * Payload characters (UTF-16 code units) per statement at most. Escaped for an array literal,
 * a part stays under twice this many characters and six times as many bytes.
 */
export const STATEMENT_TEXT_BUDGET = 8 * 1024 * 1024;

/** Characters a string (or null) adds to a batch. */
export function textLength(s: string | null): number {
  return s === null ? 0 : s.length;
}

/**
 * Splits `items` into consecutive parts of at most `maxRows` items whose `size`s add up to
 * {@link STATEMENT_TEXT_BUDGET}; an item larger than the budget goes alone.
 */
export function splitByText<T>(items: readonly T[], size: (item: T) => number, maxRows = Number.POSITIVE_INFINITY): T[][] {
  return splitBySize(items, size, STATEMENT_TEXT_BUDGET, maxRows);
}

/** Payload characters of one finish item. */
export function finishText(i: JobFinishItem): number {
  return i.jobId.length + i.workerId.length + (i.outcome === 'completed' ? textLength(i.resultJson) : i.error.length);
}

/** The finish items as the `$2..$8` arrays of the finish statements. */
export function finishArrays(items: readonly JobFinishItem[]): unknown[][] {
  return [
    items.map((i) => i.jobId),
    items.map((i) => i.workerId),
    items.map((i) => Math.trunc(i.runCount)),
    items.map((i) => i.outcome),
    items.map((i) => (i.outcome === 'completed' ? i.resultJson : null)),
    items.map((i) => (i.outcome === 'completed' ? null : i.error)),
    items.map((i) => (i.outcome === 'retry' ? Math.trunc(i.delayMs) : 0)),
  ];
}

/**
 * Parts of a finish batch by input position. Every item of one job lands in the same part (in
 * input order), so "the first item whose fence holds applies" is decided within one statement.
 */
function finishParts(items: readonly JobFinishItem[]): number[][] {
  const byJob = new Map<string, number[]>();
  for (const [i, it] of items.entries()) {
    const group = byJob.get(it.jobId);
    if (group) group.push(i);
    else byJob.set(it.jobId, [i]);
  }
  const groups = [...byJob.values()];
  const size = (g: number[]): number => g.reduce((n, i) => n + finishText(items[i]!), 0);
  return splitByText(groups, size).map((part) => part.flat().sort((a, b) => a - b));
}

/**
 * `Storage.jobFinishMany` for a batch over {@link STATEMENT_TEXT_BUDGET}, in one transaction:
 * locks first (in id order) every fan-out the batch may count on — the finishing jobs' and the
 * failing jobs' descendants' — then applies the plain outcomes part by part, then the terminal
 * outcomes of fan-out children and the failures of jobs with children part by part (counting
 * and deciding their fan-outs), then cancels the failed jobs' unfinished descendants. Returns,
 * per item, the time its outcome was stored at, or null — as the one-statement path does.
 */
export async function finishInParts(x: PgExec, items: readonly JobFinishItem[]): Promise<(number | null)[]> {
  const stored: (number | null)[] = items.map(() => null);
  const done = await withTx(x.pool, async (c) => {
    const ok: [index: number, at: number][] = [];
    const failing = [...new Set(items.filter((i) => i.outcome === 'failed').map((i) => i.jobId))];
    const below = failing.length > 0 ? await descendants(x, c, failing) : [];
    await lockFanOutsOf(x, c, [...new Set(items.map((i) => i.jobId)), ...below]);
    const deferred: number[] = [];
    const walk = new Set<string>();
    for (const part of finishParts(items)) {
      const rows = await x.rows<{ ord: string; deferred: boolean; walk: boolean; at: string | null }>(
        JOB_FINISH_PLAIN,
        [x.now(), ...finishArrays(part.map((i) => items[i]!)), x.channel],
        c,
      );
      for (const r of rows) {
        const i = part[toInt(r.ord) - 1]!;
        if (!r.deferred) ok.push([i, toInt(r.at as string)]);
        else {
          deferred.push(i);
          if (r.walk) walk.add(items[i]!.jobId);
        }
      }
    }
    deferred.sort((a, b) => a - b);
    const failedParents: string[] = [];
    let cancelAt: number | null = null;
    for (const part of splitByText(deferred, (i) => finishText(items[i]!))) {
      const res = await x.one<{ applied: number[] | null; fans: FanOutDbRow[] | null; now: string }>(
        JOB_FINISH_CHILDREN,
        [x.now(), ...finishArrays(part.map((i) => items[i]!))],
        c,
      );
      if (res === undefined) continue;
      const at = toInt(res.now);
      cancelAt ??= at;
      await accountFanOutOutcomes(x, c, at, res.fans);
      for (const ord of res.applied ?? []) {
        const i = part[ord - 1]!;
        ok.push([i, at]);
        if (items[i]!.outcome === 'failed' && walk.has(items[i]!.jobId)) failedParents.push(items[i]!.jobId);
      }
    }
    if (failedParents.length > 0) await cancelSubtrees(x, c, cancelAt, { under: failedParents });
    return ok;
  });
  for (const [i, at] of done) stored[i] = at;
  return stored;
}
