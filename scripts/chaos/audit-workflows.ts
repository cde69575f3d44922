/**
 * The invariants of a chaos run, part 2: workflows. Checkpointed steps, fan-out accounting and
 * resumption, signals, schedule slots.
 */
import { isDeepStrictEqual } from 'node:util';
import { leaseRanOut, outcomeInFlightAtKill, parse, type AuditInput, type FanOutRec } from './audit-data.js';
import type { Verdict } from './audit.js';
import type { EffectRow } from './effects.js';
import { GATE_ERROR } from './handlers-extra.js';
import type { ResumeInfo } from './handlers.js';
import { ALT, ALT_MAX_GAP_MS, TICK } from './schedules.js';

/**
 * (Every check here covers pruned workflows too, on the checkpoints, fan-outs and signals pruned
 * with them: see audit-deletions.ts.)
 *
 * A checkpointed step never runs again once its checkpoint committed. Each step execution
 * records a nonce and the run of its parent; the checkpoint stores the nonce of the execution
 * it holds. Any execution of that step by a later run of the parent is a re-execution after
 * the commit. Completed workflows return exactly their checkpointed values.
 */
export function checkSteps(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  let beforeCommit = 0;
  const execs = new Map<string, EffectRow[]>();
  for (const e of a.effects) if (e.kind === 'step') execs.set(`${e.jobId}#${e.step}`, [...(execs.get(`${e.jobId}#${e.step}`) ?? []), e]);
  const nonces = new Map<string, string[]>();
  for (const s of a.steps) {
    if (s.stepName !== 'chaos.step') continue;
    checked++;
    const out = parse(s.output) as { i?: number; nonce?: string } | undefined;
    const list = execs.get(`${s.jobId}#${s.stepIndex}`) ?? [];
    const mine = list.find((e) => e.info === out?.nonce);
    if (s.status !== 'completed' || !out?.nonce || out.i !== s.stepIndex) {
      v.push(`job ${s.jobId} step ${s.stepIndex}: unexpected checkpoint ${s.status} ${s.output ?? ''}`);
      continue;
    }
    if (!mine) {
      v.push(`job ${s.jobId} step ${s.stepIndex}: checkpoint nonce ${out.nonce} matches no recorded execution`);
      continue;
    }
    for (const e of list) {
      if (e === mine) continue;
      if (e.runCount > mine.runCount) v.push(`job ${s.jobId} step ${s.stepIndex} ran again in run ${e.runCount} after run ${mine.runCount} checkpointed it`);
      else if (e.runCount === mine.runCount) v.push(`job ${s.jobId} step ${s.stepIndex} ran twice in run ${e.runCount}`);
      else beforeCommit++;
    }
    const arr = nonces.get(s.jobId) ?? [];
    arr[s.stepIndex] = out.nonce;
    nonces.set(s.jobId, arr);
  }
  // Runs that replayed checkpoints: a later run of a workflow whose first executed step is not step 0.
  let resumedMidway = 0;
  for (const [id, plan] of a.plans) {
    if (plan.kind !== 'wf') continue;
    const runs = a.runs.get(id) ?? [];
    for (const r of runs.slice(1)) {
      const mine = a.effects.filter((e) => e.kind === 'step' && e.jobId === id && e.runCount === r.runCount);
      if (mine.length > 0 && Math.min(...mine.map((e) => e.step ?? 0)) > 0) resumedMidway++;
    }
  }
  for (const [id, plan] of a.plans) {
    if (plan.kind !== 'wf' || a.all.get(id)?.status !== 'completed') continue;
    const result = parse(a.all.get(id)!.result ?? null) as { nonces?: string[] } | undefined;
    const want = nonces.get(id) ?? [];
    if (want.length !== plan.steps || !isDeepStrictEqual(result?.nonces, want)) v.push(`workflow ${id} returned ${JSON.stringify(result?.nonces)} but its checkpoints hold ${JSON.stringify(want)}`);
  }
  const note = `${resumedMidway} workflow runs resumed past checkpointed steps after a kill; ${beforeCommit} step executions finished but lost before their checkpoint (allowed)`;
  return { name: 'no checkpointed step re-run after commit', checked, violations: v, note };
}

/** The decision rule, written independently of the engine's. */
function rule(f: FanOutRec): string {
  const bad = f.failed + f.cancelled;
  if (f.strategy === 'fail-fast') return bad >= 1 ? 'failed' : f.succeeded >= f.total ? 'succeeded' : 'running';
  if (f.strategy === 'collect-all') return f.succeeded + bad >= f.total ? 'succeeded' : 'running';
  const need = Math.max(0, Math.ceil((f.threshold ?? 1) * f.total - 1e-9));
  return f.succeeded >= need ? 'succeeded' : bad > f.total - need ? 'failed' : 'running';
}

