/**
 * Printing a chaos run's verdicts as a table, and its figures.
 */
import type { Verdict } from './audit.js';

/** The figures of a run (printed, and emitted as one JSON line for docs and CI logs). */
export interface Figures {
  backend: string;
  seed: number;
  minutes: number;
  workers: number;
  scale: number;
  /** Jobs that ended: still in the database or pruned. */
  jobs: number;
  /** Jobs still in the database at the audit. */
  auditedFully: number;
  /** Jobs pruned (audited from the rows archived as they were deleted). */
  pruned: number;
  /** Job rows deleted, by prunes and by retries. */
  deletions: number;
  /** `queue.prune()` calls by the orchestrator and the pruner processes. */
  pruneCalls: number;
  /** Retention ages (ms), or null when off. */
  retention: { completed: number; failed: number; cancelled: number } | null;
  byStatus: Record<string, number>;
  roots: number;
  children: number;
  ticks: number;
  kills: number;
  reclaims: number;
  interruptedRuns: number;
  /** Interrupted runs whose job was claimed again afterwards (the others were cancelled meanwhile). */
  rerunsAfterKill: number;
  runs: number;
  signals: number;
  cancels: number;
  cancelsTooLate: number;
  effects: number;
  /** Flow-controlled root jobs enqueued, and their recorded runs. */
  flow: { jobs: number; runs: number };
  /** Operator actions: retries applied, job pauses, queue pauses, schedule re-definitions. */
  operator: { retries: number; jobPauses: number; queuePauses: number; scheduleDefs: number; errors: number };
  /** Worker processes that stopped a worker during its start, and those that then exited by plan. */
  bootStops: number;
  plannedExits: number;
  drainSeconds: number;
  durationSeconds: number;
  violations: number;
}

/** Prints the verdict table; returns the number of violations. */
export function printVerdicts(verdicts: readonly Verdict[], maxExamples = 5): number {
  const rows = verdicts.map((v) => [v.name, String(v.checked), String(v.violations.length), v.violations.length === 0 ? 'ok' : 'VIOLATED']);
  const head = ['invariant', 'checked', 'violations', 'verdict'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' │ ');
  const rule = widths.map((w) => '─'.repeat(w)).join('─┼─');
  console.log(line(head));
  console.log(rule);
  for (const r of rows) console.log(line(r));
  let total = 0;
  for (const v of verdicts) {
    total += v.violations.length;
    if (v.note) console.log(`  · ${v.name}: ${v.note}`);
    if (v.violations.length === 0) continue;
    console.log(`\n✗ ${v.name}: ${v.violations.length} violation(s)`);
    for (const text of v.violations.slice(0, maxExamples)) console.log(`    - ${text}`);
    if (v.violations.length > maxExamples) console.log(`    … and ${v.violations.length - maxExamples} more`);
  }
  return total;
}

/** Prints the run's figures and one machine-readable line. */
export function printFigures(f: Figures): void {
  const status = Object.entries(f.byStatus)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  console.log('');
  console.log(`backend ${f.backend} · seed ${f.seed} · ${f.minutes} min · ${f.workers} workers · scale ${f.scale}`);
  console.log(`jobs ${f.jobs} (${f.roots} roots, ${f.children} fan-out children, ${f.ticks} schedule ticks): ${status}`);
  const ages = f.retention === null ? 'retention off' : `retention ${f.retention.completed / 1000}/${f.retention.failed / 1000}/${f.retention.cancelled / 1000} s`;
  console.log(`${ages} · jobs audited in the tables ${f.auditedFully} · audited as pruned, from their archived rows ${f.pruned} · job rows deleted ${f.deletions} · queue.prune() calls ${f.pruneCalls}`);
  console.log(`kills ${f.kills} · reclaims ${f.reclaims} · runs interrupted by a kill ${f.interruptedRuns} (${f.rerunsAfterKill} re-run elsewhere) · handler runs ${f.runs}`);
  console.log(`signals ${f.signals} · cancelled fan-out parents ${f.cancels} (${f.cancelsTooLate} cancels came too late) · effect rows ${f.effects}`);
  console.log(`flow control: limited jobs ${f.flow.jobs} · their runs ${f.flow.runs}`);
  const o = f.operator;
  console.log(`operator: retries ${o.retries} · job pauses ${o.jobPauses} · queue pauses ${o.queuePauses} · schedule re-definitions ${o.scheduleDefs} · failed calls ${o.errors}`);
  console.log(`workers stopped during their start ${f.bootStops} (${f.plannedExits} processes then exited by plan)`);
  console.log(`drain ${f.drainSeconds.toFixed(1)} s · duration ${f.durationSeconds.toFixed(1)} s · violations ${f.violations}`);
  console.log(`CHAOS_RESULT ${JSON.stringify(f)}`);
}
