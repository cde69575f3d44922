/**
 * Parsers of `sdj` option values. Each throws commander's `InvalidArgumentError`, so a bad
 * value is reported as bad usage (exit code 2) naming the option.
 * @module
 */
import { InvalidArgumentError as OptionValueError } from 'commander';
import { JOB_STATUSES, type JobStatus } from '../index.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Longest duration accepted: 100 years. */
const MAX_DURATION_MS = 100 * 365 * 86_400_000;

/**
 * A duration such as `30s`, `15m`, `12h`, `7d` or `2w` (also `500ms`, and `0`) in milliseconds.
 * @throws commander's InvalidArgumentError on anything else
 */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d|w)?$/.exec(text.trim());
  const unit = m?.[2];
  if (m === null || (unit === undefined && Number(m[1]) !== 0)) {
    throw new OptionValueError('expected a duration such as 30s, 15m, 12h or 7d');
  }
  const ms = Number(m[1]) * (unit === undefined ? 0 : (UNITS[unit] ?? 0));
  if (!Number.isSafeInteger(ms) || ms > MAX_DURATION_MS) throw new OptionValueError('duration is too long (at most 100 years)');
  return ms;
}

/**
 * A comma-separated list of job statuses, e.g. `failed` or `pending,running`.
 * @throws commander's InvalidArgumentError on an unknown status
 */
export function parseStatuses(text: string): JobStatus[] {
  const list = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) throw new OptionValueError(`expected one or more of ${JOB_STATUSES.join(', ')}`);
  for (const s of list) {
    if (!(JOB_STATUSES as readonly string[]).includes(s)) {
      throw new OptionValueError(`unknown status "${s}" (expected ${JOB_STATUSES.join(', ')}, comma-separated)`);
    }
  }
  return [...new Set(list)] as JobStatus[];
}

/**
 * A page size from 1 to 500.
 * @throws commander's InvalidArgumentError otherwise
 */
export function parseLimit(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 500) throw new OptionValueError('expected a whole number from 1 to 500');
  return n;
}
