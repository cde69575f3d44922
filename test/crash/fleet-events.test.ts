/**
 * Fleet events across real processes, on every driver of the matrix: a subscriber in a child
 * process (`node --import tsx`) sees the enqueued, started, completed and failed events of jobs
 * run by this process's worker, each once, the start before the end (an enqueue may be announced
 * after the start it made possible), with this process's origin; and a subscriber
 * here sees those of jobs run by a worker in a child process, with the child's origin; and a
 * subscriber process killed with SIGKILL (no goodbye) stops this process's relaying once its
 * presence expires, after which jobs run here write nothing to the feed.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import type { FleetEvent } from '../../src/types.js';
import { spawnFixture, type Child } from '../helpers/child.js';
import { FaultyStorage } from '../helpers/faulty-storage.js';
import { uniqueName } from '../helpers/factories.js';
import { sharedStorage } from '../helpers/process-storage.js';
import { storageMatrix } from '../helpers/storages.js';
import { waitFor } from '../helpers/wait-for.js';

const FIXTURE = new URL('./fixtures/fleet-peer.ts', import.meta.url).pathname;

/** An event as the child prints it. */
interface Printed {
  type: string;
  jobId?: string;
  origin?: string;
}

/** The events a child printed so far. */
function printed(child: Child): Printed[] {
  return child.lines.filter((l) => l.startsWith('event ')).map((l) => JSON.parse(l.slice(6)) as Printed);
}

/** The types of the events about `jobId`, in the order seen. */
function sequence(events: readonly Printed[], jobId: string): string[] {
  return events.filter((e) => e.jobId === jobId).map((e) => e.type);
}

/** The printable fields of an event seen here. */
function fields(e: FleetEvent): Printed {
  if (e.type === 'events.gap') return { type: e.type };
  const jobId = 'job' in e ? e.job.id : 'jobId' in e ? e.jobId : undefined;
  return jobId === undefined ? { type: e.type, origin: e.origin } : { type: e.type, jobId, origin: e.origin };
}

/**
 * A queue here over `storage` (handlers `ok` and `boom`) with a worker of a fresh queue, and a
 * subscriber in a child process: resolves once this process relays its events to the feed.
 */
async function relayingToChild(storage: Storage, env: Record<string, string>, children: Child[]) {
  const queue = new Queue(storage);
  const q = uniqueName('fleet');
  queue.register('ok', async (args: unknown) => args);
  queue.register('boom', async () => {
    throw new Error('boom');
  });
  const worker = queue.newWorker({ queues: { [q]: {} }, pollInterval: 50, maintenanceInterval: 100, handleSignals: false });
  const done = worker.start();
  const child = spawnFixture(FIXTURE, { ...env, SDJ_ROLE: 'subscriber' });
  children.push(child);
  await child.waitForLine(/^ready$/);
  await waitFor(() => queue.core.relay!.active, { timeout: 15_000, message: "this process's relay notices the child's subscription" });
  return { queue, q, child, stop: () => worker.stop().then(() => done) };
}

