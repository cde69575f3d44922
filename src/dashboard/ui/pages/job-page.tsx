/**
 * One job: its fields, args, result, error, progress, a timeline of its runs, checkpoints with
 * outputs, signals, fan-out children as an expandable tree, and the actions that fit its status.
 * Refreshes itself on live changes. Histories of any size: checkpoints and signals come a page
 * at a time (a pager moves through them), sub-jobs 100 at a time, and a payload too large for
 * the list is fetched whole on demand. A job deleted or pruned while its page is open is said to
 * be gone, and the page stops asking for it.
 */
import { useState } from 'preact/hooks';
import { ApiError, get, post, type JobJson, type JobPageJson, type StepJson } from '../api.js';
import { Action, failure, LoadState, Payload, Section, StatusBadge, useApp, When } from '../components.js';
import { duration, json, shortId } from '../format.js';
import { useLoad } from '../hooks.js';
import { useLiveVersion } from '../live.js';
import { href, navigate } from '../router.js';
import { Pager, WholeValue, type Clip } from './job-parts.js';
import { Signals, type PageSignal } from './job-signals.js';
import { Timeline } from './job-timeline.js';

/** A checkpoint as the job page receives it. */
type PageStep = StepJson & Clip;

/** What `api/jobs/<id>` answers: the job and one page of each of its lists. */
interface Detail {
  job: JobJson;
  steps: PageStep[];
  /** Pass as `stepsAfter` for the next page; absent on the last. */
  stepsNext?: number;
  signals: PageSignal[];
  /** Pass as `signalsAfter` for the next page; absent on the last. */
  signalsNext?: number;
  children: JobPageJson;
}

/** Entries per page of checkpoints or signals (the server's page size). */
const PAGE = 100;

/** Where the page is in each list: the `after` of every page up to the one shown (empty: the first). */
interface Pages {
  id: string;
  steps: number[];
  signals: number[];
}

const hidden = (j: { redacted?: string[] }, field: string): boolean => j.redacted?.includes(field) ?? false;

/** Whether a read failed because the job does not exist (any more). */
const isGone = (e: Error | undefined): boolean => e instanceof ApiError && e.status === 404 && e.code === 'JOB_NOT_FOUND';

/** The job page. */
export function JobPage({ id }: { id: string }) {
  const version = useLiveVersion();
  const [pages, setPages] = useState<Pages>({ id, steps: [], signals: [] });
  const at = pages.id === id ? pages : { id, steps: [], signals: [] };
  const stepsAfter = at.steps[at.steps.length - 1];
  const signalsAfter = at.signals[at.signals.length - 1];
  const [gone, setGone] = useState<string | undefined>(undefined);
  const isGoneNow = gone === id;
  // A job that is gone stays gone (ids are never reused): no more reads on live changes.
  const detail = useLoad(
    () =>
      get<Detail>(`jobs/${encodeURIComponent(id)}`, { stepsAfter: stepsAfter?.toString(), signalsAfter: signalsAfter?.toString() }).catch((e: unknown) => {
        if (isGone(e as Error)) setGone(id);
        throw e;
      }),
    [id, isGoneNow ? -1 : version, stepsAfter, signalsAfter],
  );
  const d = detail.data?.job.id === id ? detail.data : undefined;
  const move = (list: 'steps' | 'signals', to: number[]): void => setPages({ ...at, [list]: to });
  if (isGoneNow) {
    return (
      <div>
        <h1>
          Job <code>{id}</code>
        </h1>
        <p class="error gone" role="alert">
          This job no longer exists: it was deleted, or pruned once its retention age had passed.
        </p>
        <p>
          <a href={href('/jobs')}>Back to the jobs</a>
        </p>
      </div>
    );
  }
  return (
    <div>
      <h1>
        Job <code>{id}</code>
      </h1>
      <LoadState error={detail.error} loading={d === undefined} />
      {d && <JobBody d={d} reload={detail.reload} at={at} move={move} />}
    </div>
  );
}

