/** Queues: depth by status, oldest pending age, limits, and pause / resume. Live. */
import { post, type QueueJson } from '../api.js';
import { Action, StatusBadge } from '../components.js';
import { duration } from '../format.js';
import { useLive } from '../live.js';
import { href } from '../router.js';

function limits(q: QueueJson): string {
  const out: string[] = [];
  if (q.limits?.concurrency) out.push(`${q.limits.concurrency.running}/${q.limits.concurrency.limit} running`);
  if (q.limits?.rateLimit) out.push(`${q.limits.rateLimit.limit} per ${duration(q.limits.rateLimit.period)}`);
  return out.join(', ') || '—';
}

/** The queues table (also on the overview). */
export function QueuesTable({ queues }: { queues: QueueJson[] }) {
  if (queues.length === 0) return <p class="muted">No queue has jobs yet.</p>;
  return (
    <table class="queues">
      <thead>
        <tr>
          <th>Queue</th>
          <th>State</th>
          <th class="num">Pending</th>
          <th class="num">Running</th>
          <th class="num">Waiting</th>
          <th class="num">Failed</th>
          <th>Oldest pending</th>
          <th>Limits</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {queues.map((q) => (
          <tr key={q.name} data-queue={q.name}>
            <td>
              <a href={href('/jobs', { queue: q.name })}>{q.name}</a>
            </td>
            <td>{q.paused ? <StatusBadge status="paused" /> : <span class="badge st-running">active</span>}</td>
            <td class="num">
              <a href={href('/jobs', { queue: q.name, status: 'pending' })}>{q.pending}</a>
            </td>
            <td class="num">{q.running}</td>
            <td class="num">{q.waiting}</td>
            <td class="num">
              <a href={href('/jobs', { queue: q.name, status: 'failed' })}>{q.failed}</a>
            </td>
            <td>{q.oldestPendingAgeMs === undefined ? '—' : duration(q.oldestPendingAgeMs)}</td>
            <td>{limits(q)}</td>
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
      {live?.error && <p class="error">Last refresh failed: {live.error}</p>}
    </div>
  );
}