for (const [dialect] of storageMatrix()) {
  describe(`fleet events across processes (${dialect})`, () => {
    const children: Child[] = [];
    after(() => {
      for (const c of children) c.proc.kill('SIGKILL');
    });

    it('a subscriber in another process sees the events of jobs run by this process, in order per job', async () => {
      const shared = await sharedStorage(dialect);
      const { queue, q, child, stop } = await relayingToChild(shared.storage, shared.env, children);
      try {
        const oks = await Promise.all([1, 2, 3].map((n) => queue.enqueue('ok', { n }, { queue: q })));
        const boom = await queue.enqueue('boom', {}, { queue: q, retries: 0 });
        await waitFor(() => {
          const seen = printed(child);
          const all = (id: string, end: string) => ['job.enqueued', 'job.started', end].every((t) => sequence(seen, id).includes(t));
          return oks.every((id) => all(id, 'job.completed')) && all(boom, 'job.failed');
        }, { timeout: 15_000, message: 'the child sees every event' });
        const seen = printed(child);
        // A job's start can be announced before its enqueue: the enqueue's event is emitted once
        // its insert returned, and a worker may claim the job in between (docs: "Fleet events").
        const lifecycle = (id: string) => sequence(seen, id).filter((t) => t !== 'job.enqueued');
        const enqueued = (id: string) => sequence(seen, id).filter((t) => t === 'job.enqueued');
        for (const id of oks) {
          assert.deepEqual(lifecycle(id), ['job.started', 'job.completed'], id);
          assert.deepEqual(enqueued(id), ['job.enqueued'], id);
        }
        assert.deepEqual(lifecycle(boom), ['job.started', 'job.failed']);
        assert.deepEqual(enqueued(boom), ['job.enqueued']);
        const origin = queue.core.relay!.origin;
        for (const e of seen.filter((x) => x.jobId !== undefined && [...oks, boom].includes(x.jobId))) assert.equal(e.origin, origin);
        assert.ok(!seen.some((e) => e.type === 'events.gap'), 'nothing was missed');
      } finally {
        child.proc.kill('SIGTERM');
        await child.exited;
        await stop();
        await shared.cleanup();
      }
    });

    it('a subscriber killed with SIGKILL: its presence expires, the relay here stops and writes nothing more', async () => {
      const shared = await sharedStorage(dialect);
      const faulty = new FaultyStorage(shared.storage);
      const { queue, q, child, stop } = await relayingToChild(faulty.storage, shared.env, children);
      try {
        const relayed = await queue.enqueue('ok', { n: 0 }, { queue: q });
        await waitFor(() => sequence(printed(child), relayed).includes('job.completed'), { timeout: 15_000, message: 'the child sees a job run here' });
        child.proc.kill('SIGKILL');
        await child.exited;
        // The presence row expires 10 s after its last beat; the relay asks every 2 s at most.
        await waitFor(() => !queue.core.relay!.active, { timeout: 30_000, message: 'the relay stops once the presence of the killed subscriber expired' });
        const appends = faulty.calls('eventAppendMany');
        const ids = await Promise.all([1, 2, 3].map((n) => queue.enqueue('ok', { n }, { queue: q })));
        for (const id of ids) assert.equal((await queue.waitForJob(id, { timeout: 10_000 })).status, 'completed');
        await queue.core.relay!.flush();
        assert.equal(faulty.calls('eventAppendMany'), appends, 'nothing is written to the feed for nobody');
      } finally {
        await stop();
        await shared.cleanup();
      }
    });

    it('a subscriber here sees the events of jobs run by a worker in another process, with its origin', async () => {
      const shared = await sharedStorage(dialect);
      const queue = new Queue(shared.storage);
      const q = uniqueName('fleet');
      const child = spawnFixture(FIXTURE, { ...shared.env, SDJ_ROLE: 'worker', SDJ_QUEUE: q });
      children.push(child);
      const stream = queue.events({ fleet: true });
      const seen: Printed[] = [];
      let reading = true;
      const reader = (async () => {
        for await (const e of stream) {
          seen.push(fields(e));
          if (!reading) break;
        }
      })();
      try {
        const origin = (await child.waitForLine(/^origin /)).slice('origin '.length);
        await child.waitForLine(/^ready$/);
        // The child's relay switches on at its next presence check: probe until it relays.
        // Each probe is awaited until the child finished it (seen here through its enqueued
        // event's job reaching completed in the database), then checked for a relayed start.
        await waitFor(async () => {
          const probe = await queue.enqueue('ok', { probe: true }, { queue: q });
          await queue.waitForJob(probe, { timeout: 10_000 });
          await queue.core.relay!.flush();
          return seen.some((e) => e.type === 'job.started' && e.origin === origin);
        }, { timeout: 20_000, message: "the child's relay switches on" });
        const oks = await Promise.all([1, 2, 3].map((n) => queue.enqueue('ok', { n }, { queue: q })));
        const boom = await queue.enqueue('boom', {}, { queue: q, retries: 0 });
        const mine = queue.core.relay!.origin;
        const enqueuedHere = (id: string) => sequence(seen.filter((e) => e.origin === mine), id).includes('job.enqueued');
        await waitFor(() => oks.every((id) => sequence(seen, id).includes('job.completed') && enqueuedHere(id)) && sequence(seen, boom).includes('job.failed') && enqueuedHere(boom), {
          timeout: 15_000,
          message: 'every terminal event, and every enqueue made here, is seen here',
        });
        const fromChild = seen.filter((e) => e.origin === origin);
        for (const id of oks) assert.deepEqual(sequence(fromChild, id), ['job.started', 'job.completed'], id);
        assert.deepEqual(sequence(fromChild, boom), ['job.started', 'job.failed']);
        for (const id of [...oks, boom]) assert.deepEqual(sequence(seen.filter((e) => e.origin === mine), id), ['job.enqueued'], `${id} enqueued here`);
        assert.ok(!seen.some((e) => e.type === 'events.gap'), 'nothing was missed');
      } finally {
        reading = false;
        await stream.return!();
        await reader;
        child.proc.kill('SIGTERM');
        await child.exited;
        await shared.cleanup();
      }
    });
  });
}
