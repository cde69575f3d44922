/**
 * One job: its fields, args, result, error, progress, checkpoints with outputs, fan-out children
 * as an expandable tree, and the actions that fit its status. Refreshes itself on live changes.
 */
import { useState } from 'preact/hooks';
import { get, post, type JobJson, type JobPageJson, type StepJson } from '../api.js';
import { Action, failure, LoadState, Payload, Section, StatusBadge, useApp, When } from '../components.js';
import { duration, json, shortId } from '../format.js';
import { useLoad } from '../hooks.js';
import { useLiveVersion } from '../live.js';
import { href, navigate } from '../router.js';

interface Detail {
  job: JobJson;
  steps: StepJson[];
  children: JobPageJson;
}

const hidden = (j: { redacted?: string[] }, field: string): boolean => j.redacted?.includes(field) ?? false;

/** The job page. */
export function JobPage({ id }: { id: string }) {
  const version = useLiveVersion();
  const detail = useLoad(() => get<Detail>(`jobs/${encodeURIComponent(id)}`), [id, version]);
  const d = detail.data;
  return (
    <div>
      <h1>
        Job <code>{id}</code>
      </h1>
      <LoadState error={detail.error} loading={d === undefined} />
      {d && <JobBody d={d} reload={detail.reload} />}
    </div>
  );
}

function JobBody({ d, reload }: { d: Detail; reload: () => void }) {
  const j = d.job;
  const path = `jobs/${encodeURIComponent(j.id)}`;
  const finished = j.status === 'completed' || j.status === 'failed' || j.status === 'cancelled';
  return (
    <>
      <div class="actions" role="group" aria-label="Job actions">
        <StatusBadge status={j.status} />
        {(j.status === 'failed' || j.status === 'cancelled') && <Action label="Retry" run={() => post(`${path}/retry`)} after={reload} />}
        {j.status === 'failed' && d.steps.length > 0 && <Action label="Retry from failed step" run={() => post(`${path}/retry`, { fromFailedStep: true })} after={reload} />}
        {!finished && <Action label="Cancel" danger confirm="Cancel this job (and its sub-jobs)?" run={() => post(`${path}/cancel`)} after={reload} />}
        {j.status === 'pending' && <Action label="Pause" run={() => post(`${path}/pause`)} after={reload} />}
        {j.status === 'paused' && <Action label="Resume" run={() => post(`${path}/resume`)} after={reload} />}
        {finished && <Action label="Delete" danger confirm="Delete this job for good?" run={() => post(`${path}/delete`)} after={() => navigate('/jobs')} />}
      </div>
      <dl class="fields">
        <dt>Type</dt>
        <dd>{j.type}</dd>
        <dt>Queue</dt>
        <dd>
          <a href={href('/jobs', { queue: j.queue })}>{j.queue}</a>
        </dd>
        <dt>Attempt</dt>
        <dd>
          {j.attempt} of {(j.maxRetries ?? 0) + 1}
        </dd>
        <dt>Priority</dt>
        <dd>{j.priority}</dd>
        <dt>Created</dt>
        <dd>
          <When at={j.createdAt} />
        </dd>
        <dt>Run at</dt>
        <dd>
          <When at={j.runAt} />
        </dd>
        <dt>Started</dt>
        <dd>
          <When at={j.startedAt} />
        </dd>
        <dt>Finished</dt>
        <dd>
          <When at={j.completedAt} />
        </dd>
        {j.startedAt && j.completedAt && (
          <>
            <dt>Last run took</dt>
            <dd>{duration(Date.parse(j.completedAt) - Date.parse(j.startedAt))}</dd>
          </>
        )}
        {j.parentId && (
          <>
            <dt>Parent</dt>
            <dd>
              <a href={href(`/jobs/${j.parentId}`)}>{j.parentId}</a>
            </dd>
          </>
        )}
        {j.tenant && (
          <>
            <dt>Tenant</dt>
            <dd>{j.tenant}</dd>
          </>
        )}
        {j.unique && (
          <>
            <dt>Unique key</dt>
            <dd>{j.unique}</dd>
          </>
        )}
        {j.timeout !== undefined && (
          <>
            <dt>Timeout</dt>
            <dd>{duration(j.timeout)}</dd>
          </>
        )}
      </dl>
      {j.progress && (
        <Section title="Progress">
          <progress max={1} value={j.progress.value} aria-label="progress" /> {Math.round(j.progress.value * 100)}% {j.progress.message ?? ''} <When at={j.progress.at} />
        </Section>
      )}
      {(j.lastError !== undefined || hidden(j, 'lastError')) && (
        <Section title="Last error">
          {hidden(j, 'lastError') ? <Payload value={undefined} hidden label="Error" /> : <pre class="payload error-text">{j.lastError}</pre>}
        </Section>
      )}
      <Section title="Args">
        <Payload value={j.args} hidden={hidden(j, 'args')} label="Args" />
      </Section>
      {(j.status === 'completed' || j.result !== undefined || hidden(j, 'result')) && (
        <Section title="Result">
          <Payload value={j.result} hidden={hidden(j, 'result')} label="Result" />
        </Section>
      )}
      {j.meta !== undefined && Object.keys(j.meta).length > 0 && (
        <Section title="Meta">
          <Payload value={j.meta} hidden={false} label="Meta" />
        </Section>
      )}
      {d.steps.length > 0 && <Steps steps={d.steps} />}
      {j.status === 'waiting' && <SignalForm id={j.id} after={reload} />}
      {d.children.jobs.length > 0 && (
        <Section title="Sub-jobs">
          <Tree page={d.children} parentId={j.id} />
        </Section>
      )}
    </>
  );
}

