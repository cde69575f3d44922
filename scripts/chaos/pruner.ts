/**
 * A chaos pruner process: an operator's script that calls `queue.prune()` on the run's shared
 * grid (pruning.ts) until SIGTERM. Env: the backend (see backend.ts), CHAOS_PRUNER_NAME,
 * CHAOS_RETENTION (the queue's retention, JSON; `false` keeps everything), CHAOS_SEED.
 * Prints `pruned <n>` after each call and `prune-error <message>` when one rejects; on SIGTERM it
 * lets the call in flight finish, closes its storage and exits 0.
 */
import { Queue } from '../../src/queue/queue.js';
import type { RetentionOptions } from '../../src/types.js';
import { openStorage } from './backend.js';
import { Rng, streamOf } from './options.js';
import { pruneOnGrid } from './pruning.js';

const env = process.env as Record<string, string>;
const name = env['CHAOS_PRUNER_NAME'] ?? `P${process.pid}`;
const retention = JSON.parse(env['CHAOS_RETENTION'] ?? 'false') as RetentionOptions | false;
const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());

const storage = await openStorage(env, 2);
const queue = new Queue(storage, { retention });
await pruneOnGrid(queue, new Rng(Number(env['CHAOS_SEED'] ?? 42), streamOf(name)), stop.signal, (r) => {
  if (r instanceof Error) console.log(`prune-error ${r.message.replaceAll('\n', ' ')}`);
  else console.log(`pruned ${r}`);
});
await storage.close();
