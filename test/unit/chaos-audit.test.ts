/**
 * The chaos audit's judgement of runs cut short by kills, of runs whose lease ran out and of work
 * under cancelled parents: what it excuses (an outcome in flight when its process was killed; a
 * lease its worker logged as run out; a handler started late after a claim that preceded the
 * cancel) and what it still reports.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AuditInput, FanOutRec, JobRec, Run } from '../../scripts/chaos/audit-data.js';
import { checkCancelled, checkOutcomesKept } from '../../scripts/chaos/audit.js';
import { checkFanOuts } from '../../scripts/chaos/audit-workflows.js';
import type { EffectRow } from '../../scripts/chaos/effects.js';
import { GATE_ERROR } from '../../scripts/chaos/handlers-extra.js';
import type { ProcLife } from '../../scripts/chaos/fleet.js';
import type { Plan } from '../../scripts/chaos/load.js';

const job = (id: string, over: Partial<JobRec> = {}): JobRec => ({
  id,
  type: 'chaos.fanout',
  queue: 'chaos',
  status: 'completed',
  attempt: 0,
  maxRetries: 3,
  runCount: 1,
  args: null,
  result: JSON.stringify({ status: 'succeeded' }),
  meta: null,
  lastError: null,
  parentId: null,
  fanOutId: null,
  fanOutIndex: null,
  completedAt: 10_000,
  ...over,
});

const life = (name: string, over: Partial<ProcLife> = {}): ProcLife => ({
  name,
  pid: 1,
  startedAt: 0,
  readyAt: 0,
  plannedExit: false,
  killedAt: null,
  exitedAt: null,
  exit: null,
  crashed: false,
  stored: new Map(),
  leaseRanOut: new Map(),
  slowestHeartbeat: null,
  ...over,
});

const run = (jobId: string, runCount: number, worker: string, start: number, end: number, claimedAt: number | null = start): Run => ({
  jobId,
  runCount,
  worker,
  start,
  end,
  state: 'ended',
  info: 'returned',
  interrupted: false,
  owner: null,
  claimedAt,
});

const resume = (jobId: string, runCount: number, at: number): EffectRow => ({ id: `${jobId}-${runCount}`, kind: 'resume', jobId, step: null, worker: 'W', pid: 1, runCount, state: null, info: JSON.stringify({ status: 'succeeded', ok: 1, failed: 0, unfinished: [] }), startedAt: at, endedAt: null, owner: null, claimedAt: null });

function input(over: Partial<AuditInput>): AuditInput {
  const base = {
    backend: 'postgres',
    retention: null,
    finalPrune: null,
    jobs: new Map(),
    children: new Map(),
    all: new Map(),
    allChildren: new Map(),
    deletions: [],
    pruned: new Map(),
    steps: [],
    fanOuts: [],
    signals: [],
    strays: [],
    effects: [],
    runs: new Map(),
    lives: new Map(),
    plans: new Map(),
    ops: { retries: new Map(), jobPauses: new Map(), queuePauses: [], scheduleDefs: [], errors: 0 },
  } satisfies AuditInput;
  return { ...base, ...over };
}

/** A parent with one succeeded child whose fan-out was decided at 1,000, resumed by runs 2 and 3. */
function resumedTwice(killedAt: number | null, stored?: number): AuditInput {
  const parent = job('p');
  const kid = job('k', { type: 'chaos.child', parentId: 'p', fanOutId: 'f', fanOutIndex: 0, result: null });
  const fanOut: FanOutRec = { id: 'f', parentId: 'p', strategy: 'fail-fast', threshold: null, total: 1, succeeded: 1, failed: 0, cancelled: 0, status: 'succeeded', createdAt: 500, decidedAt: 1000, pruned: false };
  const a = life('A', { killedAt, exitedAt: killedAt, ...(stored === undefined ? {} : { stored: new Map([['p', stored]]) }) });
  return input({
    jobs: new Map([['p', parent], ['k', kid]]),
    all: new Map([['p', parent], ['k', kid]]),
    children: new Map([['p', [kid]]]),
    allChildren: new Map([['p', [kid]]]),
    fanOuts: [fanOut],
    effects: [resume('p', 2, 1100), resume('p', 3, 9000)],
    runs: new Map([['p', [run('p', 1, 'A', 100, 400), run('p', 2, 'A', 1050, 1200), run('p', 3, 'B', 8000, 9100)]]]),
    lives: new Map([['A', a], ['B', life('B')]]),
  });
}

