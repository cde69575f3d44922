/** The throughput chart (uPlot): completions, failures and retries per 10 s. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { SeriesJson } from '../api.js';

function colour(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

/** A line chart of the series; redrawn when it changes. */
export function ThroughputChart({ series }: { series: SeriesJson }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const data: uPlot.AlignedData = [series.at.map((t) => t / 1000), series.completed, series.failed, series.retried];
  useEffect(() => {
    const el = box.current;
    if (el === null) return;
    const axis = { stroke: colour('--fg'), grid: { stroke: colour('--grid') }, ticks: { stroke: colour('--grid') } };
    plot.current = new uPlot(
      {
        width: Math.max(320, el.clientWidth),
        height: 220,
        series: [
          {},
          { label: 'completed', stroke: colour('--ok'), width: 2 },
          { label: 'failed', stroke: colour('--bad'), width: 2 },
          { label: 'retried', stroke: colour('--warn'), width: 1 },
        ],
        axes: [axis, axis],
        scales: { x: { time: true } },
      },
      data,
      el,
    );
    const resize = (): void => plot.current?.setSize({ width: Math.max(320, el.clientWidth), height: 220 });
    addEventListener('resize', resize);
    return () => {
      removeEventListener('resize', resize);
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, []);
  useEffect(() => plot.current?.setData(data), [series]);
  return <div class="chart" ref={box} role="img" aria-label="Jobs completed, failed and retried per 10 seconds" />;
}
