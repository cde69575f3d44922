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
import { checkDate, checkDuration, checkInt, checkName, checkOptions, checkQueueName, checkTag, checkTimerDuration, MAX_RETRIES } from './validate.js';

/** Option keys `enqueue` accepts. */
export const ENQUEUE_OPTION_KEYS = ['priority', 'retries', 'delay', 'runAt', 'timeout', 'queue', 'unique', 'tenant', 'meta', 'transaction'] as const;

/** Defaults applied when an option is absent. */
export interface EnqueueDefaults {
  retries: number;
  queue: string;
  maxPayloadBytes: number;
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
  const tenant = o.tenant === undefined ? null : checkTag(o.tenant, 'tenant');
  let metaJson: string | null = null;
  if (o.meta !== undefined) {
    if (o.meta === null || typeof o.meta !== 'object' || Array.isArray(o.meta)) throw new InvalidArgumentError('meta must be a plain object');
    metaJson = encodeJson(o.meta, 'meta', defaults.maxPayloadBytes);
  }
  const argsJson = encodeJson(args, 'args', defaults.maxPayloadBytes);
  return {
    id: ids.next(),
    type: jobType,
    queue,
    priority,
    maxRetries: retries,
    argsJson,
    metaJson,
    delayMs: delay,
    runAt,
    timeoutMs: timeout,
    uniqueKey: unique,
    tenant,
    parentId: extras.parentId ?? null,
    fanOutId: extras.fanOutId ?? null,
    fanOutIndex: extras.fanOutIndex ?? null,
  };
}
