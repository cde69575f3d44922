/** The overview: counts per status, the queues, and throughput over time. */
import { get, STATUSES, type SeriesJson } from '../api.js';
import { countText } from '../count-text.js';
import { LoadState, Section } from '../components.js';
import { useLoad } from '../hooks.js';
import { useLive, useLiveVersion } from '../live.js';
import { href } from '../router.js';
import { ThroughputChart } from './chart.js';
import { QueuesTable } from './queues-page.js';

/** The overview page. */
export function OverviewPage() {
  const live = useLive();
  const version = useLiveVersion();
  const series = useLoad(() => get<{ series: SeriesJson }>('overview').then((o) => o.series), [version]);
  return (
    <div>
      <h1>Overview</h1>
      <div class="counts">
        {STATUSES.map((s) => (
          <a class={`count st-${s}`} href={href('/jobs', { status: s })} key={s}>
            <span class="n" title={live && live.stats[s] > live.countCap ? `More than ${countText(live.countCap, undefined)}: counts stop there` : undefined}>
              {live ? countText(live.stats[s], live.countCap) : '…'}
            </span>
            <span class="label">{s}</span>
          </a>
        ))}
      </div>
      <Section title="Throughput (since this dashboard started watching)">
        <LoadState error={series.error} loading={series.data === undefined} />
        {series.data && <ThroughputChart series={series.data} />}
      </Section>
      <Section title="Queues">{live ? <QueuesTable queues={live.queues} /> : <p class="muted">Loading…</p>}</Section>
    </div>
  );
}