/**
 * Each fan-out's counters equal its children's outcomes (a child the operator retried counts
 * once, with its final outcome), its status is the rule applied to them, and its parent resumed
 * exactly once after the decision: every `resume` happened after `decided_at`, and at most one
 * post-decision run ended for good — returned (or failed at its gate) without its process being
 * killed before its outcome was reported stored. A kill before the completion committed
 * legitimately repeats the resume, and so does a run that threw and was retried: the retry
 * replays the decided fan-out. A collect-all fan-out is decided only
 * when every child has ended: its parent never sees a child unfinished that the operator did not
 * retry. A parent the operator retried is judged on the resumes after its retry (its earlier
 * fan-out is gone with its children).
 */
export function checkFanOuts(a: AuditInput): Verdict {
  const v: string[] = [];
  const resumes = new Map<string, EffectRow[]>();
  for (const e of a.effects) if (e.kind === 'resume') resumes.set(e.jobId, [...(resumes.get(e.jobId) ?? []), e]);
  let repeated = 0;
  let retriedKids = 0;
  for (const f of a.fanOuts) {
    // A fan-out still in the database counts the children still there; a pruned one, those pruned with it.
    const kids = (f.pruned ? (a.allChildren.get(f.parentId) ?? []).filter((j) => a.pruned.has(j.id)) : (a.children.get(f.parentId) ?? [])).filter((j) => j.fanOutId === f.id);
    retriedKids += kids.filter((k) => a.ops.retries.get(k.id)?.appliedAt != null).length;
    const count = (s: string): number => kids.filter((j) => j.status === s).length;
    const real = { succeeded: count('completed'), failed: count('failed'), cancelled: count('cancelled') };
    if (kids.length !== f.total) v.push(`fan-out ${f.id}: total ${f.total} but ${kids.length} children`);
    if (f.succeeded !== real.succeeded || f.failed !== real.failed || f.cancelled !== real.cancelled) {
      v.push(`fan-out ${f.id}: counters ${f.succeeded}/${f.failed}/${f.cancelled} but children ${real.succeeded}/${real.failed}/${real.cancelled}`);
    }
    if (rule(f) !== f.status) v.push(`fan-out ${f.id} (${f.strategy}) is ${f.status} but its counters say ${rule(f)}`);
    if (f.status !== 'running' && f.decidedAt === null) v.push(`fan-out ${f.id} is ${f.status} without decided_at`);
    const parent = a.all.get(f.parentId);
    // A parent the operator retried lost its earlier fan-out: its resumes before the retry are of that one.
    const since = a.ops.retries.get(f.parentId)?.requestedAt ?? -Infinity;
    const seen = (resumes.get(f.parentId) ?? []).filter((e) => e.startedAt >= since);
    for (const e of seen) {
      if (f.decidedAt === null || e.startedAt < f.decidedAt - 5) v.push(`parent ${f.parentId} resumed at ${e.startedAt} before fan-out ${f.id} was decided (${String(f.decidedAt)})`);
      if (f.strategy !== 'collect-all') continue;
      for (const index of (parse(e.info) as ResumeInfo | undefined)?.unfinished ?? []) {
        const kid = kids.find((k) => k.fanOutIndex === index);
        const retry = kid ? a.ops.retries.get(kid.id) : undefined;
        if (retry?.appliedAt != null && retry.appliedAt <= e.startedAt) continue;
        v.push(`collect-all fan-out ${f.id} was decided while child ${index} (${kid?.id ?? '?'}, now ${kid?.status ?? '?'}) was unfinished: parent ${f.parentId} resumed at ${e.startedAt}`);
      }
    }
    const runs = a.runs.get(f.parentId) ?? [];
    const clean = seen.filter((e) => {
      const at = runs.findIndex((r) => r.runCount === e.runCount);
      const run = runs[at];
      if (run === undefined) return false;
      const life = a.lives.get(run.worker);
      const killedSoon = life?.killedAt != null && life.killedAt - run.end < 2000;
      // A run that threw anything but the gate's final error was retried by the engine: the retry replays the decided fan-out.
      const final = run.info === 'returned' || run.info?.includes(GATE_ERROR) === true;
      const next = runs[at + 1];
      const ranOut = next !== undefined && leaseRanOut(a, run, next, runs[at + 2]);
      return run.state === 'ended' && final && !run.interrupted && !killedSoon && !ranOut && !outcomeInFlightAtKill(a, run, next);
    });
    if (clean.length > 1) v.push(`parent ${f.parentId} resumed ${clean.length} times after fan-out ${f.id} was decided`);
    if (seen.length > 1) repeated++;
    if (parent?.status === 'completed') {
      if (seen.length === 0) v.push(`parent ${f.parentId} completed without resuming after fan-out ${f.id}`);
      const out = parse(parent.result) as { status?: string } | undefined;
      if (out?.status !== f.status) v.push(`parent ${f.parentId} saw its fan-out ${String(out?.status)} but it is ${f.status}`);
    }
  }
  const note = `${repeated} resumes repeated after a kill or a lease run out (allowed); ${retriedKids} children retried by the operator`;
  return { name: 'fan-outs: counts match children, parent resumed once', checked: a.fanOuts.length, violations: v, note };
}

