// What a payload codec and middleware that do nothing cost a drain, part by part: one process,
// one SQLite file, N no-op jobs enqueued first (untimed), then drained by one worker (50 slots)
// with one part switched on; prints jobs/s and the process's CPU µs per job. Variants: base
// (nothing), codec (a codec whose encode and decode return their text), mw (a run, a step and an
// enqueue middleware that only call next()), both.
//
// On a machine whose speed wanders, count instructions instead of time: with CG=1 the drain
// (and only the drain) is counted by valgrind's callgrind, the same total run after run:
//
//   npm run build && for v in base codec mw both; do
//     CG=1 valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null \
//       --smc-check=all-non-file node bench/passthrough-parts.mjs $v 10000 2>&1 | grep Collected; done
//
// and divide the "Collected" totals by N.
import { execSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, SqliteStorage } from '../dist/index.js';

const VARIANTS = ['base', 'codec', 'mw', 'both'];
const variant = process.argv[2] ?? 'base';
const N = Number(process.argv[3] ?? 20000);
if (!VARIANTS.includes(variant)) throw new Error(`unknown variant ${variant} (one of ${VARIANTS.join(', ')})`);

const file = join(tmpdir(), `sdj-passthrough-parts-${process.pid}.db`);
const storage = new SqliteStorage(file);
await storage.migrate();
const codec = { name: 'identity', opaque: false, encode: (t) => t, decode: (t) => t };
const queue = ['codec', 'both'].includes(variant) ? new Queue(storage, { codec }) : new Queue(storage);
let done = 0;
let allDone;
const finished = new Promise((resolve) => (allDone = resolve));
queue.register('noop', async () => {});
queue.onJobComplete(() => {
  if (++done === N) allDone();
});
if (['mw', 'both'].includes(variant)) {
  queue.use((job, next) => next());
  queue.useStep((step, next) => next());
  queue.useEnqueue((insert, next) => next());
}
for (let i = 0; i < N; i += 1000) await queue.enqueueBatch(Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ type: 'noop', args: { i: i + j } })));

if (process.env.CG) execSync(`callgrind_control -i on ${process.pid}`, { stdio: 'ignore' });
const worker = queue.newWorker({ queues: { default: { concurrency: 50 } }, handleSignals: false });
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const running = worker.start();
await finished;
const cpu = process.cpuUsage(cpu0);
const ms = performance.now() - t0;
await worker.stop();
await running;
await storage.close();
for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
console.log(`${variant.padEnd(5)} jobs/s ${String(Math.round((N / ms) * 1000)).padStart(6)}  cpu µs/job ${((cpu.user + cpu.system) / N).toFixed(1)}`);
