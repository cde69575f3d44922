/**
 * `sdj dashboard`: serves the browser dashboard (`simple-durable-jobs/dashboard`) for the
 * database, without authorization, so only on a loopback address unless `--insecure` says
 * otherwise; stops cleanly on SIGINT / SIGTERM.
 * @module
 */
import { createServer } from 'node:http';
import { isIP } from 'node:net';
import { InvalidArgumentError as OptionValueError, Option, type Command } from 'commander';
import { queueAction } from '../context.js';
import { CliError, UsageError } from '../errors.js';

/** `--port`: 0 (any free port) to 65535. */
function parsePort(text: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n > 65_535) throw new OptionValueError('expected a port number from 0 to 65535');
  return n;
}

/** Whether a host name or address only reaches this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

/** The URL to print for a bound address. */
function urlOf(host: string, port: number): string {
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}/`;
}

/** Adds `sdj dashboard` to the program. */
export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .summary('Serve the browser dashboard for this database.')
    .description(
      'Serve the browser dashboard (jobs, workflows, queues, schedules, workers; retry, cancel, pause...) for this database until Ctrl-C. It has no login: it binds to 127.0.0.1 unless --host names another address, which needs --insecure. See docs/dashboard.md.',
    )
    .addOption(new Option('--port <port>', 'the TCP port (0: any free port)').argParser(parsePort).default(4000))
    .option('--host <host>', 'the address to listen on', '127.0.0.1')
    .option('--insecure', 'allow a --host that other machines can reach (anyone who reaches it can act on your jobs)')
    .option('--read-only', 'refuse every action; show no action controls')
    .addHelpText('after', '\nExamples:\n  $ sdj --db jobs.db dashboard\n  $ sdj --db postgres://localhost/app dashboard --port 8080\n  $ sdj dashboard --host 0.0.0.0 --insecure   # behind your own firewall or proxy')
    .action(
      queueAction(
        async ({ queue, out }, _args, options) => {
          const host = options['host'] as string;
          const { dashboard } = await import('../../dashboard/index.js');
          // No login: on loopback, answer only loopback names, so no other site can rebind its own name here.
          const allowedHosts = isLoopback(host) ? ['localhost', '.localhost', '127.0.0.1', '[::1]', ...(isIP(host) === 4 ? [host] : [])] : undefined;
          const ui = dashboard(queue, { insecure: true, readOnly: options['readOnly'] === true, ...(allowedHosts === undefined ? {} : { allowedHosts }) });
          const server = createServer(ui.node);
          await new Promise<void>((resolve, reject) => {
            server.once('error', (e: NodeJS.ErrnoException) => reject(new CliError(`cannot listen on ${host}:${String(options['port'])}: ${e.code ?? e.message}`)));
            server.listen(options['port'] as number, host, resolve);
          });
          const address = server.address();
          const url = urlOf(host, typeof address === 'object' && address !== null ? address.port : (options['port'] as number));
          if (out.json) out.printJson({ url });
          else out.print(`Dashboard: ${url} (Ctrl-C to stop)`);
          await new Promise<void>((resolve) => {
            process.once('SIGINT', resolve);
            process.once('SIGTERM', resolve);
          });
          ui.close();
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
        },
        {
          check: (_args, options) => {
            const host = options['host'] as string;
            if (!isLoopback(host) && options['insecure'] !== true) {
              throw new UsageError(`refusing to serve the dashboard, which has no login, on ${host}: other machines could reach it (use a loopback address such as 127.0.0.1, or pass --insecure)`);
            }
          },
        },
      ),
    );
}
