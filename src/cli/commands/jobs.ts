/**
 * `sdj jobs list|show`: look at jobs; the actions (`retry`, `cancel`, `delete`) are in
 * `job-actions.ts`.
 * @module
 */
import { Option, type Command } from 'commander';
import { queueAction, type CommandContext } from '../context.js';
import { SEARCH_NOTE, shownOutput, shownText } from '../encryption.js';
import { CliError } from '../errors.js';
import { compactJson, fields, plural, relativeTime, shorten, statusStyle, table, timeWithRelative } from '../format.js';
import { parseLimit } from '../options.js';
import { registerJobActions } from './job-actions.js';
import { addFilterOptions, filterFrom, jobTable } from './job-filter.js';

/** Sub-jobs shown by `jobs show` (the rest are counted, and listed by `jobs list --parent`). */
const CHILDREN_SHOWN = 100;

/** Adds `sdj jobs list|show|retry|cancel|delete` to the program. */
export function registerJobs(program: Command): void {
  const jobs = program
    .command('jobs')
    .summary('List, show, retry, cancel and delete jobs.')
    .description('List, inspect, retry, cancel and delete jobs, one by id or many by filter.')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ sdj jobs list --status failed --queue emails',
        '  $ sdj jobs show 0190a1b2-...',
        '  $ sdj jobs retry --status failed --queue emails',
        '  $ sdj jobs retry 0190a1b2-... --from-failed-step',
        '  $ sdj jobs cancel --status pending --type send-newsletter',
        '  $ sdj jobs delete --status completed --queue emails',
      ].join('\n'),
    );

  const list = jobs
    .command('list')
    .summary('List jobs, newest first, with filters and pages.')
    .description('List jobs, newest first, filtered by status, queue, type, tenant, parent or a text in the last error. Long listings come in pages: pass the printed --cursor to see the next one.');
  addFilterOptions(list, 'only jobs in these statuses, comma-separated (pending, running, waiting, paused, completed, failed, cancelled)')
    .addOption(new Option('--limit <n>', 'jobs per page, 1 to 500').argParser(parseLimit).default(50))
    .option('--cursor <cursor>', 'continue after the page that printed this cursor')
    .option('--asc', 'oldest first')
    .addHelpText('after', '\nExamples:\n  $ sdj jobs list --status failed,cancelled --queue emails\n  $ sdj jobs list --search timeout --since 1h\n  $ sdj jobs list --parent 0190a1b2-... --json')
    .action(queueAction(listJobs));

  jobs
    .command('show')
    .argument('<id>', 'the job id')
    .summary('Show a job with its steps and sub-jobs.')
    .description('Show one job in full: status, attempts, times, args, result, last error, its workflow steps (checkpoints) and its sub-jobs.')
    .addHelpText('after', '\nExamples:\n  $ sdj jobs show 0190a1b2-...\n  $ sdj jobs show 0190a1b2-... --json | jq .steps')
    .action(queueAction(showJob));

  registerJobActions(jobs);
}

async function listJobs({ queue, out }: CommandContext, _args: string[], options: Record<string, unknown>): Promise<void> {
  const cursor = options['cursor'] as string | undefined;
  const page = await queue.listJobs({
    ...filterFrom(options, out.now),
    limit: options['limit'] as number,
    order: options['asc'] === true ? 'asc' : 'desc',
    ...(cursor === undefined ? {} : { cursor }),
  });
  if (out.json) return out.printJson(page);
  if (page.jobs.length === 0) return out.print(cursor === undefined ? 'No jobs match.' : 'No more jobs.');
  out.print(jobTable(page.jobs, out.now, out.style));
  // Without the keys, --search runs against ciphertext: say so when the listing shows it.
  if (options['search'] !== undefined && page.jobs.some((j) => shownText(j.lastError) !== j.lastError)) out.print(out.style('dim', SEARCH_NOTE));
  if (page.nextCursor !== undefined) out.print(`\n${out.style('dim', `More jobs: add --cursor ${page.nextCursor}`)}`);
}

async function showJob({ queue, out }: CommandContext, [id]: string[]): Promise<void> {
  const jobId = id ?? '';
  const job = await queue.getJob(jobId);
  if (job === undefined) throw new CliError(`job ${jobId} not found`);
  const [steps, kids, row] = await Promise.all([queue.getSteps(jobId), queue.listJobs({ parentId: jobId, limit: CHILDREN_SHOWN, order: 'asc' }), queue.storage.jobGet({ id: jobId })]);
  const more = kids.nextCursor !== undefined;
  if (out.json) return out.printJson({ job, steps, children: kids.jobs, moreChildren: more });
  const s = out.style;
  const now = out.now;
  const meta = Object.keys(job.meta).length > 0 ? compactJson(job.meta) : undefined;
  out.print(`${s('bold', `Job ${job.id}`)}  ${job.type}`);
  out.print(
    fields(
      [
        ['status', s(statusStyle(job.status), job.status)],
        ['attempt', `${job.attempt} of ${job.maxRetries + 1}`],
        ['queue', job.queue],
        ['priority', String(job.priority)],
        ['tenant', job.tenant],
        ['parent', job.parentId],
        ['unique', job.unique],
        ['timeout', job.timeout === undefined ? undefined : `${job.timeout} ms`],
        ['created', timeWithRelative(job.createdAt, now)],
        ['run at', timeWithRelative(job.runAt, now)],
        ['started', timeWithRelative(job.startedAt, now)],
        ['finished', timeWithRelative(job.completedAt, now)],
        // A payload left out because it could not be decoded shows what encoded it.
        ['args', job.args === undefined && row?.argsJson != null ? shownText(row.argsJson) : compactJson(job.args)],
        ['result', job.result === undefined && row?.resultJson != null ? shownText(row.resultJson) : compactJson(job.result)],
        ['meta', meta],
        ['last error', job.lastError === undefined ? undefined : s('red', (shownText(job.lastError) ?? '').split('\n').join('\n    '))],
      ],
      s,
    ),
  );
  if (steps.length > 0) {
    out.print(`\n${s('bold', `Steps (${steps.length})`)}`);
    const rows = steps.map((st) => [
      String(st.index),
      st.name,
      { text: st.status, style: statusStyle(st.status) },
      relativeTime(st.at, now),
      st.error !== undefined ? shorten(shownText(st.error), 70) : shorten(shownOutput(st.output), 70),
    ]);
    out.print(table([{ header: '#', align: 'right' }, { header: 'NAME' }, { header: 'STATUS' }, { header: 'AT' }, { header: 'OUTPUT / ERROR' }], rows, s));
  }
  if (kids.jobs.length > 0) {
    out.print(`\n${s('bold', `Sub-jobs (${more ? `first ${kids.jobs.length}` : kids.jobs.length})`)}`);
    const rows = kids.jobs.map((k) => [k.id, k.type, { text: k.status, style: statusStyle(k.status) }, `${k.attempt}/${k.maxRetries + 1}`, relativeTime(k.createdAt, now), shorten(shownText(k.lastError), 50)]);
    out.print(table([{ header: 'ID' }, { header: 'TYPE' }, { header: 'STATUS' }, { header: 'ATTEMPT', align: 'right' }, { header: 'CREATED' }, { header: 'LAST ERROR' }], rows, s));
    if (more) out.print(s('dim', `More sub-jobs: sdj jobs list --parent ${job.id} (${plural(CHILDREN_SHOWN, 'job')} shown)`));
  }
}
