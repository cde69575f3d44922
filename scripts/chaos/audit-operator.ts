/**
 * The invariants of a chaos run, part 3: operator actions and odd inputs.
 * - Jobs the operator retried end as planned (gated jobs pass, `noRetry` ones fail again) after
 *   a run that started after the retry; gated jobs never retried stay failed.
 * - Paused jobs are not claimed while paused, and run once resumed; paused queues are not
 *   claimed from while paused.
 * - Nothing of a stopped worker runs after its `stop()` resolved: no handler ends later, no
 *   storage call, no log line, no LISTEN left open, `start()` settles.
 * - Error texts are stored and bounded: every failed job has a readable `last_error` (no NUL,
 *   no lone surrogate, at most {@link MAX_ERROR_CHARS}), failed checkpoints too; odd errors
 *   never sink other outcomes (each odd job ends as planned).
 * - Results close to the payload cap, finishing together, are all stored byte for byte.
 */
import { isDeepStrictEqual } from 'node:util';
import { parse, type AuditInput, type JobRec, type Run } from './audit-data.js';
import type { Verdict } from './audit.js';
import type { ChaosDb } from './backend.js';
import { bigResult, GATE_ERROR, ODD_MARK } from './handlers-extra.js';
import { LONE_SURROGATES } from './handlers.js';
import { PAYLOAD_CAP } from './load-extra.js';
import { deletedResult } from './prune-archive.js';

/** The longest stored error text the audit accepts as bounded. */
export const MAX_ERROR_CHARS = 64 * 1024;
/** A claim this long after a pause took effect is not one that was already in flight. */
const CLAIM_SLACK_MS = 250;

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

/** Operator retries: each applied one re-ran the job to its planned end; gated jobs end as their retry decides. */
export function checkOperatorRetries(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  const gated: JobRec[] = [];
  for (const [id, plan] of a.plans) if (plan.kind === 'gate' || plan.kind === 'gatefan') gated.push(a.all.get(id) ?? ({ id, type: `chaos.${plan.kind}` } as JobRec));
  for (const j of a.all.values()) if (j.type === 'chaos.gate' && j.parentId !== null) gated.push(j);
  for (const j of gated) {
    if (!TERMINAL.has(j.status)) continue; // reported by checkTerminal
    checked++;
    const retried = a.ops.retries.get(j.id)?.appliedAt != null;
    const want = retried ? 'completed' : 'failed';
    if (j.status !== want) v.push(`${j.type} ${j.id} ended ${j.status}, expected ${want} (${retried ? 'retried' : 'not retried'} by the operator): ${j.lastError ?? ''}`);
    else if (want === 'failed' && !(j.lastError ?? '').includes(GATE_ERROR)) v.push(`${j.type} ${j.id} failed with "${j.lastError ?? ''}"`);
    else if (want === 'completed') {
      const out = parse(j.result) as { gate?: string; status?: string } | undefined;
      if (j.type === 'chaos.gate' ? out?.gate !== 'passed' : out?.status !== 'succeeded') v.push(`${j.type} ${j.id} completed with ${j.result ?? 'no result'}`);
    }
  }
  let refused = 0;
  let gaveUp = 0;
  for (const r of a.ops.retries.values()) {
    if (r.result === 'refused') {
      refused++;
      v.push(`retryJob(${r.jobId}) of a job seen failed was refused: ${r.note ?? ''}`);
    }
    if (r.result === 'gave-up') gaveUp++;
    if (r.appliedAt === null || r.requestedAt === null) continue;
    checked++;
    const j = a.all.get(r.jobId);
    if (!j) {
      v.push(`job ${r.jobId} retried by the operator is gone`);
      continue;
    }
    const after = (a.runs.get(r.jobId) ?? []).filter((run) => run.start >= r.requestedAt!);
    if (TERMINAL.has(j.status) && j.status !== 'cancelled' && after.length === 0) v.push(`${j.type} ${r.jobId} retried by the operator at ${r.requestedAt} is ${j.status} without running again`);
    if (r.what === 'fatal' && (j.status !== 'failed' || !(j.lastError ?? '').includes('fatal by design'))) v.push(`fatal job ${r.jobId} retried by the operator ended ${j.status}: ${j.lastError ?? ''}`);
  }
  const applied = [...a.ops.retries.values()].filter((r) => r.appliedAt !== null).length;
  const note = `${applied} retries applied (${[...a.ops.retries.values()].filter((r) => r.appliedAt !== null && r.what === 'gate-child').length} of fan-out children), ${refused} refused, ${gaveUp} not made (the job did not fail in time)`;
  return { name: 'operator retries end as planned', checked, violations: v, note };
}

