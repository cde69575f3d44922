/**
 * Test helper for OpenTelemetry metrics: a pull reader whose `collect()` a test calls itself,
 * and lookups of one data point by metric name and attributes.
 */
import { DataPointType, MeterProvider, MetricReader, type Histogram, type ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** A reader that collects only when the test asks (no timer). */
export class ManualReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** A meter provider with one manual reader. */
export function manualMetrics(): { provider: MeterProvider; reader: ManualReader } {
  const reader = new ManualReader();
  return { provider: new MeterProvider({ readers: [reader] }), reader };
}

/** One collection: the data points by metric name, and the errors the SDK reported. */
export interface Collected {
  /** A counter's or gauge's value for exactly these attributes (undefined when absent). */
  value(name: string, attrs: Record<string, string>): number | undefined;
  /** A histogram's point for exactly these attributes (undefined when absent). */
  histogram(name: string, attrs: Record<string, string>): Histogram | undefined;
  /** Every data point's attributes of a metric. */
  points(name: string): Record<string, unknown>[];
  /** Every metric name collected. */
  names(): string[];
  /** Errors of the collection (a callback that threw or timed out). */
  errors: unknown[];
}

/** Collects once. */
export async function collect(reader: MetricReader): Promise<Collected> {
  const { resourceMetrics, errors } = await reader.collect();
  const metrics = metricsOf(resourceMetrics);
  const find = (name: string, attrs: Record<string, string>) => {
    const m = metrics.get(name);
    const p = m?.dataPoints.find((d) => sameAttrs(d.attributes, attrs));
    return p === undefined ? undefined : { type: m!.dataPointType, value: p.value };
  };
  return {
    errors,
    value(name, attrs) {
      const p = find(name, attrs);
      if (p === undefined) return undefined;
      if (p.type === DataPointType.HISTOGRAM) throw new Error(`${name} is a histogram`);
      return p.value as number;
    },
    histogram(name, attrs) {
      const p = find(name, attrs);
      if (p === undefined) return undefined;
      if (p.type !== DataPointType.HISTOGRAM) throw new Error(`${name} is not a histogram`);
      return p.value as Histogram;
    },
    points: (name) => (metrics.get(name)?.dataPoints ?? []).map((d) => ({ ...d.attributes })),
    names: () => [...metrics.keys()],
  };
}

interface AnyMetric {
  dataPointType: DataPointType;
  dataPoints: { attributes: Record<string, unknown>; value: unknown }[];
}

function metricsOf(rm: ResourceMetrics): Map<string, AnyMetric> {
  const out = new Map<string, AnyMetric>();
  for (const scope of rm.scopeMetrics) for (const m of scope.metrics) out.set(m.descriptor.name, m as unknown as AnyMetric);
  return out;
}

function sameAttrs(a: Record<string, unknown>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
