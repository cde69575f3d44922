/**
 * `pinoLogger(pino)`: the engine's `Logger` written to a pino logger. pino itself is not
 * imported: any object with pino's `(fields, message)` methods fits.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../types.js';

/**
 * Keys pino writes itself on every line. pino does not deduplicate: a field of the same name
 * is written as a second key, and a JSON parser keeps the last one (a `level: 'high'` field
 * would replace the line's level). Such a field is renamed `fields.<key>` (as logrus does).
 */
const PINO_KEYS: ReadonlySet<string> = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

/** One pino log method: structured fields first, then the message. */
export type PinoLogFn = (fields: Record<string, unknown>, message: string) => void;

/** What `pinoLogger` needs of a pino logger (a `pino()` instance or any of its `child()` loggers). */
export interface PinoLike {
  /** Writes at level 20. */
  debug: PinoLogFn;
  /** Writes at level 30. */
  info: PinoLogFn;
  /** Writes at level 40. */
  warn: PinoLogFn;
  /** Writes at level 50. */
  error: PinoLogFn;
}

/**
 * Adapts a pino logger to the engine's `Logger` (`(message, fields)` becomes pino's
 * `(fields, message)`), so every line the engine writes is one JSON object with pino's `level`,
 * `time` and `msg` and the line's fields at the top level — for a line about a job: `jobId`,
 * `type`, `queue`, `attempt` and `workerId`. Lines go through pino's own level filter.
 * A field named like a key pino writes itself (`level`, `time`, `msg`, `pid`, `hostname`, `v`)
 * is written as `fields.<key>`: pino would otherwise write the key twice, and parsers keep the
 * last (a `level` field would replace the line's level).
 * @param pino a `pino()` logger or a `child()` of one
 * @throws InvalidArgumentError when `pino` lacks one of the four methods
 * @example
 * import pino from 'pino';
 * import { Queue, pinoLogger } from 'simple-durable-jobs';
 * const queue = new Queue(storage, { logger: pinoLogger(pino({ level: 'info' }).child({ component: 'jobs' })) });
 */
export function pinoLogger(pino: PinoLike): Logger {
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof (pino as Partial<PinoLike> | null | undefined)?.[level] !== 'function') throw new InvalidArgumentError(`pinoLogger needs a pino logger: its ${level} is not a function`);
  }
  // Methods are called on `pino` itself: pino's methods read their logger from `this`.
  return Object.freeze({
    debug: (message: string, fields?: Record<string, unknown>) => pino.debug(safeFields(fields), message),
    info: (message: string, fields?: Record<string, unknown>) => pino.info(safeFields(fields), message),
    warn: (message: string, fields?: Record<string, unknown>) => pino.warn(safeFields(fields), message),
    error: (message: string, fields?: Record<string, unknown>) => pino.error(safeFields(fields), message),
  });
}

/** The fields as pino gets them: a key pino writes itself becomes `fields.<key>` (copied only then). */
function safeFields(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  if (fields === undefined) return {};
  let clash = false;
  for (const k in fields) if (PINO_KEYS.has(k)) clash = true;
  if (!clash) return fields;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[PINO_KEYS.has(k) ? `fields.${k}` : k] = v;
  return out;
}
