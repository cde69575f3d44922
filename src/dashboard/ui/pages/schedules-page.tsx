/** Schedules: spec, next and last fire (local time and relative), overdue mark. */
import { get, type ScheduleJson } from '../api.js';
import { LoadState, When } from '../components.js';
import { shortId } from '../format.js';
import { useLoad } from '../hooks.js';
import { useLiveVersion } from '../live.js';
import { href } from '../router.js';

/** The schedules page. */
export function SchedulesPage() {
  const version = useLiveVersion();
  const list = useLoad(() => get<{ schedules: ScheduleJson[] }>('schedules'), [version]);
  return (
    <div>
      <h1>Schedules</h1>
      <LoadState error={list.error} loading={list.data === undefined} />
      {list.data && list.data.schedules.length === 0 && <p class="muted">No schedules.</p>}
      {list.data && list.data.schedules.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Job type</th>
              <th scope="col">When</th>
              <th scope="col">Queue</th>
              <th scope="col">Next fire</th>
              <th scope="col">Last fire</th>
              <th scope="col">Last job</th>
            </tr>
          </thead>
          <tbody>
            {list.data.schedules.map((s) => (
              <tr key={s.name} data-schedule={s.name}>
                <th scope="row">{s.name}</th>
                <td>{s.type}</td>
                <td>{s.description}</td>
                <td>{s.options.queue ?? 'default'}</td>
                <td class="next-fire">
                  <When at={s.nextRunAt} exact />{' '}
                  {s.overdue && (
                    <span class="badge st-failed" title="The next fire time passed over a minute ago: is a worker with the scheduler running (worker option scheduler: true)?">
                      overdue
                    </span>
                  )}
                </td>
                <td>
                  <When at={s.lastRunAt} exact />
                </td>
                <td>{s.lastJobId ? <a href={href(`/jobs/${s.lastJobId}`)}>{shortId(s.lastJobId)}</a> : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
