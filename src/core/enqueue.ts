/**
 * Turns `(type, args, EnqueueOptions)` into a validated, encoded `JobInsert`.
 * Everything is checked before anything is written.
 * @internal
 */
import { InvalidArgumentError } from '../errors.js';
import type { IdGenerator } from '../internal/ids.js';
import { encodeJson } from '../storage/codec.js';
import type { JobInsert } from '../storage/storage.js';
import type { EnqueueOptions } from '../types.js';
import { resolveKey, type TypeFlow } from './flow.js';
import { checkDate, checkDuration, checkInt, checkName, checkOptions, checkQueueName, checkTag, checkTimerDuration, describe, MAX_RETRIES } from './validate.js';

/** Option keys `enqueue` accepts. */
export const ENQUEUE_OPTION_KEYS = [
  'priority',
  'retries',
  'delay',
  'runAt',
  'timeout',
  'queue',
  'unique',
  'uniqueFor',
  'onDuplicate',
  'debounce',
  'concurrencyKey',
  'rateLimitKey',
  'tenant',
  'meta',
  'transaction',
] as const;

/** Defaults applied when an option is absent. */
export interface EnqueueDefaults {
  retries: number;
  queue: string;
  maxPayloadBytes: number;
  /**
   * The flow options of the types registered on the queue: their key functions give the keys of
   * the jobs built here (enqueues, sub-jobs, schedule fires) that name none. Absent: none.
   */
  flows?: ReadonlyMap<string, TypeFlow>;
}

/** Extra fields set by the engine itself (fan-out children, schedules). */
export interface InsertExtras {
  parentId?: string | null;
  fanOutId?: string | null;
  fanOutIndex?: number | null;
}

/** Validates and encodes one job. @throws InvalidArgumentError, SerializationError, PayloadTooLargeError */
export function buildJobInsert(
  ids: IdGenerator,
  defaults: EnqueueDefaults,
  type: unknown,
  args: unknown,
  options: unknown,
  extras: InsertExtras = {},
): JobInsert {
  const jobType = checkName(type, 'job type');
  const o = checkOptions<EnqueueOptions>(options, 'enqueue options', ENQUEUE_OPTION_KEYS);
  const priority = o.priority === undefined ? 0 : checkInt(o.priority, 'priority', -2_147_483_648);
  const retries = o.retries === undefined ? defaults.retries : checkInt(o.retries, 'retries', 0, MAX_RETRIES);
  const delay = o.delay === undefined ? 0 : checkDuration(o.delay, 'delay');
  const runAt = o.runAt === undefined ? null : checkDate(o.runAt, 'runAt').getTime();
  // The executor arms a timer with it.
  const timeout = o.timeout === undefined ? null : checkTimerDuration(o.timeout, 'timeout', 1);
  const queue = o.queue === undefined ? defaults.queue : checkQueueName(o.queue);
  const unique = o.unique === undefined ? null : checkTag(o.unique, 'unique');
  const uniqueFor = o.uniqueFor === undefined ? null : checkDuration(o.uniqueFor, 'uniqueFor');
  if (uniqueFor !== null && unique === null) throw new InvalidArgumentError('uniqueFor needs unique (the key it dedups on)');
  if (o.onDuplicate !== undefined) {
    if (o.onDuplicate !== 'error' && o.onDuplicate !== 'existing') throw new InvalidArgumentError(`onDuplicate must be 'error' or 'existing', got ${describe(o.onDuplicate)}`);
    if (unique === null) throw new InvalidArgumentError('onDuplicate needs unique (the key a duplicate clashes on)');
  }
  const debounce = o.debounce === undefined ? null : checkDebounce(o.debounce, unique !== null, o.delay !== undefined || o.runAt !== undefined);
  const tenant = o.tenant === undefined ? null : checkTag(o.tenant, 'tenant');
  let metaJson: string | null = null;
  if (o.meta !== undefined) {
    if (o.meta === null || typeof o.meta !== 'object' || Array.isArray(o.meta)) throw new InvalidArgumentError('meta must be a plain object');
    metaJson = encodeJson(o.meta, 'meta', defaults.maxPayloadBytes);
  }
  const argsJson = encodeJson(args, 'args', defaults.maxPayloadBytes);
  // Keys last: a key function sees args that are known to be storable.
  const flow = defaults.flows?.get(jobType);
  const concurrencyKey = resolveKey(o.concurrencyKey, 'concurrencyKey', flow?.concurrency?.key, args, jobType, 'concurrency');
  const rateKey = resolveKey(o.rateLimitKey, 'rateLimitKey', flow?.rate?.key, args, jobType, 'rate limit');
  const insert: JobInsert = {
    id: ids.next(),
    type: jobType,
    queue,
    priority,
    maxRetries: retries,
    argsJson,
    metaJson,
    delayMs: debounce?.delay ?? delay,
    runAt,
    timeoutMs: timeout,
    uniqueKey: unique,
    tenant,
    parentId: extras.parentId ?? null,
    fanOutId: extras.fanOutId ?? null,
    fanOutIndex: extras.fanOutIndex ?? null,
  };
  // Flow fields only when used, so an insert without them is exactly what it was before.
  if (concurrencyKey !== null) insert.concurrencyKey = concurrencyKey;
  if (rateKey !== null) insert.rateKey = rateKey;
  if (uniqueFor !== null) insert.uniqueForMs = uniqueFor;
  if (debounce !== null) insert.debounceKey = debounce.key;
  return insert;
}

function checkDebounce(value: unknown, unique: boolean, timed: boolean): { key: string; delay: number } {
  const d = checkOptions<{ key: unknown; delay: unknown }>(value, 'debounce', ['key', 'delay']);
  if (d.key === undefined || d.delay === undefined) throw new InvalidArgumentError('debounce needs a key and a delay (ms)');
  if (unique) throw new InvalidArgumentError('debounce cannot be combined with unique (a debounced job is replaced, not deduplicated)');
  if (timed) throw new InvalidArgumentError('debounce cannot be combined with delay or runAt: debounce.delay is the run delay');
  return { key: checkTag(d.key, 'debounce.key'), delay: checkDuration(d.delay, 'debounce.delay') };
}

/**
 * The `onConflict` of a batch from its items' `onDuplicate` (validated by {@link buildJobInsert}):
 * `'existing'` when the items with `unique` ask for it, else `'error'`.
 * @throws InvalidArgumentError when items with `unique` ask for different ones
 */
export function conflictMode(options: readonly unknown[]): 'error' | 'existing' {
  let mode: 'error' | 'existing' | undefined;
  for (const o of options) {
    if (o === null || typeof o !== 'object') continue;
    const { unique, onDuplicate } = o as EnqueueOptions;
    if (unique === undefined) continue;
    const m = onDuplicate ?? 'error';
    if (mode !== undefined && m !== mode) throw new InvalidArgumentError("onDuplicate must be the same for every item of a batch that has unique ('error' is the default)");
    mode = m;
  }
  return mode ?? 'error';
}
