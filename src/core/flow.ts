/**
 * Flow control shared by the producer and the worker: validation of a registration's limits
 * (`register(type, h, { concurrency, rateLimit })`) and of queue limits (`setQueueLimits`), the
 * registered key functions applied at enqueue, and the mapping to storage limit rows. The model
 * (what is limited, how groups count) is the storage contract's: see `storage/flow-rows.ts`.
 * @internal
 */
import { InvalidArgumentError, MAX_DELAY_MS, messageOf } from '../errors.js';
import type { QueueLimits, RateLimit } from '../flow-types.js';
import type { LimitRow, LimitSetParams } from '../storage/storage.js';
import { checkInt, checkOptions, checkTag, describe } from './validate.js';

/** Largest concurrency or rate `limit`. */
export const MAX_FLOW_LIMIT = 1_000_000;

/** A key function as registered (called with the job's args). @internal */
export type KeyFn = (args: never) => unknown;

/** A type's validated flow options (`register`). @internal */
export interface TypeFlow {
  concurrency: { limit: number; key: KeyFn | null } | null;
  rate: { limit: number; periodMs: number; key: KeyFn | null } | null;
}

/** Limits as a storage row holds them (null: none). @internal */
export interface LimitValues {
  concurrency: number | null;
  rateLimit: number | null;
  ratePeriodMs: number | null;
}

/** A concurrency `limit`: an integer from 1 to {@link MAX_FLOW_LIMIT}. */
function checkLimit(value: unknown, field: string): number {
  return checkInt(value, field, 1, MAX_FLOW_LIMIT);
}

/**
 * A rate limit `{ limit, period }`: `limit` 1 to {@link MAX_FLOW_LIMIT}, `period` an integer
 * number of ms from 1 to 100 years, and at most one start per millisecond (`limit <= period`),
 * the finest rate the storage keeps.
 */
export function checkRateLimit(value: unknown, field: string): RateLimit {
  const o = checkOptions<RateLimit>(value, field, ['limit', 'period']);
  if (o.limit === undefined || o.period === undefined) throw new InvalidArgumentError(`${field} needs a limit and a period (ms)`);
  const limit = checkLimit(o.limit, `${field}.limit`);
  const period = checkInt(o.period, `${field}.period`, 1, MAX_DELAY_MS);
  if (limit > period) {
    throw new InvalidArgumentError(
      `${field} allows ${limit} starts per ${period} ms, faster than one start per millisecond (the finest rate kept); use at most ${period} per ${period} ms`,
    );
  }
  return { limit, period };
}

function checkKeyFn(value: unknown, field: string): KeyFn | null {
  if (value === undefined) return null;
  if (typeof value !== 'function') throw new InvalidArgumentError(`${field} must be a function of the job's args, got ${describe(value)}`);
  return value as KeyFn;
}

/**
 * Validates `register`'s options; `null` when the type has no limits.
 * @throws InvalidArgumentError on an unknown option or an invalid limit or key
 */
export function checkRegisterOptions(type: string, options: unknown): TypeFlow | null {
  const o = checkOptions<{ concurrency: unknown; rateLimit: unknown }>(options, `register options of "${type}"`, ['concurrency', 'rateLimit']);
  let concurrency: TypeFlow['concurrency'] = null;
  let rate: TypeFlow['rate'] = null;
  if (o.concurrency !== undefined) {
    const field = `concurrency of "${type}"`;
    const c = checkOptions<{ limit: unknown; key: unknown }>(o.concurrency, field, ['limit', 'key']);
    if (c.limit === undefined) throw new InvalidArgumentError(`${field} needs a limit`);
    concurrency = { limit: checkLimit(c.limit, `${field}.limit`), key: checkKeyFn(c.key, `${field}.key`) };
  }
  if (o.rateLimit !== undefined) {
    const field = `rateLimit of "${type}"`;
    const r = checkOptions<{ limit: unknown; period: unknown; key: unknown }>(o.rateLimit, field, ['limit', 'period', 'key']);
    const { limit, period } = checkRateLimit({ limit: r.limit, period: r.period }, field);
    rate = { limit, periodMs: period, key: checkKeyFn(r.key, `${field}.key`) };
  }
  return concurrency === null && rate === null ? null : { concurrency, rate };
}

/**
 * Validates `setQueueLimits`'s limits: `null` removes them; otherwise at least one limit.
 * @throws InvalidArgumentError
 */
export function checkQueueLimits(value: unknown): LimitValues | null {
  if (value === null) return null;
  const o = checkOptions<QueueLimits>(value, 'queue limits', ['concurrency', 'rateLimit']);
  if (o.concurrency === undefined && o.rateLimit === undefined) {
    throw new InvalidArgumentError('queue limits need a concurrency or a rateLimit (pass null to remove the limits)');
  }
  const concurrency = o.concurrency === undefined ? null : checkLimit(o.concurrency, 'concurrency');
  const rate = o.rateLimit === undefined ? null : checkRateLimit(o.rateLimit, 'rateLimit');
  return { concurrency, rateLimit: rate?.limit ?? null, ratePeriodMs: rate?.period ?? null };
}

/** The limit values of a registration. */
export function typeLimitValues(flow: TypeFlow): LimitValues {
  return { concurrency: flow.concurrency?.limit ?? null, rateLimit: flow.rate?.limit ?? null, ratePeriodMs: flow.rate?.periodMs ?? null };
}

/** `limitSet` parameters of a type's registration. */
export function typeLimitParams(type: string, flow: TypeFlow): LimitSetParams {
  return { scope: 'type', name: type, ...typeLimitValues(flow) };
}

/** Whether a stored row holds exactly these limits. */
export function sameLimits(row: LimitRow, v: LimitValues): boolean {
  return row.concurrency === v.concurrency && row.rateLimit === v.rateLimit && row.ratePeriodMs === v.ratePeriodMs;
}

/**
 * A job's key for one limit: the explicit option if given (validated like `unique`), else what
 * the registered key function returns for the args (`''` meaning the type's one shared group),
 * else null (the shared group).
 * @throws InvalidArgumentError on an invalid explicit key, or a key function that throws or returns an invalid key
 */
export function resolveKey(explicit: unknown, option: string, fn: KeyFn | null | undefined, args: unknown, type: string, limit: string): string | null {
  if (explicit !== undefined) return checkTag(explicit, option);
  if (!fn) return null;
  let key: unknown;
  try {
    key = (fn as (a: unknown) => unknown)(args);
  } catch (err) {
    throw new InvalidArgumentError(`the ${limit} key function of "${type}" threw: ${messageOf(err)}`, { cause: err });
  }
  if (typeof key !== 'string') throw new InvalidArgumentError(`the ${limit} key function of "${type}" must return a string, got ${describe(key)}`);
  if (key === '') return null;
  return checkTag(key, `the ${limit} key of "${type}"`);
}
