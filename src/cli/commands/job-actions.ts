/**
 * `sdj jobs retry|cancel|delete`: act on one job by id, or on every job matching a filter in
 * batches, with a progress bar on stderr when it is a terminal.
 * @module
 */
import type { Command } from 'commander';
import { TERMINAL_STATUSES } from '../../index.js';
import { queueAction, type CommandContext } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { plural, table } from '../format.js';
import { progressBar } from '../progress.js';
import { addFilterOptions, filterFrom, hasFilter } from './job-filter.js';

type Action = 'retry' | 'cancel' | 'delete';

/** Skipped jobs listed in human output (all of them are in `--json`). */
const SKIPS_SHOWN = 20;

const WORDS: Record<Action, { done: string; doing: string }> = {
  retry: { done: 'Retried', doing: 'retrying' },
  cancel: { done: 'Cancelled', doing: 'cancelling' },
  delete: { done: 'Deleted', doing: 'deleting' },
};

/** Adds `jobs retry`, `jobs cancel` and `jobs delete` to the `jobs` command. */
export function registerJobActions(jobs: Command): void {
  const retry = jobs
    .command('retry')
    .argument('[id]', 'the job to retry (or use the filter options)')
    .summary('Retry a failed job, or many by filter.')
    .description('Run failed or cancelled jobs again: one by id, or every one matching the filter options. A retried job starts over unless --from-failed-step keeps its workflow checkpoints.')
    .option('--from-failed-step', 'keep the workflow checkpoints and resume at the step that failed (one job id only)');
  addFilterOptions(retry, 'only jobs in these statuses: failed, cancelled (default: both)')
    .addHelpText('after', '\nExamples:\n  $ sdj jobs retry 0190a1b2-...\n  $ sdj jobs retry 0190a1b2-... --from-failed-step\n  $ sdj jobs retry --status failed --queue emails --type send-email')
    .action(queueAction(act('retry'), { check: checkUsage('retry') }));

  const cancel = jobs
    .command('cancel')
    .argument('[id]', 'the job to cancel (or use the filter options)')
    .summary('Cancel a job, or many by filter.')
    .description('Cancel unfinished jobs with their whole fan-out subtree: one by id, or every one matching the filter options. Running handlers see their abort signal at the next heartbeat.');
  addFilterOptions(cancel, 'only jobs in these statuses: pending, running, waiting, paused (default: all four)')
    .addHelpText('after', '\nExamples:\n  $ sdj jobs cancel 0190a1b2-...\n  $ sdj jobs cancel --status pending --type send-newsletter')
    .action(queueAction(act('cancel'), { check: checkUsage('cancel') }));

  const del = jobs
    .command('delete')
    .argument('[id]', 'the job to delete (or use the filter options)')
    .summary('Delete a finished job, or many by filter.')
    .description('Delete finished jobs with their sub-jobs, checkpoints and signals: one by id, or every one matching the filter options. Unfinished jobs, and sub-jobs of an unfinished workflow, are left alone.');
  addFilterOptions(del, 'only jobs in these statuses: completed, failed, cancelled (default: all three)')
    .addHelpText('after', '\nExamples:\n  $ sdj jobs delete 0190a1b2-...\n  $ sdj jobs delete --status completed --queue emails')
    .action(queueAction(act('delete'), { check: checkUsage('delete') }));
}

/** One job id or a filter, never both and never neither (a bare `jobs delete` acting on everything would be a trap). */
function checkUsage(action: Action): (args: string[], options: Record<string, unknown>) => void {
  return ([id], options) => {
    const filtered = hasFilter(options);
    if (id !== undefined && filtered) throw new UsageError(`jobs ${action}: give a job id or filter options, not both`);
    if (id === undefined && !filtered) throw new UsageError(`jobs ${action}: give a job id, or filter options such as --status to act on many jobs`);
    if (id === undefined && options['fromFailedStep'] === true) throw new UsageError('jobs retry: --from-failed-step applies to one job id only');
  };
}

function act(action: Action): (ctx: CommandContext, args: string[], options: Record<string, unknown>) => Promise<void> {
  return async (ctx, [id], options) => (id === undefined ? bulk(ctx, action, options) : one(ctx, action, id, options));
}

async function one({ queue, out }: CommandContext, action: Action, id: string, options: Record<string, unknown>): Promise<void> {
  if (action === 'retry') {
    const fromFailedStep = options['fromFailedStep'] === true;
    await queue.retryJob(id, fromFailedStep ? { fromFailedStep } : {});
    if (out.json) return out.printJson({ id, action, done: true, fromFailedStep });
    return out.print(`Retried job ${id}${fromFailedStep ? ' from its failed step' : ''}.`);
  }
  if (action === 'delete') {
    await queue.deleteJob(id);
    if (out.json) return out.printJson({ id, action, done: true });
    return out.print(`Deleted job ${id}.`);
  }
  const before = await queue.getJob(id);
  if (before === undefined) throw new CliError(`job ${id} not found`);
  if (TERMINAL_STATUSES.includes(before.status)) {
    if (out.json) return out.printJson({ id, action, done: false, status: before.status });
    return out.print(`Job ${id} is already ${before.status}; nothing to cancel.`);
  }
  await queue.cancelJob(id);
  if (out.json) return out.printJson({ id, action, done: true });
  out.print(`Cancelled job ${id}.`);
}

async function bulk({ queue, out }: CommandContext, action: Action, options: Record<string, unknown>): Promise<void> {
  const filter = filterFrom(options, out.now);
  const bar = progressBar(out.stderr, WORDS[action].doing);
  const opts = bar.update === undefined ? {} : { onProgress: bar.update };
  let outcome: Awaited<ReturnType<typeof queue.retryJobs>>;
  try {
    if (action === 'retry') outcome = await queue.retryJobs(filter, opts);
    else if (action === 'cancel') outcome = await queue.cancelJobs(filter, opts);
    else outcome = await queue.deleteJobs(filter, opts);
  } finally {
    bar.clear();
  }
  if (out.json) return out.printJson({ action, count: outcome.count, skipped: outcome.skipped });
  const n = outcome.skipped.length;
  out.print(`${WORDS[action].done} ${plural(outcome.count, 'job')}${n > 0 ? `; ${n} left alone:` : '.'}`);
  if (n === 0) return;
  const rows = outcome.skipped.slice(0, SKIPS_SHOWN).map((s) => [s.id, s.reason]);
  out.print(table([{ header: 'ID' }, { header: 'WHY' }], rows, out.style));
  if (n > SKIPS_SHOWN) out.print(out.style('dim', `… and ${n - SKIPS_SHOWN} more (--json lists them all)`));
}
