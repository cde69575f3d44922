/**
 * A job's timeline on its page, built from what is stored: when it was enqueued, when it was due
 * (if later), each checkpoint, each signal sent and consumed, the start of its last run and its
 * end, each with the time elapsed since the entry before; a timer's wake time and a signal
 * wait's deadline. Earlier attempts are not stored one by one, so the page says so and gives the
 * attempt count instead. Entries are ordered by time, whatever their order of record (a workflow
 * retried from its failed step keeps its earlier checkpoints, older than its last run); it is
 * built from the checkpoints and signals the page shows, and says so when there are more.
 */
import type { JobJson, SignalJson, StepJson } from '../api.js';
import { Section } from '../components.js';
import { duration, relative } from '../format.js';

/** One dated line of the timeline. */
export interface TimelineEntry {
  /** ms since the epoch. */
  at: number;
  text: string;
  kind: 'enqueued' | 'due' | 'started' | 'signal' | 'step' | 'deadline' | 'finished';
}

const ENDED: Record<string, string> = { completed: 'Completed', failed: 'Failed', cancelled: 'Cancelled' };

/** "attempt 3 of 4" for a job. */
export function attemptText(j: JobJson): string {
  return `attempt ${j.attempt ?? 0} of ${(j.maxRetries ?? 0) + 1}`;
}

/** The entries of a job's timeline, oldest first (entries at the same instant keep their natural order). */
export function timelineOf(j: JobJson, steps: StepJson[], signals: SignalJson[]): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  const add = (iso: string | undefined, text: string, kind: TimelineEntry['kind']): void => {
    if (iso === undefined) return;
    const at = Date.parse(iso);
    if (!Number.isNaN(at)) out.push({ at, text, kind });
  };
  add(j.createdAt, 'Enqueued', 'enqueued');
  const due = Date.parse(j.runAt ?? '');
  // A run time after the job finished (cancelled while delayed) is not a moment of its life.
  const ended = j.completedAt !== undefined && due > Date.parse(j.completedAt);
  if (j.createdAt !== undefined && due > Date.parse(j.createdAt) && !ended) add(j.runAt, 'Due to run', 'due');
  add(j.startedAt, `Last run started (${attemptText(j)})`, 'started');
  for (const s of signals) {
    add(s.sentAt, `Signal "${s.name}" sent`, 'signal');
    add(s.consumedAt, `Signal "${s.name}" consumed`, 'signal');
  }
  // A checkpoint is dated when first recorded: a timer or signal wait, when the wait began.
  for (const s of steps) {
    add(s.at, `Checkpoint ${s.index} "${s.name}" recorded (${s.status})`, 'step');
    // A signal wait in progress holds its deadline (null: none); a timer, its wake time.
    const at = typeof s.output === 'number' && Math.abs(s.output) <= 8.64e15 ? new Date(s.output).toISOString() : undefined;
    if (s.status === 'waiting' && s.name.startsWith('signal:')) add(at, `Wait for signal "${s.name.slice(7)}" times out`, 'deadline');
    else if (s.name === 'sleep') add(at, `Timer of checkpoint ${s.index} wakes`, 'deadline');
  }
  add(j.completedAt, ENDED[j.status ?? ''] ?? 'Finished', 'finished');
  // Array.prototype.sort is stable: ties keep the order above.
  return out.sort((a, b) => a.at - b.at);
}

/** The timeline section. */
export function Timeline({ job, steps, signals, partial }: { job: JobJson; steps: StepJson[]; signals: SignalJson[]; partial: boolean }) {
  const entries = timelineOf(job, steps, signals);
  return (
    <Section title="Timeline">
      <p>
        {attemptText(job).replace('attempt', 'Attempt')}.{' '}
        <span class="muted">Earlier attempts are not stored one by one: only the last run's start and end are shown, with the attempt count.</span>
      </p>
      {partial && <p class="muted timeline-partial">Built from the checkpoints and signals shown on this page; the job has more (see their pages below).</p>}
      <ol class="timeline">
        {entries.map((e, i) => {
          const iso = new Date(e.at).toISOString();
          const prev = entries[i - 1];
          return (
            <li key={`${e.kind}-${i}`} class={`tl-${e.kind}`}>
              <time dateTime={iso} title={relative(e.at)}>
                {new Date(e.at).toLocaleString()}
              </time>{' '}
              {e.text}
              {prev !== undefined && <span class="muted"> (+{duration(e.at - prev.at)})</span>}
            </li>
          );
        })}
      </ol>
    </Section>
  );
}
