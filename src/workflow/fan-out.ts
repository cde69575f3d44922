/**
 * Fan-out values and helpers: `sub()`, `values()`, `partition()`, `allSucceeded()`,
 * strategy validation, and turning finished children into ordered results.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { FanOutRow, JobRow } from '../storage/storage.js';
import { decodeJson, undecodedError } from '../storage/codec.js';
import { checkOptions } from '../core/validate.js';
import type { FanOutOptions, FanOutResult, JobDefinition, SubJob, SubJobOptions } from './job-context.js';

/**
 * Describes one sub-job for `ctx.fanOut`.
 * @example ctx.fanOut(images.map((img) => sub('process-image', img)))
 */
export function sub<Args>(type: string | JobDefinition<Args, unknown>, args: Args, options: SubJobOptions = {}): SubJob<Args> {
  const name = typeof type === 'object' && type !== null ? type.type : type;
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('sub(): job type must be a non-empty string or a definition');
  checkOptions<SubJobOptions>(options, 'sub options', ['priority', 'queue', 'retries', 'timeout', 'meta', 'concurrencyKey', 'rateLimitKey']);
  return Object.freeze({ type: name, args, options: { ...options } });
}

/** The values of the successful sub-jobs, in sub-job order. */
export function values<T>(results: readonly FanOutResult<T>[]): T[] {
  return results.filter((r) => !r.error).map((r) => r.value as T);
}

/** Splits results into `[succeeded, failed]`, each in sub-job order. */
export function partition<T>(results: readonly FanOutResult<T>[]): [FanOutResult<T>[], FanOutResult<T>[]] {
  const ok: FanOutResult<T>[] = [];
  const bad: FanOutResult<T>[] = [];
  for (const r of results) (r.error ? bad : ok).push(r);
  return [ok, bad];
}

/** True when every sub-job succeeded. */
export function allSucceeded(results: readonly FanOutResult<unknown>[]): boolean {
  return results.every((r) => !r.error);
}

/** Validated strategy in storage terms. @internal */
export function parseStrategy(options: FanOutOptions): { strategy: FanOutRow['strategy']; threshold: number | null } {
  const s = options.strategy ?? 'fail-fast';
  if (s === 'fail-fast' || s === 'collect-all') return { strategy: s, threshold: null };
  if (typeof s === 'object' && s !== null && typeof s.threshold === 'number' && s.threshold > 0 && s.threshold <= 1) {
    return { strategy: 'threshold', threshold: s.threshold };
  }
  throw new InvalidArgumentError(`fanOut strategy must be 'fail-fast', 'collect-all' or { threshold: r } with 0 < r <= 1`);
}

/**
 * Builds ordered results from the children of a decided fan-out.
 * @throws CodecError when a child's result or error text cannot be decoded (see `QueueOptions.codec`)
 * @internal
 */
export function collectResults<T>(total: number, children: readonly JobRow[]): FanOutResult<T>[] {
  const byIndex = new Map<number, JobRow>();
  for (const c of children) if (c.fanOutIndex !== null) byIndex.set(c.fanOutIndex, c);
  const out: FanOutResult<T>[] = [];
  for (let index = 0; index < total; index++) {
    const c = byIndex.get(index);
    // A child's error text no key of the codec opens is not handed on as a note.
    const undecoded = c === undefined || c.status === 'completed' ? undefined : undecodedError(c);
    if (undecoded !== undefined) throw undecoded;
    if (!c) out.push({ index, error: new Error('sub-job missing') });
    else if (c.status === 'completed') out.push({ index, value: decodeJson(c.resultJson, 'result') as T });
    else if (c.status === 'failed') out.push({ index, error: new Error(c.lastError ?? 'sub-job failed') });
    else if (c.status === 'cancelled') out.push({ index, error: new Error(c.lastError ?? 'sub-job cancelled') });
    else out.push({ index, error: new Error(`sub-job unfinished (${c.status}) when the fan-out was decided`) });
  }
  return out;
}
