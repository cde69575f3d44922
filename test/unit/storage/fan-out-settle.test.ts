/**
 * The fan-out settle decision, checked against an in-memory model of a fan-out and its
 * children. The model decides from the children's statuses with its own integer arithmetic (the
 * threshold is a whole percentage, so `need` is exact), cancels the unfinished children when it
 * decides failed, and resumes the parent once; the functions under test see only counters and
 * events, with a harness that feeds each cascaded cancellation back as an event, as a driver does.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decideFanOut } from '../../../src/storage/fan-out-rules.js';
import {
  addChildOutcome,
  childOutcomeOf,
  fanOutDeadlinePassed,
  noCounters,
  settleCountedFanOut,
  settleFanOut,
  settleFanOutCounts,
  type ChildOutcome,
  type FanOutCounters,
  type FanOutEvent,
  type FanOutSettlement,
  type FanOutState,
} from '../../../src/storage/shared/fan-out-settle.js';

type Strategy = FanOutState['strategy'];
type ChildStatus = 'open' | ChildOutcome;
type Command = { kind: 'end'; child: number; outcome: ChildOutcome } | { kind: 'retry'; child: number } | { kind: 'deadline' };

interface Setup {
  strategy: Strategy;
  /** Threshold as a whole percentage (1..100). */
  percent: number;
  total: number;
}

/** The reference: children statuses, the recorded decision, parent resumes. */
class Model {
  readonly children: ChildStatus[];
  status: FanOutState['status'] = 'running';
  resumes = 0;

  constructor(readonly setup: Setup) {
    this.children = Array.from({ length: setup.total }, () => 'open' as const);
  }

  count(s: ChildStatus): number {
    return this.children.filter((c) => c === s).length;
  }

  /** The rule, from the children, in whole numbers: need = ceil(percent × total / 100). */
  rule(): FanOutState['status'] {
    const { strategy, total, percent } = this.setup;
    const s = this.count('succeeded');
    const bad = this.count('failed') + this.count('cancelled');
    if (strategy === 'fail-fast') return bad >= 1 ? 'failed' : s === total ? 'succeeded' : 'running';
    if (strategy === 'collect-all') return s + bad === total ? 'succeeded' : 'running';
    const need = Math.floor((percent * total + 99) / 100);
    if (s >= need) return 'succeeded';
    return bad > total - need ? 'failed' : 'running';
  }

  apply(c: Command): void {
    if (c.kind === 'end') {
      if (this.children[c.child] !== 'open') return;
      this.children[c.child] = c.outcome;
    } else if (c.kind === 'retry') {
      if (this.children[c.child] === 'open' || this.children[c.child] === 'succeeded') return;
      this.children[c.child] = 'open';
      return; // a retry never decides
    } else if (this.status === 'running') {
      this.decide('failed');
      return;
    }
    const rule = this.rule();
    if (this.status === 'running' && rule !== 'running') this.decide(rule);
  }

  decide(status: 'succeeded' | 'failed'): void {
    this.status = status;
    this.resumes++;
    if (status === 'failed') for (let i = 0; i < this.children.length; i++) if (this.children[i] === 'open') this.children[i] = 'cancelled';
  }
}

/** A driver in miniature: children statuses, the counters row, and the cascade. */
class Harness {
  readonly children: ChildStatus[];
  fanOut: FanOutState;
  resumes = 0;

  constructor(setup: Setup) {
    this.children = Array.from({ length: setup.total }, () => 'open' as const);
    this.fanOut = { strategy: setup.strategy, threshold: setup.percent / 100, total: setup.total, succeeded: 0, failed: 0, cancelled: 0, status: 'running' };
  }

  apply(c: Command): void {
    if (c.kind === 'end') {
      if (this.children[c.child] !== 'open') return;
      this.children[c.child] = c.outcome;
      this.settle({ kind: 'child-ended', outcome: c.outcome });
    } else if (c.kind === 'retry') {
      const previous = this.children[c.child];
      if (previous !== 'failed' && previous !== 'cancelled') return;
      this.children[c.child] = 'open';
      this.settle({ kind: 'child-retried', previous });
    } else {
      this.settle({ kind: 'deadline-passed' });
    }
  }

  settle(e: FanOutEvent): void {
    const r = settleFanOut(this.fanOut, e);
    checkShape(r);
    this.fanOut = r.next;
    if (r.resumeParent) this.resumes++;
    if (!r.cancelUnfinishedChildren) return;
    for (let i = 0; i < this.children.length; i++) {
      if (this.children[i] !== 'open') continue;
      this.children[i] = 'cancelled';
      this.settle({ kind: 'child-ended', outcome: 'cancelled' });
    }
  }
}

/** The flags follow the decision: resume exactly on it, cancel exactly on a failed one. */
function checkShape(r: FanOutSettlement): void {
  assert.equal(r.resumeParent, r.decided !== null);
  assert.equal(r.cancelUnfinishedChildren, r.decided === 'failed');
  if (r.decided !== null) assert.equal(r.next.status, r.decided);
}

const setupArb: fc.Arbitrary<Setup> = fc.record({
  strategy: fc.constantFrom<Strategy>('fail-fast', 'collect-all', 'threshold'),
  percent: fc.integer({ min: 1, max: 100 }),
  total: fc.integer({ min: 1, max: 7 }),
});

