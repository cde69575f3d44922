/**
 * The invariants of a chaos run, part 3: flow control (see flow.ts).
 * - Concurrency: in every concurrency group (a type's, per key; the metered queue's), the runs'
 *   intervals on the database clock never overlap more than the limit.
 * - Rate: in every rate group, no window of `period` ms holds more than `limit + 1` claims (the
 *   documented tolerance: a late start may catch up), by the claims' `started_at` (database
 *   clock); and the claims replay through the rule itself (GCRA with a catch-up of
 *   c = min(T, 1 s), T = period / limit: a claim at t needs tat <= t, then tat = max(tat, t - c) + T).
 * - Setup: the stored limits are the registered ones, and jobs carry the keys their args name.
 * (That every flow job completed is checked with the other outcomes, audit.ts.)
 */
import { nextTat } from '../../src/storage/shared/flow-plan.js';
import type { Storage } from '../../src/storage/storage.js';
import { parse, type AuditInput } from './audit-data.js';
import type { Verdict } from './audit.js';
import { archiveOf } from './prune-archive.js';
import type { ChaosDb } from './backend.js';
import type { ProcLife } from './fleet.js';
import { FLOW_TYPES, METERED_LIMITS, METERED_QUEUE, storedLimits, type FlowArgs, type FlowRun } from './flow.js';

/** A run's interval on the database clock, and how its end is known. */
interface Held {
  run: FlowRun;
  start: number;
  end: number;
  endedBy: 'recorded' | 'kill' | 'exit' | 'unknown';
  /** The job was claimed again before this run ended (its lease was lost while it ran). */
  lostLease?: boolean;
}

/** The groups a run counts against, each with its limit. */
function concurrencyGroups(r: FlowRun): { group: string; limit: number }[] {
  const out: { group: string; limit: number }[] = [];
  const t = FLOW_TYPES.find((x) => x.type === r.type);
  if (t?.concurrency) out.push({ group: `type ${r.type}${t.concurrency.keyed ? ` key ${r.ckey ?? ''}` : ''}`, limit: t.concurrency.limit });
  if (r.queue === METERED_QUEUE) out.push({ group: `queue ${METERED_QUEUE}`, limit: METERED_LIMITS.concurrency });
  return out;
}

function rateGroups(r: FlowRun): { group: string; limit: number; period: number }[] {
  const out: { group: string; limit: number; period: number }[] = [];
  const t = FLOW_TYPES.find((x) => x.type === r.type);
  if (t?.rateLimit) out.push({ group: `type ${r.type}${t.rateLimit.keyed ? ` key ${r.rkey ?? ''}` : ''}`, limit: t.rateLimit.limit, period: t.rateLimit.period });
  if (r.queue === METERED_QUEUE) out.push({ group: `queue ${METERED_QUEUE}`, ...METERED_LIMITS.rateLimit });
  return out;
}

/** Family of a group for the notes: the type or queue, without the key. */
const family = (group: string): string => group.replace(/ key .*$/, '');

/**
 * A run's interval: from its start on the database clock to its recorded end; a run whose
 * process was SIGKILLed (or died) before it recorded its end ends at that process's exit as the
 * fleet saw it (just after the kill), carried onto the database clock by the run's host-clock
 * duration; with neither, at the job's next claim (after its lease expired), else never.
 */
function held(r: FlowRun, lives: Map<string, ProcLife>, nextClaim: number | undefined): Held {
  if (r.dbEnd !== null) return { run: r, start: r.dbStart, end: r.dbEnd, endedBy: 'recorded' };
  const life = lives.get(r.worker);
  if (life?.exitedAt != null) return { run: r, start: r.dbStart, end: r.dbStart + Math.max(0, life.exitedAt - r.hostStart), endedBy: life.killedAt !== null ? 'kill' : 'exit' };
  return { run: r, start: r.dbStart, end: nextClaim ?? Infinity, endedBy: 'unknown' };
}

const describe = (h: Held): string =>
  `job ${h.run.jobId} run ${h.run.runCount} on ${h.run.worker} [${h.start}..${h.end}${h.endedBy === 'recorded' ? '' : `, ended by ${h.endedBy}`}${h.lostLease ? ', its job claimed again meanwhile' : ''}]`;

/** Flow runs by job, in run order. */
function byJob(runs: readonly FlowRun[]): Map<string, FlowRun[]> {
  const out = new Map<string, FlowRun[]>();
  for (const r of runs) out.set(r.jobId, [...(out.get(r.jobId) ?? []), r]);
  for (const list of out.values()) list.sort((a, b) => a.runCount - b.runCount);
  return out;
}

