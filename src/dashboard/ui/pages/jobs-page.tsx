/**
 * The jobs list: filters (status, queue, type, tenant), search, keyset pages, and bulk retry /
 * cancel / delete of every job the filter matches. The filter lives in the link. The server
 * reads a bounded number of jobs per page: a filter few jobs match may come back short, with
 * a link that continues the scan.
 */
import { useState } from 'preact/hooks';
import { get, post, STATUSES, type JobJson, type JobPageJson } from '../api.js';
import { Action, LoadState, StatusBadge, useApp, When } from '../components.js';
import { shortId } from '../format.js';
import { useLoad } from '../hooks.js';
import { useLiveVersion } from '../live.js';
import { href, navigate, type Route } from '../router.js';

const FILTERS = ['status', 'queue', 'type', 'tenant', 'search'] as const;

/** Jobs per page. */
const PAGE_SIZE = 50;

/** The filter of a route's query. */
function filterOf(route: Route): Record<string, string | undefined> {
  const f: Record<string, string | undefined> = {};
  for (const k of FILTERS) f[k] = route.query.get(k) ?? undefined;
  return f;
}

/** A job's last reported progress as a small bar and a percentage (its message on hover). */
function Progress({ job }: { job: JobJson }) {
  const p = job.progress;
  if (p === undefined || p === null) return null;
  const pct = Math.round(p.value * 100);
  return (
    <span class="progress" title={p.message ?? undefined}>
      <progress max={1} value={p.value} aria-label={`Progress of ${shortId(job.id)}`} /> {pct}%
    </span>
  );
}

/**
 * Whether a page came back short because the server's scan budget ran out (a filter few jobs
 * match): the page offers to continue the scan instead of saying nothing matches.
 */
function scanShort(data: JobPageJson): boolean {
  return data.scanExhausted === true && data.nextCursor !== undefined && data.jobs.length < PAGE_SIZE;
}

/** The jobs page. */
export function JobsPage({ route }: { route: Route }) {
  const { config } = useApp();
  const version = useLiveVersion();
  const filter = filterOf(route);
  const cursor = route.query.get('cursor') ?? undefined;
  const key = route.query.toString();
  const page = useLoad(() => get<JobPageJson>('jobs', { ...filter, cursor, limit: String(PAGE_SIZE) }), [key, version]);
  const [draft, setDraft] = useState(filter);
  const [draftKey, setDraftKey] = useState(key);
  if (draftKey !== key) {
    setDraft(filter);
    setDraftKey(key);
  }
  const apply = (e: Event): void => {
    e.preventDefault();
    navigate('/jobs', draft);
  };
  const set = (k: string) => (e: Event) => setDraft({ ...draft, [k]: (e.target as HTMLInputElement).value });
  const bulkFilter = Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined && v !== ''));
  const what = Object.entries(bulkFilter).map(([k, v]) => `${k}=${v}`).join(', ');
  const bulk = (verb: 'retry' | 'cancel' | 'delete', label: string) => (
    <Action
      label={label}
      danger={verb !== 'retry'}
      confirm={`${label}: every job matching ${what}?`}
      run={async () => {
        const r = await post<{ count: number; skippedCount: number }>(`bulk/${verb}`, { filter: bulkFilter });
        return r;
      }}
      done={`${label}: done`}
      after={page.reload}
    />
  );

  return (
    <div>
      <h1>Jobs</h1>
      <form class="filters" onSubmit={apply} aria-label="Filter jobs">
        <label>
          Status
          <select name="status" value={draft['status'] ?? ''} onChange={set('status')}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option value={s} key={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Queue
          <input name="queue" value={draft['queue'] ?? ''} onInput={set('queue')} size={12} />
        </label>
        <label>
          Type
          <input name="type" value={draft['type'] ?? ''} onInput={set('type')} size={14} />
        </label>
        <label>
          Tenant
          <input name="tenant" value={draft['tenant'] ?? ''} onInput={set('tenant')} size={10} />
        </label>
        {!config.redact.errors && (
          <label>
            Search
            <input name="search" type="search" value={draft['search'] ?? ''} onInput={set('search')} placeholder="error text or type" size={18} />
          </label>
        )}
        <button type="submit">Apply</button>
        <a href={href('/jobs')} class="button-link">
          Clear
        </a>
      </form>
      {filter['status'] !== undefined && !config.readOnly && (
        <div class="bulk" role="group" aria-label="Bulk actions">
          <span class="muted">Every job matching {what}:</span> {bulk('retry', 'Retry all')} {bulk('cancel', 'Cancel all')} {bulk('delete', 'Delete all')}
        </div>
      )}
      <LoadState error={page.error} loading={page.data === undefined} />
      {page.data && (
        <>
          <table class="jobs">
            <thead>
              <tr>
                <th scope="col">Job</th>
                <th scope="col">Type</th>
                <th scope="col">Queue</th>
                <th scope="col">Status</th>
                <th scope="col">Attempt</th>
                <th scope="col">Progress</th>
                <th scope="col">Created</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {page.data.jobs.map((j) => (
                <tr key={j.id} data-job-id={j.id}>
                  <td>
                    <a href={href(`/jobs/${j.id}`)} title={j.id}>
                      {shortId(j.id)}
                    </a>
                  </td>
                  <td>{j.type}</td>
                  <td>{j.queue}</td>
                  <td>
                    <StatusBadge status={j.status} />
                  </td>
                  <td>
                    {j.attempt}/{(j.maxRetries ?? 0) + 1}
                  </td>
                  <td class="progress-cell">
                    <Progress job={j} />
                  </td>
                  <td>
                    <When at={j.createdAt} />
                  </td>
                  <td class="error-cell">{j.lastError?.split('\n', 1)[0]}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {scanShort(page.data) ? (
            <p class="muted scan-note">
              Looked through {(page.data.scanned ?? 0).toLocaleString('en-US')} jobs{page.data.jobs.length === 0 ? ' without a match' : ''} —{' '}
              <a href={href('/jobs', { ...filter, cursor: page.data.nextCursor })}>Continue</a>
            </p>
          ) : (
            page.data.jobs.length === 0 && <p class="muted">No job matches.</p>
          )}
          <nav class="pager" aria-label="Pages">
            {cursor !== undefined && <a href={href('/jobs', filter)}>First page</a>}
            {page.data.nextCursor !== undefined && !scanShort(page.data) && <a href={href('/jobs', { ...filter, cursor: page.data.nextCursor })}>Next page</a>}
          </nav>
        </>
      )}
    </div>
  );
}
