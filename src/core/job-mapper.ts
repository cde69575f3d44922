/** Maps storage rows to the public, decoded `Job`. @internal */
import { decodeJson } from '../storage/codec.js';
import type { JobRow } from '../storage/storage.js';
import type { Job, JsonValue } from '../types.js';

/** Decodes a row into a read-only `Job`; with `decode: false`, a snapshot without its payloads. @throws SerializationError when a payload is corrupt (decoding only) */
export function toJob(row: JobRow, options: { decode?: boolean } = {}): Job {
  // Without decoding (a payload that cannot be decoded), args and result are left out and meta is empty.
  const decode = options.decode ?? true;
  const job: { -readonly [K in keyof Job]: Job[K] } = {
    id: row.id,
    type: row.type,
    queue: row.queue,
    args: decode ? decodeJson(row.argsJson, 'args') : undefined,
    status: row.status,
    priority: row.priority,
    attempt: row.attempt,
    maxRetries: row.maxRetries,
    runAt: new Date(row.runAt),
    createdAt: new Date(row.createdAt),
    meta: decode ? ((decodeJson(row.metaJson, 'meta') as Record<string, JsonValue> | undefined) ?? {}) : {},
    progress: row.progressValue !== null && row.progressAt !== null ? Object.freeze({ value: row.progressValue, message: row.progressMessage, at: new Date(row.progressAt) }) : null,
  };
  if (row.startedAt !== null) job.startedAt = new Date(row.startedAt);
  if (row.completedAt !== null) job.completedAt = new Date(row.completedAt);
  if (decode && row.resultJson !== null) job.result = decodeJson(row.resultJson, 'result');
  if (row.lastError !== null) job.lastError = row.lastError;
  if (row.parentId !== null) job.parentId = row.parentId;
  if (row.tenant !== null) job.tenant = row.tenant;
  if (row.timeoutMs !== null) job.timeout = row.timeoutMs;
  if (row.uniqueKey !== null) job.unique = row.uniqueKey;
  return Object.freeze(job);
}