/** No concurrency group ever had more runs at once than its limit (database clock). */
export function checkConcurrency(runs: readonly FlowRun[], lives: Map<string, ProcLife>): Verdict {
  const v: string[] = [];
  const jobs = byJob(runs);
  const groups = new Map<string, { limit: number; held: Held[] }>();
  const ends = { recorded: 0, kill: 0, exit: 0, unknown: 0 };
  let reclaimedWhileRunning = 0;
  let checked = 0;
  for (const r of runs) {
    const later = (jobs.get(r.jobId) ?? []).find((x) => x.runCount > r.runCount && x.claimedAt !== null);
    const h = held(r, lives, later?.claimedAt ?? undefined);
    // The job was claimed again before this run ended: its lease was lost while it ran (the
    // engine frees the slot at the lease's expiry); any excess it takes part in is marked.
    const lostLease = later?.claimedAt != null && later.claimedAt < h.end;
    if (lostLease) reclaimedWhileRunning++;
    const gs = concurrencyGroups(r);
    if (gs.length > 0) {
      checked++;
      ends[h.endedBy]++;
    }
    for (const g of gs) {
      const e = groups.get(g.group) ?? { limit: g.limit, held: [] };
      e.held.push(lostLease ? { ...h, lostLease } : h);
      groups.set(g.group, e);
    }
  }
  const maxByFamily = new Map<string, { max: number; limit: number; groups: number; atLimitMs: number }>();
  for (const [group, { limit, held: list }] of groups) {
    // Ends before starts at the same instant: a slot freed and taken in the same ms is no overlap.
    const events = list.flatMap((h) => [
      { at: h.start, d: 1, h },
      { at: h.end, d: -1, h },
    ]);
    events.sort((a, b) => a.at - b.at || a.d - b.d);
    const active = new Set<Held>();
    let max = 0;
    let atLimitSince: number | null = null;
    let atLimitMs = 0;
    let episode: { from: number; max: number; members: Set<Held> } | null = null;
    for (const e of events) {
      if (e.d > 0) active.add(e.h);
      else active.delete(e.h);
      max = Math.max(max, active.size);
      if (active.size >= limit && atLimitSince === null) atLimitSince = e.at;
      if (active.size < limit && atLimitSince !== null) {
        atLimitMs += e.at - atLimitSince;
        atLimitSince = null;
      }
      if (active.size > limit) {
        episode ??= { from: e.at, max: 0, members: new Set() };
        episode.max = Math.max(episode.max, active.size);
        for (const h of active) episode.members.add(h);
      } else if (episode) {
        const members = [...episode.members].sort((a, b) => a.start - b.start);
        v.push(`${group}: ${episode.max} running at once (limit ${limit}) from ${episode.from} for ${e.at - episode.from} ms (database clock): ${members.map(describe).join('; ')}`);
        episode = null;
      }
    }
    const f = family(group);
    const m = maxByFamily.get(f) ?? { max: 0, limit, groups: 0, atLimitMs: 0 };
    maxByFamily.set(f, { max: Math.max(m.max, max), limit, groups: m.groups + 1, atLimitMs: m.atLimitMs + atLimitMs });
  }
  const families = [...maxByFamily].map(([f, m]) => `${f} max ${m.max}/${m.limit}${m.groups > 1 ? ` over ${m.groups} keys` : ''}, at the limit${m.groups > 1 ? ' (summed over keys)' : ''} ${(m.atLimitMs / 1000).toFixed(1)} s`).join('; ');
  const note =
    `${families}. Intervals: handler start..end on the database clock (inside the claim..finish the engine counts); ` +
    `${ends.kill} runs SIGKILLed mid-run end at their process's exit as the fleet saw it just after the kill (the engine holds their slots until the lease expires, later), ` +
    `${ends.exit} at another exit, ${ends.unknown} unknown (end taken at the job's next claim); ${reclaimedWhileRunning} runs whose job was claimed again before they ended`;
  return { name: 'flow: concurrency limit never exceeded', checked, violations: v, note };
}

/** Most starts in any window [s, s + period) of a sorted list, and the windows above `limit`. */
function windows(starts: readonly number[], period: number, limit: number): { max: number; over: { from: number; count: number; span: number }[] } {
  let max = 0;
  const over: { from: number; count: number; span: number }[] = [];
  let j = 0;
  for (let i = 0; i < starts.length; i++) {
    while (j < starts.length && starts[j]! < starts[i]! + period) j++;
    const count = j - i;
    max = Math.max(max, count);
    // One report per run of overlapping excess windows.
    if (count > limit && (over.length === 0 || starts[i]! >= over[over.length - 1]!.from + period)) over.push({ from: starts[i]!, count, span: starts[j - 1]! - starts[i]! });
    else if (count > limit) over[over.length - 1]!.count = Math.max(over[over.length - 1]!.count, count);
  }
  return { max, over };
}