/** Each signal was consumed exactly once, in the order sent, by the job it was sent to. */
export function checkSignals(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  const consumedBy = new Map<string, string[]>();
  for (const s of a.steps) {
    if (s.stepName !== 'signal:go' || s.status !== 'completed') continue;
    const p = parse(s.output) as { sig?: string } | undefined;
    if (p?.sig) consumedBy.set(p.sig, [...(consumedBy.get(p.sig) ?? []), s.jobId]);
  }
  for (const [id, plan] of a.plans) {
    if (plan.kind !== 'signal') continue;
    const j = a.all.get(id);
    if (!j) continue;
    checked += plan.sent.length;
    if (plan.sent.length !== plan.count) v.push(`signal job ${id}: only ${plan.sent.length} of ${plan.count} signals were sent`);
    const got = (parse(j.result) as { got?: unknown[] } | undefined)?.got;
    if (j.status === 'completed' && !isDeepStrictEqual(got, plan.sent)) v.push(`signal job ${id} received ${JSON.stringify(got)}, sent ${JSON.stringify(plan.sent)}`);
    const rows = a.signals.filter((s) => s.jobId === id);
    if (rows.length !== plan.sent.length) v.push(`signal job ${id}: ${rows.length} signal rows for ${plan.sent.length} sent`);
    for (const r of rows) if (r.consumedAt === null) v.push(`signal job ${id}: signal ${r.payload ?? ''} never consumed`);
    for (const p of plan.sent) {
      const by = consumedBy.get(p.sig) ?? [];
      if (by.length !== 1 || by[0] !== id) v.push(`signal ${p.sig} for job ${id} consumed by [${by.join(', ')}]`);
    }
  }
  return { name: 'each signal consumed once, in order', checked, violations: v };
}

/** The slot instants fired by one schedule (from each fired job's meta, pruned jobs included), oldest first. */
function firedSlots(a: AuditInput, name: string, v: string[]): number[] {
  const slots: number[] = [];
  for (const j of a.all.values()) {
    if (j.type !== name) continue;
    const meta = parse(j.meta) as { schedule?: string; scheduledFor?: string } | undefined;
    const t = Date.parse(meta?.scheduledFor ?? '');
    if (!Number.isFinite(t) || meta?.schedule !== name) v.push(`${name} job ${j.id} has no slot of its schedule in its meta`);
    else slots.push(t);
  }
  return slots.sort((x, y) => x - y);
}

/**
 * No schedule slot fired twice. `chaos.tick` (one spec, however often re-defined): every slot
 * between the first and the last fired, none skipped. `chaos.alt` (its spec changes): every
 * slot on the 1000 ms grid and no stall longer than {@link ALT_MAX_GAP_MS}.
 */
export function checkSchedule(a: AuditInput): Verdict {
  const v: string[] = [];
  const tick = firedSlots(a, TICK.name, v);
  for (let i = 1; i < tick.length; i++) {
    const gap = tick[i]! - tick[i - 1]!;
    if (gap === 0) v.push(`${TICK.name} slot ${new Date(tick[i]!).toISOString()} fired twice`);
    else if (gap !== TICK.periodMs) v.push(`${TICK.name} slots ${new Date(tick[i - 1]!).toISOString()} → ${new Date(tick[i]!).toISOString()}: ${gap} ms apart (a slot was skipped)`);
  }
  if (tick.length === 0) v.push(`${TICK.name} never fired`);
  const alt = firedSlots(a, ALT.name, v);
  for (let i = 0; i < alt.length; i++) {
    if (alt[i]! % ALT.periodsMs[0] !== 0) v.push(`${ALT.name} slot ${new Date(alt[i]!).toISOString()} is off the grid of its specs`);
    if (i === 0) continue;
    const gap = alt[i]! - alt[i - 1]!;
    if (gap === 0) v.push(`${ALT.name} slot ${new Date(alt[i]!).toISOString()} fired twice`);
    else if (gap > ALT_MAX_GAP_MS) v.push(`${ALT.name} slots ${new Date(alt[i - 1]!).toISOString()} → ${new Date(alt[i]!).toISOString()}: ${gap} ms apart (stalled)`);
  }
  if (alt.length === 0) v.push(`${ALT.name} never fired`);
  const defs = a.ops.scheduleDefs;
  const note = `${TICK.name} ${tick.length} slots, ${ALT.name} ${alt.length} slots; the operator re-defined them ${defs.length} times (${defs.filter((d) => d.name === ALT.name).length} of ${ALT.name})`;
  return { name: 'schedule slots fired once (none skipped)', checked: tick.length + alt.length, violations: v, note };
}
