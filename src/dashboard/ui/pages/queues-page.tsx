/** Queues: depth by status, oldest pending age, limits, pause / resume, and pruning. Live. */
import { post, type QueueJson } from '../api.js';
import { Action, Hidden, StatusBadge } from '../components.js';
import { countText } from '../count-text.js';
import { duration } from '../format.js';
import { useClock } from '../hooks.js';
import { useLive } from '../live.js';
import { href } from '../router.js';
import { RetentionControl } from './retention.js';

/** `s`, `min`, `h`, `d` for a round period, else `30 s`, `5 min`... */
function per(ms: number): string {
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1000, 's'],
  ];
  for (const [size, unit] of units) if (ms === size) return unit;
  return duration(ms);
}

/** The queue's limits with how full they are: `3/5 running`, `10 per s`. */
function Limits({ q }: { q: QueueJson }) {
  const c = q.limits?.concurrency;
  const r = q.limits?.rateLimit;
  if (c === undefined && r === undefined) return <span class="muted">none</span>;
  return (
    <ul class="limits">
      {c && (
        <li class={c.running >= c.limit ? 'full' : ''} title="Jobs of this queue running across the fleet / its concurrency limit">
          concurrency {c.running}/{c.limit} running
        </li>
      )}
      {r && (
        <li class={r.nextStartInMs > 0 ? 'full' : ''} title="Starts allowed per period, fleet-wide">
          rate {r.limit} per {per(r.period)}
          {r.nextStartInMs > 0 && <span class="muted"> (next start in {duration(r.nextStartInMs)})</span>}
        </li>
      )}
    </ul>
  );
}

/** An age read at `since` (browser clock), growing with the page's clock. */
function Age({ ms, since }: { ms: number | undefined; since: number | undefined }) {
  const text = useClock((now) => (ms === undefined ? '' : duration(ms + Math.max(0, now - (since ?? now)))));
  return ms === undefined ? <span class="muted">—</span> : <span>{text}</span>;
}

/** The queues table (also on the overview). */
export function QueuesTable({ queues }: { queues: QueueJson[] }) {
  const live = useLive();
  const since = live?.receivedAt;
  // Counts above the server's cap read cap + 1: shown as `100,000+`.
  const n = (count: number): string => countText(count, live?.countCap);
  if (queues.length === 0) return <p class="muted">No queue has jobs yet.</p>;
  return (
    <table class="queues">
      <thead>
        <tr>
          <th scope="col">Queue</th>
          <th scope="col">State</th>
          <th scope="col" class="num">Pending</th>
          <th scope="col" class="num">Running</th>
          <th scope="col" class="num">Waiting</th>
          <th scope="col" class="num">Failed</th>
          <th scope="col">Oldest pending</th>
          <th scope="col">Limits</th>
          <th scope="col">
            <Hidden>Actions</Hidden>
          </th>
        </tr>
      </thead>
      <tbody>
        {queues.map((q) => (
          <tr key={q.name} data-queue={q.name}>
            <th scope="row">
              <a href={href('/jobs', { queue: q.name })}>{q.name}</a>
            </th>
            <td>
              {q.paused ? <StatusBadge status="paused" /> : <span class="badge st-running">active</span>}
              {q.pausedJobs > 0 && (
                <a class="muted paused-jobs" href={href('/jobs', { queue: q.name, status: 'paused' })}>
                  {' '}
                  {n(q.pausedJobs)} paused job{q.pausedJobs === 1 ? '' : 's'}
                </a>
              )}
            </td>
            <td class="num">
              <a href={href('/jobs', { queue: q.name, status: 'pending' })}>{n(q.pending)}</a>
            </td>
            <td class="num">{n(q.running)}</td>
            <td class="num">{n(q.waiting)}</td>
            <td class="num">
              <a href={href('/jobs', { queue: q.name, status: 'failed' })}>{n(q.failed)}</a>
            </td>
            <td class="oldest">
              <Age ms={q.oldestPendingAgeMs} since={since} />
            </td>
            <td>
              <Limits q={q} />
            </td>
            <td>
              {q.paused ? (
                <Action label={`Resume ${q.name}`} run={() => post(`queues/${encodeURIComponent(q.name)}/resume`)} done={`Queue ${q.name} resumed`} />
              ) : (
                <Action label={`Pause ${q.name}`} run={() => post(`queues/${encodeURIComponent(q.name)}/pause`)} done={`Queue ${q.name} paused`} />
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** The queues page. */
export function QueuesPage() {
  const live = useLive();
  return (
    <div>
      <h1>Queues</h1>
      {live === undefined ? <p class="muted">Loading…</p> : <QueuesTable queues={live.queues} />}
      <RetentionControl />
    </div>
  );
}