/** Claims at integer ms of the database clock: a tat up to this much past a claim is rounding. */
const REPLAY_SLACK_MS = 1;

/**
 * Replays a group's claims (sorted, database clock) through the rate rule: each needs the tat
 * the claims before it left to be due. Claims no run recorded are missing from `starts`, which
 * only makes the replay more lenient. Returns the claims that came early, with how early.
 */
function replay(starts: readonly number[], interval: number): { at: number; early: number }[] {
  const early: { at: number; early: number }[] = [];
  let tat: number | undefined;
  for (const t of starts) {
    if (tat !== undefined && tat > t + REPLAY_SLACK_MS) early.push({ at: t, early: tat - t });
    tat = nextTat(tat, t, interval);
  }
  return early;
}

/**
 * No rate group started more than `limit + 1` jobs in any window of `period` ms, and every
 * group's claims replay through the rate rule, by the claims' `started_at` (database clock). The
 * host clock (the handlers' start) is only reported.
 */
export function checkRate(runs: readonly FlowRun[], a: AuditInput): Verdict {
  const v: string[] = [];
  const groups = new Map<string, { limit: number; period: number; db: Map<string, number>; host: Map<string, number> }>();
  let noClaim = 0;
  for (const r of runs) {
    if (r.claimedAt === null && rateGroups(r).length > 0) noClaim++;
    for (const g of rateGroups(r)) {
      const e = groups.get(g.group) ?? { limit: g.limit, period: g.period, db: new Map(), host: new Map() };
      if (r.claimedAt !== null) e.db.set(`${r.jobId}#${r.runCount}`, r.claimedAt);
      e.host.set(`${r.jobId}#${r.runCount}`, r.hostStart);
      groups.set(g.group, e);
    }
  }
  // Claims no run recorded (a kill between the claim and the handler's first write): not counted.
  let unrecorded = 0;
  for (const [jobId, list] of byJob(runs)) {
    if (rateGroups(list[0]!).length === 0) continue;
    const j = a.all.get(jobId);
    if (j) unrecorded += Math.max(0, j.runCount - new Set(list.map((r) => r.runCount)).size);
  }
  let checked = 0;
  const notes: string[] = [];
  const hostNotes: string[] = [];
  const byFamily = new Map<string, { max: number; hostMax: number; limit: number; period: number; minGap: number; belowT: number; groups: number }>();
  for (const [group, g] of groups) {
    const starts = [...g.db.values()].sort((x, y) => x - y);
    const host = [...g.host.values()].sort((x, y) => x - y);
    checked += starts.length;
    const w = windows(starts, g.period, g.limit + 1);
    for (const o of w.over) v.push(`${group}: ${o.count} claims within ${o.span} ms from ${o.from} (database clock; limit ${g.limit} per ${g.period} ms, tolerance + 1)`);
    const t = g.period / g.limit;
    let minGap = Infinity;
    for (let i = 1; i < starts.length; i++) minGap = Math.min(minGap, starts[i]! - starts[i - 1]!);
    const early = replay(starts, t);
    const belowT = early.length;
    for (const e of early.slice(0, 20)) v.push(`${group}: claim at ${e.at} came ${e.early.toFixed(1)} ms before its turn (database clock; emission interval ${t.toFixed(1)} ms)`);
    const f = family(group);
    const m = byFamily.get(f) ?? { max: 0, hostMax: 0, limit: g.limit, period: g.period, minGap: Infinity, belowT: 0, groups: 0 };
    byFamily.set(f, { ...m, max: Math.max(m.max, w.max), hostMax: Math.max(m.hostMax, windows(host, g.period, g.limit).max), minGap: Math.min(m.minGap, minGap), belowT: m.belowT + belowT, groups: m.groups + 1 });
  }
  for (const [f, m] of byFamily) {
    const t = m.period / m.limit;
    notes.push(`${f} max ${m.max}/${m.limit} per ${m.period} ms${m.groups > 1 ? ` over ${m.groups} keys` : ''}, closest claims ${m.minGap} ms apart (emission interval ${t.toFixed(1)} ms${m.belowT > 0 ? `; ${m.belowT} claims before their turn, the first 20 per group listed` : ''})`);
    hostNotes.push(`${f} ${m.hostMax}/${m.limit}`);
  }
  const note =
    `${notes.join('; ')}. ${unrecorded} claims no run recorded and ${noClaim} runs without a claim instant are not counted. ` +
    `Host clock (handler starts, figure only: the claim-to-handler delay varies): most starts in a window ${hostNotes.join(', ')}`;
  return { name: 'flow: rate limit never exceeded (limit + 1 per window; each claim in its turn)', checked, violations: v, note };
}