/** Paused jobs are not claimed while paused and run after their resume; paused queues are not claimed from. */
export function checkPauses(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  let refused = 0;
  const claimed = (r: Run): number => r.claimedAt ?? r.start;
  for (const p of a.ops.jobPauses.values()) {
    if (p.refused !== null) {
      refused++;
      if (/then pending/.test(p.refused)) v.push(`pauseJob(${p.jobId}) refused while the job was pending: ${p.refused}`);
      continue;
    }
    if (p.pausedAt === null) continue;
    checked++;
    const j = a.all.get(p.jobId);
    const runs = a.runs.get(p.jobId) ?? [];
    const until = p.resumeRequestedAt ?? Infinity;
    if (p.resumedAt === null) v.push(`paused job ${p.jobId} was never resumed`);
    for (const r of runs) if (claimed(r) > p.pausedAt + CLAIM_SLACK_MS && claimed(r) < until) v.push(`paused job ${p.jobId} was claimed (run ${r.runCount}) ${claimed(r) - p.pausedAt} ms after its pause took effect`);
    if (j?.status !== 'completed') v.push(`paused and resumed job ${p.jobId} ended ${String(j?.status)}: ${j?.lastError ?? ''}`);
    else if (!runs.some((r) => claimed(r) >= until - 5)) v.push(`paused job ${p.jobId} completed without a run after its resume`);
  }
  for (const q of a.ops.queuePauses) {
    checked++;
    const from = q.pausedAt + CLAIM_SLACK_MS;
    const until = q.resumeRequestedAt ?? Infinity;
    if (q.resumedAt === null) v.push(`queue ${q.queue} paused at ${q.pausedAt} was never resumed`);
    for (const [jobId, runs] of a.runs) {
      if (a.all.get(jobId)?.queue !== q.queue) continue;
      for (const r of runs) {
        if (r.claimedAt !== null && r.claimedAt > from && r.claimedAt < until) v.push(`job ${jobId} was claimed from paused queue ${q.queue} (run ${r.runCount}) ${r.claimedAt - q.pausedAt} ms after the pause took effect`);
      }
    }
  }
  const note = `${a.ops.jobPauses.size - refused} job pauses, ${refused} refused (the job was already claimed); ${a.ops.queuePauses.length} queue pauses`;
  return { name: 'pauses honoured, resumed jobs run', checked, violations: v, note };
}

/** Nothing of a stopped worker runs after its stop() resolved. */
export function checkStops(a: AuditInput): Verdict {
  const v: string[] = [];
  const stops = new Map<string, { at: number; info: string }>();
  for (const e of a.effects) if (e.kind === 'stopped') stops.set(e.jobId, { at: e.startedAt, info: e.info ?? '' });
  for (const e of a.effects) if (e.kind === 'zombie') v.push(`worker ${e.jobId} (${e.worker}, ${stops.get(e.jobId)?.info ?? 'no stop mark'}): ${e.info ?? ''}`);
  let runs = 0;
  for (const list of a.runs.values()) {
    for (const r of list) {
      const stop = r.owner === null ? undefined : stops.get(r.owner);
      if (!stop) continue;
      runs++;
      if (r.end > stop.at) v.push(`job ${r.jobId} run ${r.runCount} of worker ${r.owner} (${stop.info}) ${r.end === Infinity ? 'never ended' : `ended ${r.end - stop.at} ms`} after its stop() resolved`);
    }
  }
  const boot = [...stops.values()].filter((s) => s.info.startsWith('boot:')).length;
  const note = `${stops.size} stops (${boot} during start), ${runs} runs of stopped workers`;
  return { name: 'nothing runs after stop() resolved', checked: stops.size, violations: v, note };
}

