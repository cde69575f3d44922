/**
 * Test helper: the `job.progress` events a queue publishes, collected from its local event
 * stream until `stop()`.
 */
import type { Queue } from '../../src/queue/queue.js';
import type { JobEvent } from '../../src/types.js';

/** A `job.progress` event. */
export type ProgressEvent = Extract<JobEvent, { type: 'job.progress' }>;

/** Collects the `job.progress` events of a queue until `stop()`. */
export function collectProgress(queue: Queue): { events: ProgressEvent[]; stop: () => Promise<void> } {
  const events: ProgressEvent[] = [];
  const stream = queue.events();
  const loop = (async () => {
    for await (const e of stream) if (e.type === 'job.progress') events.push(e);
  })();
  return {
    events,
    stop: async () => {
      await stream.return?.();
      await loop;
    },
  };
}
