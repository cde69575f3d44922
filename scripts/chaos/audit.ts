/**
 * The invariants of a chaos run, part 1: jobs and runs. Each check returns how many things it
 * looked at and a description of every violation. (Workflow invariants: audit-workflows.ts.)
 */
import { isDeepStrictEqual } from 'node:util';
import { descendantsOf, leaseRanOut, outcomeInFlightAtKill, parse, type AuditInput, type Run } from './audit-data.js';

/** One invariant's verdict. */
export interface Verdict {
  name: string;
  checked: number;
  violations: string[];
  /** Extra figures worth printing (not violations). */
  note?: string;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** Effects a handler run records (the others belong to a worker or to the operator). */
const RUN_EFFECTS = new Set(['run', 'step', 'resume', 'woke', 'tick', 'gate']);
/** Plan kinds whose outcomes depend on the operator or on odd inputs (checked in audit-operator.ts). */
const OPERATOR_KINDS = new Set(['gate', 'gatefan', 'odd', 'big']);

/**
 * Every job the orchestrator enqueued exists or was pruned, and every job in the database is
 * terminal. (Pruned jobs were terminal when pruned: checked in audit-prune.ts.)
 */
export function checkTerminal(a: AuditInput): Verdict {
  const v: string[] = [];
  for (const id of a.plans.keys()) {
    if (a.all.has(id)) continue;
    const deleted = a.deletions.filter((d) => d.job.id === id).length;
    v.push(`job ${id} was enqueued but is missing (lost${deleted > 0 ? `; deleted ${deleted} time(s), never by a prune` : ''})`);
  }
  for (const j of a.jobs.values()) if (!TERMINAL.has(j.status)) v.push(`job ${j.id} (${j.type}) is stuck in ${j.status}`);
  return { name: 'every job terminal (none lost, none stuck)', checked: a.all.size, violations: v, note: `${a.jobs.size} jobs in sdj_jobs, ${a.all.size - a.jobs.size} pruned` };
}

/** Every root job ended as planned; plain results round-trip; children match their plan (pruned jobs as archived). */
export function checkOutcomes(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  for (const [id, plan] of a.plans) {
    const j = a.all.get(id);
    if (!j || !TERMINAL.has(j.status) || OPERATOR_KINDS.has(plan.kind)) continue; // reported by checkTerminal / audit-operator.ts
    checked++;
    const want = plan.kind === 'fatal' ? 'failed' : plan.kind === 'fanout' && plan.cancel.appliedAt !== null ? 'cancelled' : 'completed';
    if (j.status !== want) {
      v.push(`${plan.kind} job ${id} ended ${j.status} (expected ${want}): ${j.lastError ?? ''}`);
      continue;
    }
    switch (plan.kind) {
      case 'plain':
        if (!isDeepStrictEqual(parse(j.result), plan.args)) v.push(`plain job ${id}: result differs from its args`);
        if (!isDeepStrictEqual(parse(j.args), plan.args)) v.push(`plain job ${id}: stored args differ from the enqueued ones`);
        break;
      case 'flaky': {
        const r = parse(j.result) as { attempt?: number } | undefined;
        if (!r || (r.attempt ?? 0) <= plan.failTimes) v.push(`flaky job ${id} completed on attempt ${String(r?.attempt)} though it fails ${plan.failTimes} times`);
        break;
      }
      case 'fatal':
        if (!(j.lastError ?? '').includes('fatal by design')) v.push(`fatal job ${id} failed with "${j.lastError}"`);
        break;
      case 'flow': {
        const r = parse(j.result) as { n?: number; attempt?: number } | undefined;
        if (r?.n !== plan.args.n) v.push(`${plan.type} job ${id}: result ${j.result ?? 'null'} does not echo n ${plan.args.n}`);
        else if (plan.args.failFirst && (r.attempt ?? 0) < 2) v.push(`${plan.type} job ${id} completed on attempt ${String(r.attempt)} though its first attempt fails`);
        break;
      }
      default:
        break;
    }
  }
  for (const j of a.all.values()) {
    if (j.type !== 'chaos.child') continue;
    checked++;
    const plan = parse(j.args) as { fail?: boolean } | undefined;
    if (j.status === 'completed' && plan?.fail) v.push(`child ${j.id} completed though it always fails`);
    if (j.status === 'failed' && !plan?.fail) v.push(`child ${j.id} failed though it should succeed: ${j.lastError ?? ''}`);
    if (j.status === 'failed' && plan?.fail && !(j.lastError ?? '').includes('child fails by design')) v.push(`child ${j.id} failed with "${j.lastError}"`);
  }
  for (const j of a.all.values()) {
    if ((j.type === 'chaos.tick' || j.type === 'chaos.alt') && j.status !== 'completed') v.push(`tick job ${j.id} (${j.type}) ended ${j.status}: ${j.lastError ?? ''}`);
  }
  return { name: 'outcomes as planned (args/results round-trip)', checked, violations: v };
}

/**
 * The handler's first read saw its job cancelled, and the job was cancelled (its final state, on
 * the database clock) after this run's claim: the operator cancelled a running job between the
 * claim and that read, which the contract allows (the run is told through its abort signal).
 */
function cancelledAfterClaim(a: AuditInput, r: Run): boolean {
  if (r.info !== 'status=cancelled' || r.claimedAt === null) return false;
  const j = a.all.get(r.jobId);
  return j?.status === 'cancelled' && j.completedAt !== null && j.completedAt >= r.claimedAt;
}

/**
 * No job was executed by two live owners at overlapping times: each handler invocation owned
 * its job from its start to its recorded end (or the death of its process), the next run of
 * the job starts after that, every handler began on a row locked by its own worker, and every
 * side effect of a run lies inside its interval.
 */
export function checkSingleOwner(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  for (const [jobId, runs] of a.runs) {
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i]!;
      checked++;
      if ((r.info?.startsWith('not-owner') || r.info?.startsWith('status=')) && !cancelledAfterClaim(a, r)) {
        v.push(`job ${jobId} run ${r.runCount} on ${r.worker} began on a row it did not own (${r.info})`);
      }
      if (r.end === Infinity) v.push(`job ${jobId} run ${r.runCount} on ${r.worker} never ended (process still alive?)`);
      const prev = runs[i - 1];
      if (!prev) continue;
      if (prev.runCount === r.runCount) v.push(`job ${jobId}: run ${r.runCount} invoked twice (${prev.worker}, ${r.worker})`);
      else if (r.start < prev.end) {
        v.push(`job ${jobId}: run ${r.runCount} on ${r.worker} started at ${r.start}, ${prev.end - r.start} ms before run ${prev.runCount} on ${prev.worker} ended (${prev.state}${prev.interrupted ? ', killed' : ''})`);
      }
    }
  }
  const byRun = new Map<string, Run>();
  for (const runs of a.runs.values()) for (const r of runs) byRun.set(`${r.jobId}#${r.runCount}`, r);
  for (const e of a.effects) {
    if (e.kind === 'run' || !RUN_EFFECTS.has(e.kind)) continue;
    checked++;
    const r = byRun.get(`${e.jobId}#${e.runCount}`);
    if (!r) {
      v.push(`${e.kind} effect of job ${e.jobId} run ${e.runCount} has no recorded run`);
      continue;
    }
    const end = e.endedAt ?? e.startedAt;
    if (e.startedAt < r.start || end > r.end) v.push(`${e.kind} effect of job ${e.jobId} run ${e.runCount} at ${e.startedAt}..${end} lies outside its run ${r.start}..${r.end}`);
  }
  return { name: 'single live owner (no overlapping runs)', checked, violations: v };
}

