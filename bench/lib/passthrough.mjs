// drain-passthrough (ours): the drain of lib/drain.mjs with a payload codec and middleware that
// do nothing, in the producer and the worker: the Queue is built with `codec` (a codec whose
// encode and decode return their text as it is, so every payload still goes through the codec
// layer at the storage boundary) and has a run, a step and an enqueue middleware that only call
// `next()`. run.mjs divides its jobs/s by the same target's drain of the same round: the goal is
// at most 5 % slower. After the timed part the run fails unless the worker's run middleware saw
// every job and the stored payloads went through the codec (the producer reads one job back and
// checks its stored args carry the codec's frame).
import { enqueueAll, measureDrain } from './drain.mjs';

/** The codec of drain-passthrough: returns its text unchanged (what a codec that does nothing costs). */
export const PASSTHROUGH_CODEC = Object.freeze({ name: 'bench-identity', opaque: false, encode: (t) => t, decode: (t) => t });

/** What drain-passthrough sets up (one line, under the table and in the report's notes). */
export const PASSTHROUGH_NOTE =
  'drain-passthrough runs on our targets only: the drain with the producer\'s and the worker\'s `Queue` built with a payload codec whose `encode` and `decode` return their text unchanged (`new Queue(storage, { codec })`), and a run (`queue.use`), step (`queue.useStep`) and enqueue (`queue.useEnqueue`) middleware that only call `next()`. A run fails unless the worker\'s run middleware saw every job and the producer reads the codec\'s frame on a stored job.';

export function drainPassthrough(target, cfg, p, ctx) {
  if (!target.ours) throw new Error(`${target.name} has no payload codec or middleware (ours only)`);
  const own = { ...cfg, passthrough: true };
  async function enqueue(producer) {
    if (!producer.passthroughStats) throw new Error(`${target.name}'s producer has no codec or middleware (no passthroughStats)`);
    await enqueueAll(producer, p.count, p.batchSize);
  }
  async function ready(producer) {
    const s = await producer.passthroughStats();
    if (s.enqueued < p.count) throw new Error(`the producer's enqueue middleware saw ${s.enqueued} of ${p.count} jobs`);
    if (!s.framed) throw new Error('a stored job does not carry the codec frame: the codec is not applied');
  }
  function extra(c) {
    if (!c.passthrough) throw new Error('the worker reported no middleware figures: its Queue has no codec or middleware');
    if (c.passthrough.runs < p.count) throw new Error(`the worker's run middleware saw ${c.passthrough.runs} of ${p.count} jobs`);
    return {};
  }
  return measureDrain(target, own, p, ctx, { enqueue, ready, extra });
}
