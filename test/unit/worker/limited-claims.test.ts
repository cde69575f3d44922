/**
 * The limited claim (`LimitedClaims` inside `ClaimLoop`) over a fake storage, with mocked timers:
 * the limits a worker stores at start (only what differs; a type registered without limits
 * loses its stored row), no limited claim without limits but the one after each refresh, queue
 * limits ask only their queues, and no spinning — a claim that came back short is repeated only
 * after a limited job finished here (at once), a wake-up, the rate timer (with at most 10 %
 * jitter) or the back-off of a full limit or of nothing ready (pollMs doubling up to 8 × pollMs,
 * reset by a full claim); a refresh claims once only when no limit applies or the limits changed;
 * a cycle of the limited claim alone does not make the ordinary claim.
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { checkRegisterOptions, type TypeFlow } from '../../../src/core/flow.js';
import type { JobClaimLimitedParams, JobClaimLimitedResult, JobRow, LimitRow, LimitSetParams } from '../../../src/storage/storage.js';
import { ClaimLoop } from '../../../src/worker/claim-loop.js';
import { LimitedClaims } from '../../../src/worker/limited-claims.js';
import { fakeStorage, flush, jobRow, recordingLogger } from './fakes.js';

const POLL_MS = 100;

const typeRow = (name: string, concurrency: number | null, rate: [number, number] | null = null): LimitRow => ({
  scope: 'type',
  name,
  concurrency,
  rateLimit: rate?.[0] ?? null,
  ratePeriodMs: rate?.[1] ?? null,
  updatedAt: 0,
});
const queueRow = (name: string, concurrency: number): LimitRow => ({ ...typeRow(name, concurrency), scope: 'queue' });

/** A claim loop with a limited claim over a fake storage whose limited replies the test sets. */
function harness(queues: Record<string, number>, stored: LimitRow[] = [], random = 0) {
  const ordinary: string[][] = [];
  const limited: JobClaimLimitedParams[] = [];
  const writes: string[] = [];
  let rows = [...stored];
  /** What the next limited claims return (default: nothing ready). */
  let reply: (p: JobClaimLimitedParams) => JobClaimLimitedResult = () => ({ rows: [], retryInMs: null, saturated: false });
  const storage = fakeStorage({
    jobClaim: (p) => {
      ordinary.push(p.queues.map((q) => q.name));
      return Promise.resolve([]);
    },
    jobClaimLimited: (p) => {
      limited.push(p);
      return Promise.resolve(reply(p));
    },
    limitList: () => Promise.resolve(rows.map((r) => ({ ...r }))),
    limitSet: (p: LimitSetParams) => {
      writes.push(`set ${p.name} ${p.concurrency} ${p.rateLimit}/${p.ratePeriodMs}`);
      rows = [...rows.filter((r) => r.name !== p.name || r.scope !== p.scope), { ...p, updatedAt: 0 }];
      return Promise.resolve();
    },
    limitDelete: (p) => {
      writes.push(`delete ${p.name}`);
      const had = rows.some((r) => r.name === p.name && r.scope === p.scope);
      rows = rows.filter((r) => r.name !== p.name || r.scope !== p.scope);
      return Promise.resolve(had);
    },
  });
  const claimed: JobRow[] = [];
  const errors: unknown[] = [];
  const ref: { loop?: ClaimLoop } = {};
  const claims = new LimitedClaims({
    storage,
    queues: Object.keys(queues),
    pollMs: POLL_MS,
    kick: () => ref.loop?.kickLimited(),
    onError: (_m, err) => void errors.push(err),
    random: () => random,
    now: () => Date.now(),
  });
  const loop = new ClaimLoop({
    storage,
    workerId: 'w',
    leaseMs: 30_000,
    pollMs: POLL_MS,
    queues: new Map(Object.entries(queues)),
    logger: recordingLogger(),
    onClaimed: (row) => void claimed.push(row),
    onUnwanted: () => {},
    onError: (err) => void errors.push(err),
    limited: claims,
  });
  ref.loop = loop;
  return {
    loop,
    claims,
    ordinary,
    limited,
    writes,
    claimed,
    errors,
    setRows(next: LimitRow[]) {
      rows = next;
    },
    /** Limited claims return `n` jobs of queue `q` each, then these flags. */
    reply(fn: (p: JobClaimLimitedParams) => JobClaimLimitedResult) {
      reply = fn;
    },
  };
}

/** A limited reply of `n` rows of queue `queue`. */
function got(n: number, queue = 'a', flags: Partial<JobClaimLimitedResult> = {}): JobClaimLimitedResult {
  return { rows: Array.from({ length: n }, () => jobRow({ queue, limited: true })), retryInMs: null, saturated: false, ...flags };
}

/** Moves mocked time forward by `ms` in steps of at most 10 ms, letting what each step started run. */
async function advance(ms: number): Promise<void> {
  do {
    const step = Math.min(ms, 10);
    mock.timers.tick(step);
    await flush();
    ms -= step;
  } while (ms > 0);
}