function Steps({ steps }: { steps: StepJson[] }) {
  return (
    <Section title="Checkpoints">
      <table class="steps">
        <thead>
          <tr>
            <th>#</th>
            <th>Step</th>
            <th>Status</th>
            <th>At</th>
            <th>Output or error</th>
          </tr>
        </thead>
        <tbody>
          {steps.map((s) => (
            <tr key={s.index}>
              <td>{s.index}</td>
              <td>{s.name}</td>
              <td>
                <span class={`badge st-${s.status}`}>{s.status}</span>
              </td>
              <td>
                <When at={s.at} />
              </td>
              <td>
                {s.error !== undefined ? <pre class="payload error-text">{s.error}</pre> : <Payload value={s.output} hidden={hidden(s, 'output')} label="Output" />}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}

/** Fan-out children; each node opens its own children on demand. */
function Tree({ page, parentId }: { page: JobPageJson; parentId: string }) {
  const [more, setMore] = useState<JobPageJson[]>([]);
  const last = more[more.length - 1] ?? page;
  const { notify } = useApp();
  const loadMore = async (): Promise<void> => {
    try {
      const next = await get<JobPageJson>('jobs', { parentId, cursor: last.nextCursor, order: 'asc', limit: '100' });
      setMore([...more, next]);
    } catch (e) {
      notify(failure(e), 'error');
    }
  };
  return (
    <ul class="tree">
      {[page, ...more].flatMap((p) => p.jobs).map((c) => (
        <TreeNode key={c.id} job={c} />
      ))}
      {last.nextCursor !== undefined && (
        <li>
          <button type="button" onClick={() => void loadMore()}>
            More sub-jobs
          </button>
        </li>
      )}
    </ul>
  );
}

function TreeNode({ job }: { job: JobJson }) {
  const [open, setOpen] = useState(false);
  const kids = useLoad(() => (open ? get<JobPageJson>('jobs', { parentId: job.id, order: 'asc', limit: '100' }) : Promise.resolve(undefined)), [open, job.id]);
  return (
    <li>
      <button type="button" class="toggle" aria-expanded={open} aria-label={`${open ? 'Close' : 'Open'} sub-jobs of ${job.id}`} onClick={() => setOpen(!open)}>
        {open ? '▾' : '▸'}
      </button>{' '}
      <StatusBadge status={job.status} /> <a href={href(`/jobs/${job.id}`)}>{shortId(job.id)}</a> {job.type}
      {job.lastError && <span class="error-cell"> {job.lastError.split('\n', 1)[0]}</span>}
      {open && kids.data !== undefined && (kids.data.jobs.length > 0 ? <Tree page={kids.data} parentId={job.id} /> : <p class="muted">No sub-jobs.</p>)}
    </li>
  );
}

function SignalForm({ id, after }: { id: string; after: () => void }) {
  const { config, notify } = useApp();
  const [name, setName] = useState('');
  const [payload, setPayload] = useState('');
  if (config.readOnly) return null;
  const send = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      const body: { name: string; payload?: unknown } = { name };
      if (payload.trim() !== '') body.payload = JSON.parse(payload) as unknown;
      await post(`jobs/${encodeURIComponent(id)}/signal`, body);
      notify(`Signal ${name} sent`, 'ok');
      after();
    } catch (err) {
      notify(failure(err), 'error');
    }
  };
  return (
    <Section title="Send a signal">
      <form class="filters" onSubmit={(e) => void send(e)}>
        <label>
          Name
          <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} required />
        </label>
        <label>
          Payload (JSON)
          <input value={payload} onInput={(e) => setPayload((e.target as HTMLInputElement).value)} placeholder={json({ ok: true }).replace(/\s+/g, ' ')} />
        </label>
        <button type="submit">Send</button>
      </form>
    </Section>
  );
}