/** Whether stored error text is readable and bounded; the problem otherwise. */
function badText(text: string | null): string | null {
  if (text === null || text.length === 0) return 'missing';
  if (text.includes('\u0000')) return 'holds NUL';
  if (text.search(LONE_SURROGATES) >= 0) return 'holds a lone surrogate';
  if (text.length > MAX_ERROR_CHARS) return `is ${text.length} characters long`;
  return null;
}

/** Every stored error text is readable and bounded; jobs with odd errors end as planned. */
export function checkErrorTexts(a: AuditInput): Verdict {
  const v: string[] = [];
  let checked = 0;
  for (const j of a.all.values()) {
    if (j.status !== 'failed') continue;
    checked++;
    const bad = badText(j.lastError);
    if (bad) v.push(`failed ${j.type} ${j.id}: last_error ${bad}`);
  }
  for (const s of a.steps) {
    if (s.status !== 'failed') continue;
    checked++;
    const bad = badText(s.error);
    if (bad) v.push(`failed step ${s.stepName} of job ${s.jobId}: error ${bad}`);
  }
  for (const [id, plan] of a.plans) {
    if (plan.kind !== 'odd') continue;
    const j = a.all.get(id);
    if (!j || !TERMINAL.has(j.status)) continue;
    checked++;
    const { mode, failTimes } = plan.args;
    const want = mode === 'fatal' ? 'failed' : 'completed';
    if (j.status !== want) {
      v.push(`odd ${mode} job ${id} ended ${j.status}, expected ${want}: ${(j.lastError ?? '').slice(0, 200)}`);
      continue;
    }
    if (mode === 'fatal' && !(j.lastError ?? '').startsWith(ODD_MARK)) v.push(`odd fatal job ${id} lost its message: ${(j.lastError ?? '').slice(0, 100)}`);
    if (mode === 'flaky' && ((parse(j.result) as { attempt?: number } | undefined)?.attempt ?? 0) <= failTimes) v.push(`odd flaky job ${id} completed as ${j.result ?? ''} though it fails ${failTimes} times`);
    if (mode === 'step') {
      if (!isDeepStrictEqual(parse(j.result), { caught: true })) v.push(`odd step job ${id} returned ${j.result ?? ''}`);
      const step = a.steps.find((s) => s.jobId === id && s.stepName === 'chaos.oddstep');
      if (step?.status !== 'failed' || !(step.error ?? '').startsWith(ODD_MARK)) v.push(`odd step job ${id}: its failed step is not checkpointed with its message (${String(step?.status)})`);
    }
  }
  return { name: 'error texts stored, readable and bounded', checked, violations: v };
}

/** Results close to the payload cap, finishing together, are all stored byte for byte (read one at a time; pruned ones from the archive). */
export async function checkBigResults(a: AuditInput, db: ChaosDb): Promise<Verdict> {
  const v: string[] = [];
  let checked = 0;
  let bytes = 0;
  for (const [id, plan] of a.plans) {
    if (plan.kind !== 'big') continue;
    const j = a.all.get(id);
    if (!j || !TERMINAL.has(j.status)) continue;
    checked++;
    if (j.status !== 'completed') {
      v.push(`big job ${id} (${plan.args.bytes} bytes, ${(a.runs.get(id) ?? []).length} runs) ended ${j.status}: ${(j.lastError ?? '').slice(0, 200)}`);
      continue;
    }
    const want = JSON.stringify(bigResult(plan.args));
    bytes += Buffer.byteLength(want);
    const pruned = a.jobs.has(id) ? undefined : a.pruned.get(id);
    const [row] = pruned ? [] : await db.all<{ result: string | null }>('SELECT result FROM sdj_jobs WHERE id = ?', [id]);
    const got = pruned ? await deletedResult(db, pruned.seq) : (row?.result ?? null);
    if (got !== want) v.push(`big job ${id}: stored result of ${got?.length ?? 0} characters differs from the ${want.length} returned`);
    if (Buffer.byteLength(want) > PAYLOAD_CAP) v.push(`big job ${id}: planned result exceeds the cap (audit bug)`);
  }
  return { name: 'results near the payload cap stored exactly', checked, violations: v, note: `${(bytes / 1024 / 1024).toFixed(1)} MB of large results` };
}
