/**
 * The limited claim (`LimitedClaims` inside `ClaimLoop`) over a fake storage, with mocked timers:
 * the limits a worker stores at start (only what differs; a type registered without limits
 * loses its stored row), no limited claim without limits but the one after each refresh, queue
 * limits ask only their queues, and no spinning — a claim that came back short is repeated only
 * after a limited job finished here (at once), a wake-up, the rate timer (with at most 10 %
 * jitter), the back-off of a full limit (pollMs doubling up to 8 × pollMs, reset by a full
 * claim) or, when nothing was ready, the poll's pace; a refresh claims once only when no limit applies or the limits changed;
 * a cycle of the limited claim alone does not make the ordinary claim. A cycle that makes both
 * claims shares its free slots in claim order and gives back the rest (a limited job outranked
 * holds the limited claim off until `pollMs`); the ordinary claim is skipped where its last claim
 * came back short until a wake-up or the poll, and a change of the database (`dataVersion`)
 * wakes it at most once per `pollMs` while such wakes find nothing.
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { checkRegisterOptions, type TypeFlow } from '../../../src/core/flow.js';
import type { JobClaimLimitedParams, JobClaimLimitedResult, JobClaimParams, JobRow, LimitRow, LimitSetParams } from '../../../src/storage/storage.js';
import { ClaimLoop } from '../../../src/worker/claim-loop.js';
import { LimitedClaims, shareSlots } from '../../../src/worker/limited-claims.js';
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
  /** What the next ordinary claims return (default: nothing). */
  let ordinaryReply: (p: JobClaimParams) => JobRow[] = () => [];
  const storage = fakeStorage({
    jobClaim: (p) => {
      ordinary.push(p.queues.map((q) => q.name));
      return Promise.resolve(ordinaryReply(p));
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
  const unwanted: JobRow[] = [];
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
    onUnwanted: (rows) => void unwanted.push(...rows),
    onError: (err) => void errors.push(err),
    limited: claims,
    now: () => Date.now(),
  });
  ref.loop = loop;
  return {
    loop,
    claims,
    ordinary,
    limited,
    writes,
    claimed,
    unwanted,
    errors,
    /** The ordinary claims return what `fn` gives. */
    ordinaryReply(fn: (p: JobClaimParams) => JobRow[]) {
      ordinaryReply = fn;
    },
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

  it('nothing ready: claims again at the poll\'s pace, as the ordinary claim (delayed limited jobs come due without a wake-up)', async () => {
    const h = harness({ a: 10 }, [typeRow('t', 5)]);
    await h.claims.sync([], undefined);
    h.loop.start();
    await flush();
    assert.equal(h.limited.length, 1);
    for (let i = 2; i <= 6; i++) {
      await advance(POLL_MS - 10);
      assert.equal(h.limited.length, i - 1, 'not sooner than pollMs');
      await advance(10);
      assert.equal(h.limited.length, i, 'every pollMs, no back-off');
    }
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

  it('shareSlots: per queue, the first jobs in claim order (priority desc, run_at, id) up to its free slots run; the rest go back', () => {
    const row = (queue: string, priority: number, runAt: number, limited = false): JobRow => jobRow({ queue, priority, runAt, limited });
    const ordinary = [row('a', 0, 10), row('a', 0, 20), row('a', 0, 30), row('b', 0, 10)];
    const limited = [row('a', 5, 50, true), row('a', 0, 15, true), row('a', 0, 40, true), row('b', -1, 0, true)];
    const { run, back } = shareSlots(
      [
        { name: 'a', limit: 3 },
        { name: 'b', limit: 1 },
      ],
      ordinary,
      limited,
    );
    assert.deepEqual(
      run.map((r) => r.id),
      [limited[0]!, ordinary[0]!, ordinary[3]!, limited[1]!].map((r) => r.id),
      'a: the higher priority, then by run_at; b: its ordinary job outranks the limited one',
    );
    assert.deepEqual(new Set(back.map((r) => r.id)), new Set([ordinary[1]!, ordinary[2]!, limited[2]!, limited[3]!].map((r) => r.id)));
    const alone = shareSlots([{ name: 'a', limit: 3 }], ordinary.slice(0, 2), []);
    assert.deepEqual([alone.run, alone.back], [ordinary.slice(0, 2), []], 'no limited job: the ordinary rows as they came');
  });

  it('a cycle with both claims asks each for every free slot, runs the first in claim order and gives the rest back', async () => {
    const h = harness({ a: 4 }, [typeRow('t', 10)]);
    await h.claims.sync([], undefined);
    h.ordinaryReply((p) => Array.from({ length: p.queues[0]!.limit }, (_, i) => jobRow({ queue: 'a', runAt: 1_000 + i })));
    h.reply(() => ({ rows: [jobRow({ queue: 'a', limited: true, priority: 5 }), jobRow({ queue: 'a', limited: true, priority: 5 })], retryInMs: null, saturated: false }));
    h.loop.start();
    await flush();
    assert.deepEqual([h.ordinary.length, h.limited.length], [1, 1]);
    assert.deepEqual(h.limited[0]?.queues, [{ name: 'a', limit: 4 }], 'the limited claim is asked for every free slot');
    assert.deepEqual(
      h.claimed.map((r) => [r.limited, r.priority, r.runAt]),
      [
        [true, 5, 1_000],
        [true, 5, 1_000],
        [false, 0, 1_000],
        [false, 0, 1_001],
      ],
      'four slots: the two limited jobs of a higher priority, then the oldest ordinary ones',
    );
    assert.deepEqual(
      h.unwanted.map((r) => [r.limited, r.runAt]),
      [
        [false, 1_002],
        [false, 1_003],
      ],
    );
    await h.loop.stop();
    await h.claims.stop();
  });

  it('limited jobs outranked by ordinary ones go back, and the limited claim waits for pollMs (or a trigger) before asking again', async () => {
    const h = harness({ a: 4 }, [typeRow('t', 10)]);
    await h.claims.sync([], undefined);
    h.ordinaryReply((p) => Array.from({ length: p.queues[0]!.limit }, () => jobRow({ queue: 'a', priority: 1 })));
    h.reply((p) => ({ rows: Array.from({ length: p.queues[0]!.limit }, () => jobRow({ queue: 'a', limited: true })), retryInMs: null, saturated: false }));
    h.loop.start();
    await flush();
    assert.deepEqual([h.claimed.every((r) => !r.limited), h.claimed.length, h.unwanted.length], [true, 4, 4]);
    // Ordinary jobs finish: the ordinary claim (full last time) refills, the limited claim does not run.
    h.ordinaryReply(() => []);
    for (const r of h.claimed.slice(0, 2)) {
      h.loop.slotFreed('a');
      h.loop.released('a', r.id);
    }
    await advance(0);
    assert.deepEqual([h.ordinary.length, h.limited.length], [2, 1]);
    await advance(POLL_MS - 20);
    assert.equal(h.limited.length, 1);
    await advance(20);
    assert.deepEqual(h.limited.at(-1)?.queues, [{ name: 'a', limit: 2 }], 'pollMs later the limited claim asks again');
    await h.loop.stop();
    await h.claims.stop();
  });

  it('no needless ordinary claim: where the last one came back short, only a wake-up or the poll asks again', async () => {
    const h = harness({ a: 10 }, [typeRow('t', 100)]);
    await h.claims.sync([], undefined);
    h.reply((p) => got(p.queues[0]!.limit));
    h.loop.start();
    await flush();
    assert.deepEqual([h.ordinary.length, h.limited.length, h.claimed.length], [1, 1, 10]);
    // A drain of limited jobs: each batch of finishes refills by the limited claim alone.
    for (let round = 0; round < 3; round++) {
      for (const r of h.claimed.slice(-10)) {
        h.loop.slotFreed('a');
        h.loop.released('a', r.id);
      }
      await advance(0);
    }
    assert.deepEqual([h.ordinary.length, h.limited.length, h.claimed.length], [1, 4, 40], 'no ordinary claim for these cycles');
    h.loop.wake('a');
    await flush();
    assert.equal(h.ordinary.length, 1, 'a full worker claims nothing on a wake-up');
    for (const r of h.claimed.slice(-10)) {
      h.loop.slotFreed('a');
      h.loop.released('a', r.id);
    }
    await advance(0);
    assert.equal(h.ordinary.length, 2, 'the wake-up is remembered: the next cycle asks the ordinary claim again');
    await h.loop.stop();
    await h.claims.stop();
  });

  it('a change of the database (a hint) makes an ordinary claim at once; while hints keep coming and lead to nothing, at the poll\'s pace', async () => {
    const h = harness({ a: 10 });
    await h.claims.sync([], undefined);
    h.loop.start(); // t = 0
    await flush();
    assert.equal(h.ordinary.length, 1);
    await advance(30);
    h.loop.wake('a', false);
    await flush();
    assert.equal(h.ordinary.length, 2, 'the first hint claims at once (t = 30), and finds nothing');
    for (let t = 40; t < 130; t += 10) {
      await advance(10);
      h.loop.wake('a', false);
      await flush();
    }
    assert.equal(h.ordinary.length, 2, 'hints 10 ms apart within pollMs of that claim: none');
    await advance(10); // t = 130: the poll, pollMs after the claim at 30
    h.loop.wake('a', false);
    await flush();
    assert.equal(h.ordinary.length, 3, 'one claim at t = 130 (the poll, or a hint: never both)');
    h.loop.wake('a');
    await flush();
    assert.equal(h.ordinary.length, 4, 'news of jobs claims at once');
    // The database goes quiet for pollMs: the next hint is news again.
    await advance(150); // the poll at t = 230
    assert.equal(h.ordinary.length, 5);
    h.ordinaryReply(() => [jobRow({ queue: 'a' })]);
    h.loop.wake('a', false);
    await flush();
    assert.equal(h.ordinary.length, 6, 'a hint after a quiet spell claims at once');
    h.ordinaryReply(() => []);
    await advance(10);
    h.loop.wake('a', false);
    await flush();
    assert.equal(h.ordinary.length, 7, 'that claim found a job: the next hint claims at once');
    await h.loop.stop();
    await h.claims.stop();
  });
});
