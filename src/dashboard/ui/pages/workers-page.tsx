/** Live workers of the fleet. */
import { get, type WorkerJson } from '../api.js';
import { LoadState, When } from '../components.js';
import { useLoad } from '../hooks.js';
import { useLiveVersion } from '../live.js';

/** The workers page. */
export function WorkersPage() {
  const version = useLiveVersion();
  const list = useLoad(() => get<{ workers: WorkerJson[] }>('workers'), [version]);
  return (
    <div>
      <h1>Workers</h1>
      <LoadState error={list.error} loading={list.data === undefined} />
      {list.data && list.data.workers.length === 0 && <p class="muted">No live workers.</p>}
      {list.data && list.data.workers.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Host</th>
              <th scope="col" class="num">PID</th>
              <th scope="col">Queues</th>
              <th scope="col" class="num">Running</th>
              <th scope="col">Started</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {list.data.workers.map((w) => (
              <tr key={w.id}>
                <td title={w.id}>{w.name}</td>
                <td>{w.host}</td>
                <td class="num">{w.pid}</td>
                <td>{w.queues.join(', ')}</td>
                <td class="num">{w.running}</td>
                <td>
                  <When at={w.startedAt} />
                </td>
                <td>
                  <When at={w.lastSeenAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
