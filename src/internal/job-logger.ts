/**
 * Loggers that put a job's identity on every line: the `ctx.logger` handlers get, and the
 * engine's own lines about one job.
 * @internal
 */
import type { Logger } from '../types.js';

/** The fields every log line about one job carries. @internal */
export interface JobLogFields {
  /** The job's id. */
  readonly jobId: string;
  /** Its type (handler name). */
  readonly type: string;
  /** Its queue. */
  readonly queue: string;
  /** The attempt running (1 on the first run). */
  readonly attempt: number;
  /** The worker running it. */
  readonly workerId: string;
}

/** The log fields of a claimed job run by `workerId`. @internal */
export function jobLogFields(row: { readonly id: string; readonly type: string; readonly queue: string; readonly attempt: number }, workerId: string): JobLogFields {
  return { jobId: row.id, type: row.type, queue: row.queue, attempt: row.attempt, workerId };
}

/**
 * A logger that writes to `base` with `fields` first on every line; a line's own fields come
 * after them (and win on a clash).
 * @internal
 */
export function withFields(base: Logger, fields: object): Logger {
  const merge = (own: Record<string, unknown> | undefined): Record<string, unknown> => (own === undefined ? { ...fields } : { ...fields, ...own });
  return Object.freeze({
    debug: (message: string, own?: Record<string, unknown>) => base.debug(message, merge(own)),
    info: (message: string, own?: Record<string, unknown>) => base.info(message, merge(own)),
    warn: (message: string, own?: Record<string, unknown>) => base.warn(message, merge(own)),
    error: (message: string, own?: Record<string, unknown>) => base.error(message, merge(own)),
  });
}
