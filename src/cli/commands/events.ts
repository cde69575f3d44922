/**
 * `sdj events`: follows the job events of the whole fleet as they happen (every process's
 * enqueues, starts, completions, retries, failures, progress, ...), read from the database's
 * change feed (`queue.events({ fleet: true })`), until interrupted or `--count` events were shown.
 * @module
 */
import { InvalidArgumentError as OptionValueError, Option, type Command } from 'commander';
import type { FleetEvent } from '../../index.js';
import { queueAction } from '../context.js';

/** Most events one `--count` may ask for. */
const MAX_COUNT = 1_000_000;

/** `--count`: a whole number from 1 to {@link MAX_COUNT}. */
function parseCount(text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_COUNT) throw new OptionValueError(`expected a whole number from 1 to ${MAX_COUNT}`);
  return n;
}

/** The queue and job type an event is about, when it names them. */
function subjectOf(e: FleetEvent): { queue?: string | undefined; type?: string | undefined; jobId?: string | undefined } {
  if (e.type === 'events.gap') return {};
  if ('job' in e) return { queue: e.job.queue, type: e.job.type, jobId: e.job.id };
  const named = e as { queue?: string; jobType?: string; jobId?: string };
  return { queue: named.queue, type: named.jobType, jobId: named.jobId };
}

/** One line for people: time, event, job, type@queue, and what else the event says. */
function line(e: FleetEvent): string {
  const at = e.at instanceof Date ? e.at.toISOString() : String(e.at);
  if (e.type === 'events.gap') return `${at}  events.gap      ${e.missed} event(s) missed (${e.reason})`;
  const s = subjectOf(e);
  const where = s.type !== undefined || s.queue !== undefined ? `  ${s.type ?? '?'}@${s.queue ?? '?'}` : '';
  const extra: string[] = [];
  const more = e as { error?: string; value?: number; message?: string | null; status?: string };
  if (more.value !== undefined) extra.push(`${Math.round(more.value * 1000) / 10}%${more.message ? ` ${more.message}` : ''}`);
  if (more.status !== undefined) extra.push(more.status);
  if (more.error !== undefined) extra.push(more.error.split('\n', 1)[0]!.slice(0, 200));
  return `${at}  ${e.type.padEnd(14)}  ${s.jobId ?? ''}${where}${extra.length ? `  ${extra.join(' ')}` : ''}`;
}

/** Adds `sdj events` to the program. */
export function registerEvents(program: Command): void {
  program
    .command('events')
    .summary("Follow the fleet's job events as they happen.")
    .description(
      "Follow the job events of every process on this database as they happen (enqueued, started, completed, retrying, failed, suspended, reclaimed, released, cancelled, progress), until Ctrl-C or --count events were shown. Events before the command started are not shown. With --json, one JSON object per line. Workers start sharing their events within a few seconds of the command's start (see docs/observability.md, \"Fleet events\").",
    )
    .option('--queue <queue>', 'only events of jobs of this queue (events that name no queue, such as job.cancelled, are left out)')
    .option('--type <type>', 'only events of jobs of this type (likewise)')
    .addOption(new Option('--count <n>', `stop after this many events shown (1 to ${MAX_COUNT})`).argParser(parseCount))
    .addHelpText('after', '\nExamples:\n  $ sdj --db jobs.db events\n  $ sdj events --queue emails --json | jq .type\n  $ sdj events --type resize --count 10')
    .action(
      queueAction(async ({ queue, out }, _args, options) => {
        const only = { queue: options['queue'] as string | undefined, type: options['type'] as string | undefined };
        const count = options['count'] as number | undefined;
        if (!out.json) out.stderr.write("Following the fleet's job events (Ctrl-C to stop)...\n");
        const stream = queue.events({ fleet: true });
        const stop = (): void => void stream.return?.();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        let shown = 0;
        try {
          for await (const e of stream) {
            const s = subjectOf(e);
            if (only.queue !== undefined && s.queue !== only.queue) continue;
            if (only.type !== undefined && s.type !== only.type) continue;
            if (out.json) process.stdout.write(`${JSON.stringify(e)}\n`);
            else out.print(line(e));
            if (count !== undefined && ++shown >= count) break;
          }
        } finally {
          process.removeListener('SIGINT', stop);
          process.removeListener('SIGTERM', stop);
        }
      }),
    );
}
