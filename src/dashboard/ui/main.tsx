/**
 * The dashboard's front end: loads the config, then shows the view the hash names. Built by
 * scripts/build-dashboard-ui.mjs into dist/dashboard/ui/ (app.js, app.css).
 */
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { get, type ConfigJson } from './api.js';
import { App } from './components.js';
import { useConnection } from './live.js';
import { JobPage } from './pages/job-page.js';
import { JobsPage } from './pages/jobs-page.js';
import { OverviewPage } from './pages/overview-page.js';
import { QueuesPage } from './pages/queues-page.js';
import { SchedulesPage } from './pages/schedules-page.js';
import { WorkersPage } from './pages/workers-page.js';
import { href, useRoute, type Route } from './router.js';

const NAV: [path: string, label: string][] = [
  ['/', 'Overview'],
  ['/jobs', 'Jobs'],
  ['/queues', 'Queues'],
  ['/schedules', 'Schedules'],
  ['/workers', 'Workers'],
];

function View({ route }: { route: Route }) {
  const id = jobIdOf(route.path);
  if (id !== undefined) return <JobPage id={id} />;
  switch (route.path) {
    case '/':
      return <OverviewPage />;
    case '/jobs':
      return <JobsPage route={route} />;
    case '/queues':
      return <QueuesPage />;
    case '/schedules':
      return <SchedulesPage />;
    case '/workers':
      return <WorkersPage />;
    default:
      return <p>No such view. <a href={href('/')}>Overview</a></p>;
  }
}

/** The live stream's state, announced politely when it changes (and the last read's failure). */
function LiveState() {
  const { connection, error } = useConnection();
  const [text, kind] =
    connection === 'lost'
      ? ['Live updates lost, reconnecting…', 'bad']
      : connection === 'connecting'
        ? ['Connecting…', 'wait']
        : error !== undefined
          ? [`Live, but the last refresh failed: ${error}`, 'bad']
          : ['Live', 'ok'];
  return (
    <p class={`live live-${kind}`} role="status" aria-live="polite">
      {text}
    </p>
  );
}

interface Notice {
  id: number;
  text: string;
  kind: 'ok' | 'error';
}

function Root() {
  const route = useRoute();
  const [config, setConfig] = useState<ConfigJson | undefined>(undefined);
  const [failed, setFailed] = useState<string | undefined>(undefined);
  const [notices, setNotices] = useState<Notice[]>([]);
  useEffect(() => {
    get<ConfigJson>('config').then(setConfig, (e: unknown) => setFailed(e instanceof Error ? e.message : String(e)));
  }, []);
  const notify = useCallback((text: string, kind: 'ok' | 'error' = 'ok') => {
    const id = Date.now() + Math.random();
    setNotices((n) => [...n.slice(-3), { id, text, kind }]);
    setTimeout(() => setNotices((n) => n.filter((x) => x.id !== id)), kind === 'error' ? 10_000 : 4000);
  }, []);
  const section = route.path === '/' ? '/' : `/${route.path.split('/')[1] ?? ''}`;
  return (
    <>
      <button type="button" class="skip" onClick={() => document.getElementById('main')?.focus()}>
        Skip to content
      </button>
      <header>
        <strong class="brand">Jobs</strong>
        <nav aria-label="Views">
          {NAV.map(([path, label]) => (
            <a href={href(path)} key={path} aria-current={section === path ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        {config?.readOnly && <span class="badge">read-only</span>}
        {config && <LiveState />}
      </header>
      <main id="main" tabIndex={-1}>
        {failed !== undefined && <p class="error" role="alert">The dashboard could not load: {failed}</p>}
        {config && (
          <App.Provider value={{ config, notify }}>
            <View route={route} />
          </App.Provider>
        )}
      </main>
      <div class="notices" role="status" aria-live="polite">
        {notices.map((n) => (
          <p key={n.id} class={`notice ${n.kind}`}>
            {n.text}
          </p>
        ))}
      </div>
    </>
  );
}

render(<Root />, document.getElementById('app')!);

/** The job id of a `/jobs/<id>` route; undefined for other routes and ids no job can have (`.`, `..`, bad escapes). */
function jobIdOf(path: string): string | undefined {
  const raw = /^\/jobs\/([^/]+)$/.exec(path)?.[1];
  if (raw === undefined) return undefined;
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  return id === '.' || id === '..' || id.includes('/') ? undefined : id;
}