/**
 * At-least-once: every run cut short by a SIGKILL was taken back and run again — unless its
 * job was cancelled meanwhile, or failed because the lease expired with no retries left, or is
 * gone (a fan-out child dropped because the operator retried its parent).
 */
export function checkKilledRunsRecovered(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  for (const [jobId, runs] of a.runs) {
    const last = runs[runs.length - 1];
    for (const r of runs) if (r.interrupted) checked++;
    if (!last?.interrupted) continue;
    const j = a.all.get(jobId);
    if (!j && !a.plans.has(jobId)) continue;
    if (j?.status === 'cancelled') continue;
    if (j?.status === 'failed' && /lease expired/.test(j.lastError ?? '')) continue;
    v.push(`job ${jobId} (${j?.type}) is ${j?.status} but its last run ${last.runCount} was killed on ${last.worker} and never re-run`);
  }
  return { name: 'killed runs re-run (at-least-once)', checked, violations: v };
}

/**
 * No outcome lost: a handler that returned was the last run of its job — unless its process was
 * killed after it returned and before the next run began without having reported the outcome
 * committed (the write was still in flight: a flush of large results can take seconds), the
 * operator retried the job afterwards, or its worker logged the run's lease as run out
 * (heartbeats did not get through in time: at-least-once, the engine gives the run up before
 * the job can run elsewhere). A later run otherwise means the outcome write was dropped (or
 * lost after it committed) and the job waited a lease to run again. The note gives the slowest
 * heartbeat call of the fleet, so a run whose leases ran out shows why.
 */
