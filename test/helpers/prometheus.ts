/**
 * Test helper: a Prometheus exporter serving on a free loopback port, for scrapes over real HTTP.
 */
import { createServer } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';

/** A port free on 127.0.0.1 right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Starts an exporter on a free loopback port (another process may take the port first: try again). */
export async function startExporter(): Promise<{ exporter: PrometheusExporter; port: number }> {
  for (let tries = 1; ; tries++) {
    const port = await freePort();
    const exporter = new PrometheusExporter({ host: '127.0.0.1', port, preventServerStart: true });
    try {
      await exporter.startServer();
      return { exporter, port };
    } catch (err) {
      await exporter.shutdown().catch(() => {});
      if (tries >= 5) throw err;
    }
  }
}