const flows = (entries: Record<string, unknown>): Map<string, TypeFlow> =>
  new Map(Object.entries(entries).flatMap(([t, o]) => {
    const f = checkRegisterOptions(t, o);
    return f ? [[t, f] as [string, TypeFlow]] : [];
  }));

describe('LimitedClaims', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setImmediate', 'Date'] }));
  afterEach(() => mock.timers.reset());

  it('stores the registered limits at start: only what differs; a type registered without limits loses its row', async () => {
    const h = harness({ a: 5 }, [typeRow('same', 2), typeRow('changed', 3), typeRow('dropped', 1), typeRow('other-app', 4), queueRow('a', 9)]);
    await h.claims.sync(['same', 'changed', 'dropped', 'fresh', 'plain'], flows({
      same: { concurrency: { limit: 2 } },
      changed: { concurrency: { limit: 5 }, rateLimit: { limit: 10, period: 1000 } },
      fresh: { rateLimit: { limit: 1, period: 60_000, key: () => 'k' } },
    }));
    assert.deepEqual(h.writes, ['set changed 5 10/1000', 'delete dropped', 'set fresh null 1/60000']);
  });

  it('without any limit: one limited claim after start (and after each refresh), none on wakes or polls', async () => {
    const h = harness({ a: 5, b: 2 });
    await h.claims.sync([], undefined);
    h.loop.start();
    await flush();
    assert.equal(h.ordinary.length, 1);
    assert.equal(h.limited.length, 1, 'the claim after the first read of the limits');
    assert.deepEqual(h.limited[0]?.queues, [{ name: 'a', limit: 5 }, { name: 'b', limit: 2 }]);
    h.loop.wake('a');
    await flush();
    await advance(POLL_MS * 3);
    assert.ok(h.ordinary.length >= 4, `the ordinary claim goes on: ${h.ordinary.length}`);
    assert.equal(h.limited.length, 1, 'no limited claim without a limit');
    h.claims.refresh();
    await flush();
    assert.equal(h.limited.length, 2, 'one limited claim per refresh');
    await h.loop.stop();
    await h.claims.stop();
  });

  it('with queue limits only, asks just the queues that have one', async () => {
    const h = harness({ a: 5, b: 2 }, [queueRow('b', 1), queueRow('elsewhere', 1)]);
    await h.claims.sync([], undefined);
    h.loop.start();
    await flush();
    h.loop.wake('a');
    await flush();
    assert.deepEqual(h.limited.at(-1)?.queues, [{ name: 'b', limit: 2 }]);
    await h.loop.stop();
    await h.claims.stop();
  });

  it('saturated: backs off from pollMs doubling to 8 × pollMs; a limited job finishing here claims again at once', async () => {
    const h = harness({ a: 10 }, [typeRow('t', 2)]);
    await h.claims.sync([], undefined);
    h.reply(() => got(2, 'a', { saturated: true }));
    h.loop.start();
    await flush();
    assert.equal(h.limited.length, 1);
    assert.equal(h.claimed.length, 2);
    h.reply(() => got(0, 'a', { saturated: true }));
    // Polls and the back-off: limited claims at +100, +200, +400, +800, +800 ms after each.
    const at: number[] = [];
    let t = 0;
    while (t < 3_000) {
      await advance(10);
      t += 10;
      while (at.length < h.limited.length - 1) at.push(t);
    }
    const gaps = at.map((x, i) => x - (at[i - 1] ?? 0));
    assert.deepEqual(gaps, [100, 200, 400, 800, 800], `limited claims at ${at.join(', ')} ms`);
    assert.ok(h.ordinary.length >= 25, 'the ordinary poll keeps its pace meanwhile');
    const before = h.limited.length;
    const ordinaryBefore = h.ordinary.length;
    h.loop.slotFreed('a');
    h.loop.released('a', h.claimed[0]?.id);
    await advance(0);
    assert.equal(h.limited.length, before + 1, 'the freed slot is claimed again at once');
    assert.equal(h.ordinary.length, ordinaryBefore, 'a cycle for the limited claim alone makes no ordinary claim');
    // A job that the limited claim did not take frees no limit slot.
    h.loop.slotFreed('a');
    h.loop.released('a', 'not-a-limited-job');
    await advance(0);
    assert.equal(h.limited.length, before + 1);
    await h.loop.stop();
    await h.claims.stop();
  });

  it('a full limited claim resets the back-off and may run again at the next cycle', async () => {
    const h = harness({ a: 10 }, [typeRow('t', 2)]);
    await h.claims.sync([], undefined);
    h.reply(() => got(0, 'a', { saturated: true }));
    h.loop.start();
    await flush();
    await advance(POLL_MS);
    await advance(2 * POLL_MS);
    assert.equal(h.limited.length, 3);
    h.reply((p) => got(p.queues[0]?.limit ?? 0));
    h.loop.wake('a');
    await flush();
    assert.equal(h.limited.length, 4, 'a wake-up arms the limited claim');
    assert.equal(h.claimed.length, 10);
    h.reply(() => got(0, 'a', { saturated: true }));
    for (let i = 0; i < 5; i++) h.loop.slotFreed('a');
    await advance(0);
    assert.equal(h.limited.length, 5, 'after a full claim the refill cycle claims limited jobs too');
    await advance(POLL_MS - 1);
    assert.equal(h.limited.length, 5);
    await advance(1);
    assert.equal(h.limited.length, 6, 'the back-off starts again at pollMs');
    await h.loop.stop();
    await h.claims.stop();
  });

  it('rate-blocked: waits retryInMs plus the jitter, not the poll; a rate-only job finishing claims nothing', async () => {
    const h = harness({ a: 10 }, [typeRow('t', null, [1, 1000])], 0.5);
    await h.claims.sync([], undefined);
    h.reply(() => got(1, 'a', { retryInMs: 1000 }));
    h.loop.start();
    await flush();
    assert.equal(h.limited.length, 1);
    await advance(1049);
    assert.equal(h.limited.length, 1, 'no limited claim before retryInMs × (1 + jitter)');
    assert.ok(h.ordinary.length >= 10, `while the ordinary claim polls: ${h.ordinary.length}`);
    await advance(1);
    assert.equal(h.limited.length, 2);
    // A job under a rate limit only frees no slot when it finishes: no claim for it.
    h.loop.slotFreed('a');
    h.loop.released('a', h.claimed[0]?.id);
    await advance(0);
    assert.equal(h.limited.length, 2);
    await h.loop.stop();
    await h.claims.stop();
  });

  it('nothing ready: backs off like a full limit (delayed limited jobs come due without a wake-up)', async () => {
    const h = harness({ a: 10 }, [typeRow('t', 5)]);
    await h.claims.sync([], undefined);
    h.loop.start();
    await flush();
    assert.equal(h.limited.length, 1);
    await advance(POLL_MS);
    assert.equal(h.limited.length, 2);
    await advance(2 * POLL_MS - 10);
    assert.equal(h.limited.length, 2, 'not at each poll');
    await advance(10);
    assert.equal(h.limited.length, 3);
    await h.loop.stop();
    await h.claims.stop();
  });

  it('a refresh claims once when no limit applies here or the limits changed; not when they are unchanged', async () => {
    const h = harness({ a: 10 }, [typeRow('t', 5)]);
    await h.claims.sync([], undefined);
    h.reply(() => got(0, 'a', { saturated: true }));
    h.loop.start();
    await flush();
    assert.equal(h.limited.length, 1);
    h.claims.refresh();
    await flush();
    assert.equal(h.limited.length, 1, 'same limits: the back-off decides');
    h.setRows([typeRow('t', 6)]);
    h.claims.refresh();
    await flush();
    assert.equal(h.limited.length, 2, 'changed limits: one claim now');
    h.setRows([]);
    h.claims.refresh();
    await flush();
    h.claims.refresh();
    await flush();
    assert.equal(h.limited.length, 4, 'no limit here: one claim per refresh');
    await h.loop.stop();
    await h.claims.stop();
  });

  it('a change of the database (dataVersion) arms the limited claim only when it found nothing ready, once per pollMs', async () => {
    const full = harness({ a: 10 }, [typeRow('t', 2)]);
    await full.claims.sync([], undefined);
    full.reply(() => got(0, 'a', { saturated: true }));
    full.loop.start();
    await flush();
    for (let i = 0; i < 9; i++) {
      full.loop.wake('a', false);
      await advance(10);
    }
    assert.equal(full.limited.length, 1, 'a full limit stays full whatever other processes write');
    full.loop.wake('a');
    await flush();
    assert.equal(full.limited.length, 2, 'news of jobs arms it');
    await full.loop.stop();
    await full.claims.stop();

    const h = harness({ a: 10 }, [typeRow('t', 2)]);
    await h.claims.sync([], undefined);
    h.loop.start(); // t = 0: nothing ready; the back-off fires at 100
    await flush();
    h.loop.wake('a', false);
    await advance(50);
    h.loop.wake('a', false);
    await flush();
    assert.equal(h.limited.length, 1, 'nothing ready, but the last claim is under pollMs old');
    await advance(50);
    assert.equal(h.limited.length, 2, 'the back-off (t = 100; the next at 300)');
    await advance(20);
    h.loop.wake('a', false);
    await flush();
    assert.equal(h.limited.length, 2);
    await advance(90);
    h.loop.wake('a', false);
    await flush();
    assert.equal(h.limited.length, 3, 'nothing ready and pollMs passed: a change arms it');
    await h.loop.stop();
    await h.claims.stop();
  });

  it('a failed limited claim is reported and tried again at the next cycle', async () => {
    const h = harness({ a: 10 }, [typeRow('t', 5)]);
    await h.claims.sync([], undefined);
    let fail = true;
    h.reply(() => {
      if (fail) throw new Error('boom');
      return got(0);
    });
    h.loop.start();
    await flush();
    assert.equal(h.errors.length, 1);
    fail = false;
    await advance(200);
    assert.equal(h.limited.length, 2);
    await h.loop.stop();
    await h.claims.stop();
  });
});
