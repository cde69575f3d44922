/**
 * `sdj queues pause|resume <queue>`: stop or restart claiming from a queue, fleet-wide.
 * @module
 */
import type { Command } from 'commander';
import { queueAction, type CommandContext } from '../context.js';

/** Adds `sdj queues pause` and `sdj queues resume` to the program. */
export function registerQueues(program: Command): void {
  const queues = program
    .command('queues')
    .summary('Pause or resume a queue for every worker.')
    .description('Pause or resume a queue for every worker on this database.')
    .addHelpText('after', '\nExamples:\n  $ sdj queues pause emails\n  $ sdj queues resume emails\n\nSee `sdj status` for the depth of every queue.');
  queues
    .command('pause')
    .argument('<queue>', 'the queue name')
    .summary('Stop workers from claiming from a queue.')
    .description('Stop every worker from claiming jobs of the queue. Running jobs go on; enqueues are still accepted.')
    .addHelpText('after', '\nExample:\n  $ sdj --db jobs.db queues pause emails')
    .action(queueAction(async (ctx, [name]: [string]) => setPaused(ctx, name, true)));
  queues
    .command('resume')
    .argument('<queue>', 'the queue name')
    .summary('Let workers claim from a paused queue again.')
    .description('Let workers claim jobs of a paused queue again.')
    .addHelpText('after', '\nExample:\n  $ sdj --db jobs.db queues resume emails')
    .action(queueAction(async (ctx, [name]: [string]) => setPaused(ctx, name, false)));
}

async function setPaused({ queue, out }: CommandContext, name: string, paused: boolean): Promise<void> {
  if (paused) await queue.pauseQueue(name);
  else await queue.resumeQueue(name);
  if (out.json) out.printJson({ queue: name, paused });
  else out.print(`${paused ? 'Paused' : 'Resumed'} queue ${name}.`);
}