const commandArb = (total: number): fc.Arbitrary<Command> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('end' as const), child: fc.nat(total - 1), outcome: fc.constantFrom<ChildOutcome>('succeeded', 'failed', 'cancelled') }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('retry' as const), child: fc.nat(total - 1) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'deadline' as const }) },
  );

const scenarioArb = setupArb.chain((setup) => fc.tuple(fc.constant(setup), fc.array(commandArb(setup.total), { maxLength: 30 })));

describe('fan-out settle decision', () => {
  it('matches the in-memory model: counters, status, one parent resume, cascaded cancels', () => {
    fc.assert(
      fc.property(scenarioArb, ([setup, commands]) => {
        const model = new Model(setup);
        const sut = new Harness(setup);
        for (const c of commands) {
          model.apply(c);
          sut.apply(c);
          assert.deepEqual(sut.children, model.children, `children after ${JSON.stringify(c)}`);
          const { succeeded, failed, cancelled, status } = sut.fanOut;
          assert.deepEqual(
            { succeeded, failed, cancelled, status },
            { succeeded: model.count('succeeded'), failed: model.count('failed'), cancelled: model.count('cancelled'), status: model.status },
            `fan-out after ${JSON.stringify(c)}`,
          );
          assert.equal(sut.resumes, model.resumes, 'parent resumes');
          assert.ok(sut.resumes <= 1, 'the parent is resumed at most once');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a batch of outcomes is decided once, on the summed counters, and only while running', () => {
    const countsArb = fc.record({ succeeded: fc.nat(4), failed: fc.nat(4), cancelled: fc.nat(4) });
    fc.assert(
      fc.property(setupArb, countsArb, countsArb, fc.constantFrom<FanOutState['status']>('running', 'succeeded', 'failed'), (setup, before, delta, status) => {
        const f: FanOutState = { strategy: setup.strategy, threshold: setup.percent / 100, total: setup.total, ...before, status };
        const r = settleFanOutCounts(f, delta);
        checkShape(r);
        const sum = { succeeded: before.succeeded + delta.succeeded, failed: before.failed + delta.failed, cancelled: before.cancelled + delta.cancelled };
        assert.deepEqual({ succeeded: r.next.succeeded, failed: r.next.failed, cancelled: r.next.cancelled }, sum);
        const rule = decideFanOut({ ...f, ...sum });
        assert.equal(r.decided, status === 'running' && rule !== 'running' ? rule : null);
        assert.equal(r.next.status, status === 'running' ? rule : status);
        // The same decision when a statement already added the counts.
        assert.deepEqual(settleCountedFanOut({ ...f, ...sum }), r);
      }),
      { numRuns: 2000 },
    );
  });

  it('does not mutate the fan-out it is given', () => {
    const f: FanOutState = { strategy: 'fail-fast', threshold: null, total: 2, succeeded: 0, failed: 0, cancelled: 0, status: 'running' };
    const copy = { ...f };
    const r = settleFanOut(f, { kind: 'child-ended', outcome: 'failed' });
    assert.deepEqual(f, copy);
    assert.deepEqual(r, { next: { ...f, failed: 1, status: 'failed' }, decided: 'failed', resumeParent: true, cancelUnfinishedChildren: true });
  });

  it('a deadline fails only a running fan-out and leaves its counters', () => {
    const running: FanOutState = { strategy: 'collect-all', threshold: null, total: 3, succeeded: 1, failed: 1, cancelled: 0, status: 'running' };
    assert.deepEqual(settleFanOut(running, { kind: 'deadline-passed' }), { next: { ...running, status: 'failed' }, decided: 'failed', resumeParent: true, cancelUnfinishedChildren: true });
    const decided: FanOutState = { ...running, status: 'succeeded' };
    assert.deepEqual(settleFanOut(decided, { kind: 'deadline-passed' }), { next: decided, decided: null, resumeParent: false, cancelUnfinishedChildren: false });
  });

  it('a deadline applies from its instant on, to a running fan-out with a deadline only', () => {
    assert.equal(fanOutDeadlinePassed({ status: 'running', deadlineAt: 100 }, 99), false);
    assert.equal(fanOutDeadlinePassed({ status: 'running', deadlineAt: 100 }, 100), true);
    assert.equal(fanOutDeadlinePassed({ status: 'running', deadlineAt: null }, 1e15), false);
    assert.equal(fanOutDeadlinePassed({ status: 'succeeded', deadlineAt: 100 }, 200), false);
  });

  it('a threshold of 0.7 over 10 children needs 7 (float noise tolerated)', () => {
    const f: FanOutState = { strategy: 'threshold', threshold: 0.7, total: 10, succeeded: 6, failed: 0, cancelled: 0, status: 'running' };
    assert.equal(settleFanOut(f, { kind: 'child-ended', outcome: 'succeeded' }).decided, 'succeeded');
  });

  it('addChildOutcome batches outcomes per fan-out; childOutcomeOf maps job statuses', () => {
    const deltas = new Map<string, FanOutCounters>();
    for (const s of ['completed', 'failed', 'cancelled', 'completed'] as const) addChildOutcome(deltas, 'f1', childOutcomeOf(s));
    addChildOutcome(deltas, 'f2', 'cancelled');
    assert.deepEqual([...deltas], [
      ['f1', { succeeded: 2, failed: 1, cancelled: 1 }],
      ['f2', { ...noCounters(), cancelled: 1 }],
    ]);
  });
});