export function checkOutcomesKept(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  let excused = 0;
  let ranOut = 0;
  for (const [jobId, runs] of a.runs) {
    for (let i = 0; i < runs.length - 1; i++) {
      const r = runs[i]!;
      if (r.state !== 'ended' || r.info !== 'returned') continue;
      checked++;
      const next = runs[i + 1]!;
      const inFlightAtKill = outcomeInFlightAtKill(a, r, next);
      const retried = (a.ops.retries.get(jobId)?.requestedAt ?? -Infinity) > r.end;
      if (r.interrupted || inFlightAtKill || retried) {
        excused++;
        continue;
      }
      if (leaseRanOut(a, r, next, runs[i + 2])) {
        ranOut++;
        continue;
      }
      v.push(`job ${jobId} (${a.all.get(jobId)?.type ?? '?'}): run ${r.runCount} on ${r.worker} returned, yet run ${next.runCount} on ${next.worker} started ${next.start - r.end} ms later (its outcome was lost)`);
    }
  }
  let slowest: { ms: number; name: string } | null = null;
  for (const life of a.lives.values()) if (life.slowestHeartbeat && life.slowestHeartbeat.ms > (slowest?.ms ?? 0)) slowest = { ms: life.slowestHeartbeat.ms, name: life.name };
  const beats = slowest ? `slowest heartbeat call ${slowest.ms} ms on ${slowest.name}` : 'no heartbeat call took 500 ms or more';
  return {
    name: 'no outcome lost (a returned run is the last)',
    checked,
    violations: v,
    note: `${excused} returned runs re-run after a kill with their outcome in flight, or an operator retry (allowed); ${ranOut} whose worker logged their lease as run out before the next run (allowed; ${beats})`,
  };
}

/** Sleeping jobs slept their whole sleep: everything after it ran at or after the wake time. */
export function checkSleeps(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  const wakeAt = new Map<string, number>();
  for (const s of a.steps) if (s.stepName === 'sleep' && s.stepIndex === 0) wakeAt.set(s.jobId, Number(parse(s.output)));
  const woke = new Map<string, number[]>();
  for (const e of a.effects) if (e.kind === 'woke') woke.set(e.jobId, [...(woke.get(e.jobId) ?? []), e.startedAt]);
  for (const [id, plan] of a.plans) {
    if (plan.kind !== 'sleep' || a.all.get(id)?.status !== 'completed') continue;
    checked++;
    const at = wakeAt.get(id);
    const times = woke.get(id) ?? [];
    if (at === undefined || !Number.isFinite(at)) v.push(`sleep job ${id} completed without a sleep checkpoint`);
    else if (times.length === 0) v.push(`sleep job ${id} completed without running past its sleep`);
    else if (Math.min(...times) < at - 5) v.push(`sleep job ${id} woke ${at - Math.min(...times)} ms before its wake time`);
  }
  return { name: 'sleeps honoured (no early wake)', checked, violations: v };
}

/**
 * Cancelled fan-out parents: the whole subtree is terminal, nothing in it finished after the
 * cancel, and nothing in it was claimed after the cancel (both on the database clock; 1 s slack:
 * a claim that locked a child first makes the cancel's transaction, stamped at its start, wait
 * for it). A handler may begin well after a claim that preceded the cancel — on a loaded machine
 * its process can take seconds to get to it — and is then stopped by its abort signal or has
 * its outcome refused; the note reports the longest such delay. Runs without a recorded claim
 * instant are judged by their start (2 s slack).
 */
export function checkCancelled(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  let lateStart = 0;
  for (const [id, plan] of a.plans) {
    if (plan.kind !== 'fanout' || plan.cancel.appliedAt === null) continue;
    const root = a.all.get(id);
    if (!root) continue;
    checked++;
    if (root.status !== 'cancelled' || root.completedAt === null) {
      v.push(`cancelled parent ${id} is ${root.status}`);
      continue;
    }
    const at = root.completedAt;
    for (const d of [root, ...descendantsOf(a, id)]) {
      if (d !== root) checked++;
      if (!TERMINAL.has(d.status)) v.push(`job ${d.id} under cancelled parent ${id} is ${d.status}`);
      else if (d.completedAt !== null && d.completedAt > at) v.push(`job ${d.id} under cancelled parent ${id} ended ${d.status} ${d.completedAt - at} ms after the cancel`);
      for (const r of a.runs.get(d.id) ?? []) {
        if (r.claimedAt !== null) {
          if (r.claimedAt > at + 1000) v.push(`job ${d.id} under cancelled parent ${id} was claimed for run ${r.runCount} ${r.claimedAt - at} ms after the cancel`);
          else if (r.start > at) lateStart = Math.max(lateStart, r.start - at);
        } else if (r.start > at + 2000) v.push(`job ${d.id} under cancelled parent ${id} started run ${r.runCount} ${r.start - at} ms after the cancel`);
      }
    }
  }
  const note = lateStart > 0 ? `the latest handler start of a claim made before the cancel: ${lateStart} ms after it` : undefined;
  return { name: 'cancelled subtrees fully cancelled', checked, violations: v, ...(note ? { note } : {}) };
}

/** No worker process died without being killed or stopped. */
export function checkWorkers(a: AuditInput): Verdict {
  const v: string[] = [];
  for (const l of a.lives.values()) if (l.crashed) v.push(`worker ${l.name} (pid ${l.pid}) exited on its own: ${String(l.exit)}`);
  return { name: 'no worker crashed', checked: a.lives.size, violations: v };
}
