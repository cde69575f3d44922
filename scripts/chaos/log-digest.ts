/**
 * What the workers named in violations said: after a run with violations, the warnings and
 * errors those processes logged (and their lives as the orchestrator saw them) are printed
 * with the verdicts, so a run on a machine whose logs are gone afterwards (CI) still explains
 * itself.
 */
import { readFileSync } from 'node:fs';
import type { ProcLife } from './fleet.js';
import type { Verdict } from './audit.js';

/** Lines printed per worker, and workers per run. */
const LINES_PER_WORKER = 12;
const MAX_WORKERS = 4;
const MAX_LINE = 320;

/** The worker names (`W2.12`, `W3.4b`) mentioned in the violations of `verdicts`, most mentioned first. */
export function workersInViolations(verdicts: readonly Verdict[]): string[] {
  const counts = new Map<string, number>();
  for (const v of verdicts) for (const text of v.violations) for (const m of text.matchAll(/\bW\d+\.\d+b?\b/g)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([name]) => name);
}

/**
 * Prints, for the workers named in violations, when they started, became ready, were killed
 * and exited (ms since the run's start), and the last warnings and errors they logged.
 */
export function printLogDigest(verdicts: readonly Verdict[], lives: readonly ProcLife[], logFile: string, t0: number): void {
  const names = workersInViolations(verdicts).slice(0, MAX_WORKERS);
  if (names.length === 0) return;
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return;
  }
  const lines = text.split('\n');
  const at = (t: number | null): string => (t === null ? '-' : `${t - t0} ms`);
  console.log('\nworkers named in violations (what they logged; times since the run started):');
  for (const name of names) {
    const process = name.replace(/b$/, '');
    const life = lives.find((l) => l.name === process);
    const said = lines.filter((l) => (l.startsWith(`${process} err `) && /"level":"(warn|error)"/.test(l)) || l.startsWith(`${process} CRASHED`));
    console.log(
      `  ${name}: started ${at(life?.startedAt ?? null)}, ready ${at(life?.readyAt ?? null)}, killed ${at(life?.killedAt ?? null)}, exited ${at(life?.exitedAt ?? null)} (${String(life?.exit ?? '-')}); ${said.length} warning/error lines`,
    );
    for (const l of said.slice(-LINES_PER_WORKER)) console.log(`    ${l.length > MAX_LINE ? `${l.slice(0, MAX_LINE)}…` : l}`);
  }
}