/** The stored limits are the registered ones, flow jobs still in the table carry their args' keys, and every job of a limited type its mark. */
export async function checkFlowSetup(db: ChaosDb, storage: Storage): Promise<Verdict> {
  const v: string[] = [];
  let checked = 0;
  const rows = await storage.limitList();
  for (const t of FLOW_TYPES) {
    checked++;
    const row = rows.find((r) => r.scope === 'type' && r.name === t.type);
    const want = storedLimits(t);
    if (!t.concurrency && !t.rateLimit) {
      if (row) v.push(`type ${t.type} has no limits but a limit row is stored: ${JSON.stringify(row)}`);
    } else if (!row || row.concurrency !== want.concurrency || row.rateLimit !== want.rateLimit || row.ratePeriodMs !== want.ratePeriodMs) {
      v.push(`type ${t.type}: stored limit ${JSON.stringify(row ?? null)}, registered ${JSON.stringify(want)}`);
    }
  }
  checked++;
  const q = rows.find((r) => r.scope === 'queue' && r.name === METERED_QUEUE);
  if (!q || q.concurrency !== METERED_LIMITS.concurrency || q.rateLimit !== METERED_LIMITS.rateLimit.limit || q.ratePeriodMs !== METERED_LIMITS.rateLimit.period) {
    v.push(`queue ${METERED_QUEUE}: stored limit ${JSON.stringify(q ?? null)}, set ${JSON.stringify(METERED_LIMITS)}`);
  }
  for (const r of rows) if (!FLOW_TYPES.some((t) => r.scope === 'type' && t.type === r.name) && !(r.scope === 'queue' && r.name === METERED_QUEUE)) v.push(`unexpected limit row ${JSON.stringify(r)}`);
  const types = FLOW_TYPES.map((t) => t.type);
  const limitedTypes = FLOW_TYPES.filter((t) => t.concurrency || t.rateLimit).map((t) => t.type);
  const jobs = await db.all<Record<string, unknown>>(`SELECT id, type, args, concurrency_key, rate_key, limited FROM sdj_jobs WHERE type IN (${types.map(() => '?').join(', ')})`, types);
  // Every job of a type with a type limit carries the `limited` mark (the fleet stores the limits
  // before the load starts), live or finished, including the finished rows deleted since (kept by
  // the archive): a job read without it would escape its type's limits.
  const deleted = await db.all<Record<string, unknown>>(
    `SELECT id, type, status, limited FROM ${archiveOf('jobs')} WHERE type IN (${limitedTypes.map(() => '?').join(', ')})`,
    limitedTypes,
  );
  let unmarked = 0;
  for (const j of [...jobs, ...deleted]) {
    if (!limitedTypes.includes(String(j['type']))) continue;
    checked++;
    if (Number(j['limited']) !== 1) {
      unmarked++;
      if (unmarked <= 20) v.push(`job ${String(j['id'])} (${String(j['type'])}${j['status'] === undefined ? '' : `, deleted as ${String(j['status'])}`}) is not marked limited`);
    }
  }
  if (unmarked > 20) v.push(`${unmarked - 20} more jobs of limited types not marked limited`);
  for (const j of jobs) {
    checked++;
    const args = parse(j['args'] === null ? null : String(j['args'])) as FlowArgs | undefined;
    const ck = j['concurrency_key'] === null ? null : String(j['concurrency_key']);
    const rk = j['rate_key'] === null ? null : String(j['rate_key']);
    if (ck !== (args?.ckey ?? null) || rk !== (args?.rkey ?? null)) v.push(`job ${String(j['id'])} (${String(j['type'])}) stored keys ${JSON.stringify([ck, rk])}, its args name ${JSON.stringify([args?.ckey ?? null, args?.rkey ?? null])}`);
  }
  return { name: 'flow: limits stored as registered, keys as enqueued', checked, violations: v, note: `${jobs.length} flow jobs still in sdj_jobs checked for their keys; ${jobs.length + deleted.length} jobs of limited types (${deleted.length} deleted) checked for their mark` };
}