describe('chaos audit: a fan-out parent resumed again', () => {
  it('is excused when the first resume\'s process was killed, later than 2 s, with its outcome not reported stored', () => {
    assert.deepEqual(checkFanOuts(resumedTwice(5000)).violations, []);
  });

  it('is reported when no kill explains it', () => {
    const v = checkFanOuts(resumedTwice(null)).violations;
    assert.equal(v.length, 1);
    assert.match(v[0]!, /parent p resumed 2 times after fan-out f was decided/);
  });

  it('is reported when the outcome was reported stored before the kill', () => {
    assert.equal(checkFanOuts(resumedTwice(5000, 1300)).violations.length, 1);
  });

  it('is reported when the kill came after the next run began', () => {
    assert.equal(checkFanOuts(resumedTwice(8500)).violations.length, 1);
  });

  it('is excused when the first resume threw and the engine ran the job again, but not when it failed at its gate', () => {
    const threw = resumedTwice(null);
    const runs = threw.runs.get('p')!;
    runs[1] = { ...runs[1]!, info: 'threw: connection terminated' };
    assert.deepEqual(checkFanOuts(threw).violations, []);
    runs[1] = { ...runs[1]!, info: `threw: ${GATE_ERROR}` };
    assert.equal(checkFanOuts(threw).violations.length, 1);
  });
});

/** A fan-out root cancelled at 1,000 (database clock) whose child ran once. */
function cancelled(childRun: Run): AuditInput {
  const root = job('r', { status: 'cancelled', completedAt: 1000 });
  const kid = job('c', { type: 'chaos.child', status: 'cancelled', parentId: 'r', fanOutId: 'f', fanOutIndex: 0, completedAt: 1000 });
  const plan = { kind: 'fanout', args: { children: [], strategy: 'fail-fast' }, cancel: { plannedAfterMs: 10, requestedAt: 990, appliedAt: 1000 } } as unknown as Plan;
  return input({
    all: new Map([['r', root], ['c', kid]]),
    allChildren: new Map([['r', [kid]]]),
    plans: new Map([['r', plan]]),
    runs: new Map([['c', [childRun]]]),
  });
}

/** Job j returned on A at 1,000..1,200 and ran again at 8,000 on `nextOn`; A logged j's lease as run out at `ranOutAt`. */
function ranAgain(ranOutAt: number | null, nextOn = 'B'): AuditInput {
  const a = life('A', { ...(ranOutAt === null ? {} : { leaseRanOut: new Map([['j', ranOutAt]]) }), slowestHeartbeat: { ms: 6100, sentAt: 900 } });
  return input({
    all: new Map([['j', job('j', { type: 'chaos.plain' })]]),
    runs: new Map([['j', [run('j', 1, 'A', 1000, 1200), run('j', 2, nextOn, 8000, 8100)]]]),
    lives: new Map([['A', a], ['B', life('B')]]),
  });
}

describe('chaos audit: a returned run whose job ran again', () => {
  it('is reported as a lost outcome when nothing explains it', () => {
    const verdict = checkOutcomesKept(ranAgain(null));
    assert.equal(verdict.violations.length, 1);
    assert.match(verdict.violations[0]!, /run 1 on A returned, yet run 2 on B started 6800 ms later/);
  });

  it('is excused when its worker logged its lease as run out, and the note names the slowest heartbeat', () => {
    const verdict = checkOutcomesKept(ranAgain(6500));
    assert.deepEqual(verdict.violations, []);
    assert.match(verdict.note ?? '', /1 whose worker logged their lease as run out .*slowest heartbeat call 6100 ms on A/);
  });

  it('is reported when the run-out was logged before the run began (an earlier run of the job)', () => {
    assert.equal(checkOutcomesKept(ranAgain(900)).violations.length, 1);
  });

  it('is reported when the same worker claimed the job again before logging the run-out', () => {
    assert.equal(checkOutcomesKept(ranAgain(8050, 'A')).violations.length, 1);
    assert.deepEqual(checkOutcomesKept(ranAgain(7000, 'A')).violations, []);
  });

  it('a fan-out parent resumed again after its lease ran out is excused too', () => {
    const a = resumedTwice(null);
    a.lives.get('A')!.leaseRanOut.set('p', 5000);
    assert.deepEqual(checkFanOuts(a).violations, []);
  });
});

describe('chaos audit: work under a cancelled parent', () => {
  it('allows a handler to start seconds after a claim that preceded the cancel, and notes the delay', () => {
    const verdict = checkCancelled(cancelled(run('c', 1, 'A', 5400, 5600, 900)));
    assert.deepEqual(verdict.violations, []);
    assert.match(verdict.note ?? '', /4400 ms after it/);
  });

  it('reports a claim made after the cancel', () => {
    const v = checkCancelled(cancelled(run('c', 1, 'A', 2600, 2700, 2500))).violations;
    assert.equal(v.length, 1);
    assert.match(v[0]!, /was claimed for run 1 1500 ms after the cancel/);
  });

  it('judges a run without a claim instant by its start', () => {
    assert.equal(checkCancelled(cancelled(run('c', 1, 'A', 3100, 3200, null))).violations.length, 1);
    assert.equal(checkCancelled(cancelled(run('c', 1, 'A', 2900, 3000, null))).violations.length, 0);
  });
});
