/** Maps storage rows to the public, decoded `Job`. @internal */
import { decodeJson } from '../storage/codec.js';
import type { JobRow } from '../storage/storage.js';
import type { Job, JsonValue } from '../types.js';

/**
 * Decodes a row into a read-only `Job`. With `decode: false`, a snapshot for a row with a payload
 * that cannot be decoded (corrupt, or no key of the codec opens it): each payload that cannot be
 * decoded is left out (`args`, `result`; `meta` empty), the others are kept.
 * @throws SerializationError when a payload is corrupt (decoding only)
 */
export function toJob(row: JobRow, options: { decode?: boolean } = {}): Job {
  if (options.decode === false) row = { ...row, argsJson: decodable(row.argsJson), resultJson: decodable(row.resultJson), metaJson: decodable(row.metaJson) };
  const job: { -readonly [K in keyof Job]: Job[K] } = {
    id: row.id,
    type: row.type,
    queue: row.queue,
    args: decodeJson(row.argsJson, 'args'),
    status: row.status,
    priority: row.priority,
    attempt: row.attempt,
    maxRetries: row.maxRetries,
    runAt: new Date(row.runAt),
    createdAt: new Date(row.createdAt),
    meta: (decodeJson(row.metaJson, 'meta') as Record<string, JsonValue> | undefined) ?? {},
    progress: row.progressValue !== null && row.progressAt !== null ? Object.freeze({ value: row.progressValue, message: row.progressMessage, at: new Date(row.progressAt) }) : null,
  };
  if (row.startedAt !== null) job.startedAt = new Date(row.startedAt);
  if (row.completedAt !== null) job.completedAt = new Date(row.completedAt);
  if (row.resultJson !== null) job.result = decodeJson(row.resultJson, 'result');
  if (row.lastError !== null) job.lastError = row.lastError;
  if (row.parentId !== null) job.parentId = row.parentId;
  if (row.tenant !== null) job.tenant = row.tenant;
  if (row.timeoutMs !== null) job.timeout = row.timeoutMs;
  if (row.uniqueKey !== null) job.unique = row.uniqueKey;
  return Object.freeze(job);
}

/** The text if it decodes as JSON, else null (left out). */
function decodable(text: string | null): string | null {
  if (text === null) return null;
  try {
    decodeJson(text);
    return text;
  } catch {
    return null;
  }
}
