/**
 * The input rules of `ctx.progress(value, message?)`: a value from 0 to 1 (a fraction done),
 * and an optional message stored as every database can store it.
 * @internal
 */
import { InvalidArgumentError } from '../errors.js';
import { storableText } from '../internal/error-text.js';

/**
 * The longest progress message stored, in UTF-16 code units (a longer one is cut, ending with a
 * marker saying how long it was).
 */
export const PROGRESS_MESSAGE_MAX = 1024;

/**
 * Checks a progress report and returns what to store: the value (`-0` as `0`) and the message
 * (null when absent; NUL and unpaired surrogates replaced by U+FFFD; cut to
 * {@link PROGRESS_MESSAGE_MAX}).
 * @throws InvalidArgumentError when the value is not a number from 0 to 1 or the message is not a string
 */
export function checkProgress(value: unknown, message: unknown): { value: number; message: string | null } {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    const shown = typeof value === 'number' ? String(value) : typeof value;
    throw new InvalidArgumentError(`ctx.progress value must be a finite number from 0 to 1 (a fraction done), got ${shown}`);
  }
  if (message !== undefined && message !== null && typeof message !== 'string') {
    throw new InvalidArgumentError(`ctx.progress message must be a string, got ${typeof message}`);
  }
  return { value: value === 0 ? 0 : value, message: typeof message === 'string' ? storableText(message, PROGRESS_MESSAGE_MAX) : null };
}
