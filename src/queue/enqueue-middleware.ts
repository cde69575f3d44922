/**
 * `enqueue` and `enqueueBatch` through the enqueue middleware (`queue.useEnqueue`): the user's
 * request goes through each chain, then the requests that reached the end are validated, encoded
 * and written in one call. Used only when middleware is registered.
 * @internal
 */
import { InvalidArgumentError } from '../errors.js';
import { buildJobInsert, conflictMode, ENQUEUE_OPTION_KEYS } from '../core/enqueue.js';
import { enqueueThrough, optionsOf, requestFor, type EnqueueMiddleware, type EnqueueRequest, type EnqueueSource } from '../core/middleware.js';
import type { QueueCore } from '../core/queue-core.js';
import { checkName, checkOptions } from '../core/validate.js';
import type { JobInsert } from '../storage/storage.js';
import type { BatchItem, EnqueueOptions } from '../types.js';

/** Writes built jobs; resolves with the id each resolved to (`Queue.#insert`). */
export type InsertJobs<Tx> = (jobs: JobInsert[], onConflict: 'error' | 'existing', tx: Tx | undefined) => Promise<(string | null)[]>;

/** The request a middleware sees for `(type, args, options)`; the options are checked first. */
export function requestOf(type: unknown, args: unknown, options: unknown, source: EnqueueSource, field = 'enqueue options'): EnqueueRequest {
  const name = checkName(typeof type === 'object' && type !== null ? (type as { type: unknown }).type : type, 'job type');
  return requestFor(name, args, checkOptions<EnqueueOptions>(options, field, ENQUEUE_OPTION_KEYS), source);
}

/** `queue.enqueue` through the middleware. */
export async function enqueueOneThrough<Tx>(core: QueueCore, layers: readonly EnqueueMiddleware[], type: unknown, args: unknown, options: unknown, insert: InsertJobs<Tx>): Promise<string> {
  const request = requestOf(type, args, options, 'enqueue');
  const [id] = await enqueueThrough(layers, [request], async ([r]) => {
    if (r === undefined) return [];
    const job = buildJobInsert(core.ids, core.defaults, r.type, r.args, optionsOf(r));
    const [stored] = await insert([job], conflictMode([r.options]), r.options.transaction as Tx | undefined);
    return [stored ?? job.id];
  });
  return id as string;
}

/** `queue.enqueueBatch` (with at least one item) through the middleware. */
export function enqueueBatchThrough<Tx>(core: QueueCore, layers: readonly EnqueueMiddleware[], items: readonly BatchItem[], tx: Tx | undefined, insert: InsertJobs<Tx>): Promise<string[]> {
  const requests = items.map((item, i) => {
    if (item === null || typeof item !== 'object') throw new InvalidArgumentError(`enqueueBatch item ${i} must be an object`);
    if (item.options && 'transaction' in item.options) throw new InvalidArgumentError(`enqueueBatch item ${i}: pass transaction to the batch, not an item`);
    return requestOf(item.type, item.args, item.options, 'batch', `enqueueBatch item ${i} options`);
  });
  return enqueueThrough(layers, requests, async (reached) => {
    const jobs = reached.map((r) => {
      if (r.options.transaction !== undefined) throw new InvalidArgumentError('an enqueue middleware set transaction on a batch item: pass it to the batch');
      return buildJobInsert(core.ids, core.defaults, r.type, r.args, optionsOf(r));
    });
    const ids = await insert(jobs, conflictMode(reached.map((r) => r.options)), tx);
    return jobs.map((j, i) => ids[i] ?? j.id);
  });
}
