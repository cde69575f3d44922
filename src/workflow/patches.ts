/**
 * `ctx.patched(id)`: how a run's answers are stored and decided.
 *
 * An answer is stored as a checkpoint row of the run, outside the step sequence: a NEGATIVE step
 * index (−1, −2, … in the order the run first asked), the step name `patched:<id>` and the output
 * `true` or `false`. Steps are matched by position from 0 up, so these rows never meet a
 * `ctx.call` (a later version of the code may drop the `patched` call and still replay the run),
 * and a run's answer is found by id wherever in the run it is asked.
 *
 * The decision, the first time a run asks for an id: when the run's history holds a checkpoint
 * at the current step position or later, code without the patch already recorded the run past
 * this point, so the answer is `false` (the old branch); otherwise `true`.
 * @internal
 */
import { checkName } from '../core/validate.js';
import { PATCH_STEP_PREFIX, type StepRow } from '../storage/storage.js';

/** The step name the answer for `id` is stored under. */
export function patchStepName(id: string): string {
  return `${PATCH_STEP_PREFIX}${id}`;
}

/** Whether a checkpoint row is a stored answer of `ctx.patched` (not a step). */
export function isPatchRow(row: Pick<StepRow, 'stepIndex' | 'stepName'>): boolean {
  return row.stepIndex < 0 && row.stepName.startsWith(PATCH_STEP_PREFIX);
}

/** A patch id: a non-empty string of at most 255 characters without control characters. @throws InvalidArgumentError */
export function checkPatchId(id: unknown): string {
  return checkName(id, 'patch id');
}

/** The answers a run's history holds, by patch id, and the index the next answer is stored at. */
export interface StoredPatches {
  answers: Map<string, boolean>;
  nextIndex: number;
}

/** Reads the stored answers out of a run's checkpoints. */
export function storedPatches(history: ReadonlyMap<number, StepRow>): StoredPatches {
  const answers = new Map<string, boolean>();
  let lowest = 0;
  for (const row of history.values()) {
    if (row.stepIndex >= 0) continue;
    lowest = Math.min(lowest, row.stepIndex);
    if (isPatchRow(row)) answers.set(row.stepName.slice(PATCH_STEP_PREFIX.length), row.outputJson === 'true');
  }
  return { answers, nextIndex: lowest - 1 };
}

/**
 * The answer for a run that has not stored one: `false` when its history holds a step at
 * position `cursor` or later (code without the patch went past this point), else `true`.
 */
export function decidePatch(history: ReadonlyMap<number, StepRow>, cursor: number): boolean {
  for (const index of history.keys()) if (index >= cursor) return false;
  return true;
}
