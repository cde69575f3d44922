/**
 * Test helper: events pulled from a fleet event stream until a condition holds.
 */
import type { FleetEvent } from '../../src/types.js';

/** Pulls events from a fleet stream until `done(seen)` holds (or the timeout passes). */
export async function collect(it: AsyncIterator<FleetEvent>, done: (seen: FleetEvent[]) => boolean, timeoutMs = 15_000): Promise<FleetEvent[]> {
  const seen: FleetEvent[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(seen)) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out; saw ${seen.map((e) => e.type).join(', ')}`);
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([it.next(), new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), left)))]);
    clearTimeout(timer);
    if (r === 'timeout') continue;
    if (r.done) throw new Error('the stream ended');
    seen.push(r.value);
  }
  return seen;
}
