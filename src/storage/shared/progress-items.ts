/**
 * What every driver's `jobProgressMany` shares: the check of its items (done once, in the
 * facade, before any driver sees them) and the rule that only the last item of a job applies.
 * @internal
 */
import { InvalidArgumentError } from '../../errors.js';
import type { JobProgressItem } from '../storage.js';

/** The error for the first item that no driver may store (a value not finite, a message not text), if any. @internal */
export function checkProgressItems(items: readonly JobProgressItem[]): InvalidArgumentError | undefined {
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    if (typeof it.value !== 'number' || !Number.isFinite(it.value)) {
      return new InvalidArgumentError(`jobProgressMany: the value of item ${i} must be a finite number, got ${String(it.value)}`);
    }
    if (it.message !== null && typeof it.message !== 'string') {
      return new InvalidArgumentError(`jobProgressMany: the message of item ${i} must be a string or null, got ${typeof it.message}`);
    }
  }
  return undefined;
}

/** The indexes of the items that apply: the last item of each job, in item order. @internal */
export function lastItemPerJob(items: readonly JobProgressItem[]): number[] {
  const last = new Map<string, number>();
  items.forEach((it, i) => last.set(it.jobId, i));
  return [...last.values()].sort((a, b) => a - b);
}