function JobBody({ d, reload, at, move }: { d: Detail; reload: () => void; at: Pages; move: (list: 'steps' | 'signals', to: number[]) => void }) {
  const j = d.job;
  const path = `jobs/${encodeURIComponent(j.id)}`;
  const finished = j.status === 'completed' || j.status === 'failed' || j.status === 'cancelled';
  const hasSteps = d.steps.length > 0 || at.steps.length > 0;
  const pagerOf = (list: 'steps' | 'signals', next: number | undefined) => {
    const stack = at[list];
    return {
      offset: stack.length * PAGE,
      more: next !== undefined,
      first: () => move(list, []),
      previous: () => move(list, stack.slice(0, -1)),
      next: () => next !== undefined && move(list, [...stack, next]),
    };
  };
  return (
    <>
      <div class="actions" role="group" aria-label="Job actions">
        <StatusBadge status={j.status} />
        {(j.status === 'failed' || j.status === 'cancelled') && <Action label="Retry" run={() => post(`${path}/retry`)} after={reload} />}
        {(j.status === 'failed' || j.status === 'cancelled') && hasSteps && (
          <Action label="Retry from failed step" run={() => post(`${path}/retry`, { fromFailedStep: true })} after={reload} />
        )}
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
      <Timeline
        job={j}
        steps={d.steps}
        signals={d.signals}
        partial={at.steps.length > 0 || at.signals.length > 0 || d.stepsNext !== undefined || d.signalsNext !== undefined}
      />
      {hasSteps && <Steps jobId={j.id} steps={d.steps} pager={pagerOf('steps', d.stepsNext)} />}
      <Signals jobId={j.id} signals={d.signals} pager={pagerOf('signals', d.signalsNext)} />
      {!finished && <SignalForm id={j.id} after={reload} />}
      {d.children.jobs.length > 0 && (
        <Section title="Sub-jobs">
          <Tree page={d.children} parentId={j.id} />
        </Section>
      )}
    </>
  );
}

function Steps({ jobId, steps, pager }: { jobId: string; steps: PageStep[]; pager: { offset: number; more: boolean; first: () => void; previous: () => void; next: () => void } }) {
  const one = (s: PageStep): string => `jobs/${encodeURIComponent(jobId)}/steps/${s.index}`;
  return (
    <Section title="Checkpoints">
      <Pager what="checkpoints" count={steps.length} {...pager} />
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
                {s.error !== undefined ? (
                  s.clipped?.['error'] !== undefined ? (
                    <>
                      <pre class="payload error-text">{s.error}…</pre>
                      <WholeValue size={s.clipped['error']} path={one(s)} pick={(a) => (a as { step: StepJson }).step.error} label={`Error of checkpoint ${s.index}`} text />
                    </>
                  ) : (
                    <pre class="payload error-text">{s.error}</pre>
                  )
                ) : s.clipped?.['output'] !== undefined ? (
                  <WholeValue size={s.clipped['output']} path={one(s)} pick={(a) => (a as { step: StepJson }).step.output} label={`Output of checkpoint ${s.index}`} />
                ) : (
                  <Payload value={s.output} hidden={hidden(s, 'output')} label="Output" />
                )}
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
      const next = await get<JobPageJson>(`jobs/${encodeURIComponent(parentId)}/children`, { cursor: last.nextCursor });
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
          <span class="muted">Showing the first {[page, ...more].reduce((n, p) => n + p.jobs.length, 0)} sub-jobs. </span>
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
  const kids = useLoad(() => (open ? get<JobPageJson>(`jobs/${encodeURIComponent(job.id)}/children`) : Promise.resolve(undefined)), [open, job.id]);
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
    const body: { name: string; payload?: unknown } = { name };
    if (payload.trim() !== '') {
      try {
        body.payload = JSON.parse(payload) as unknown;
      } catch (err) {
        // Nothing is sent: the payload must be JSON.
        notify(`Nothing sent: the payload is not valid JSON (${err instanceof Error ? err.message : String(err)}). Leave it empty to send none.`, 'error');
        return;
      }
    }
    try {
      await post(`jobs/${encodeURIComponent(id)}/signal`, body);
      notify(`Signal ${name} sent`, 'ok');
      setName('');
      setPayload('');
      after();
    } catch (err) {
      notify(failure(err), 'error');
    }
  };
  return (
    <Section title="Send a signal">
      <p class="muted">A signal is kept for the job until a wait of its name consumes it (a job that is not waiting for it yet gets it when it does).</p>
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
