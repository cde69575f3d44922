/**
 * `sdj patches`: where each `ctx.patched` change of each workflow stands, and whether the old
 * branch may be removed from the code yet.
 * @module
 */
import { InvalidArgumentError as OptionValueError, Option, type Command } from 'commander';
import type { PatchStatus } from '../../index.js';
import { queueAction } from '../context.js';
import { plural, relativeTime, table } from '../format.js';

/** The verdict column: plain words, for people. */
function verdict(s: PatchStatus): string {
  if (s.safeToRemoveOldBranch) return 'safe to remove the old branch';
  const n = s.inFlightOld + s.inFlightPredating;
  return `not yet: ${plural(n, 'in-flight run')} may take the old branch`;
}

/** `--deployed-at`: an ISO 8601 time. */
function parseDeployedAt(value: string): Date {
  const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(at.getTime())) throw new OptionValueError('expected an ISO 8601 time such as 2024-05-01T12:00:00Z');
  return at;
}

/** Adds `sdj patches` to the program. */
export function registerPatches(program: Command): void {
  program
    .command('patches')
    .summary('Show each ctx.patched change: runs on each branch, and whether the old branch can go.')
    .description(
      [
        'Show, per workflow type and patch id, what runs answered ctx.patched(id): in-flight runs that took the new branch and the old one,',
        'in-flight runs created before the patch was first recorded that have not reached it yet (old code may have recorded them past it),',
        'runs of any status on each branch, and the verdict: the old branch may be removed from the code once no in-flight run took it or may still take it.',
      ].join(' '),
    )
    .option('--type <type>', 'only this workflow (job type)')
    .option('--patch <id>', 'only this patch id')
    .addOption(
      new Option(
        '--deployed-at <time>',
        'when the deploy of the patch ended (ISO 8601): in-flight runs created before it that have not answered count as "not asked yet" (default: when the patch was first recorded; give it after a rolling deploy)',
      ).argParser(parseDeployedAt),
    )
    .addHelpText('after', '\nExamples:\n  $ sdj patches\n  $ sdj patches --type process-order --patch send-sms\n  $ sdj patches --type process-order --deployed-at 2024-05-01T12:00:00Z\n  $ sdj patches --type process-order --patch send-sms --json | jq -e ".patches[0].safeToRemoveOldBranch"')
    .action(
      queueAction(async ({ queue, out }, _args, options) => {
        const type = options['type'] as string | undefined;
        const patch = options['patch'] as string | undefined;
        const deployedAt = options['deployedAt'] as Date | undefined;
        const patches = await queue.patchStatus({ ...(type === undefined ? {} : { type }), ...(patch === undefined ? {} : { patch }), ...(deployedAt === undefined ? {} : { deployedAt }) });
        if (out.json) return out.printJson({ patches });
        if (patches.length === 0) {
          const what = [type === undefined ? '' : ` of type ${type}`, patch === undefined ? '' : ` for patch ${patch}`].join('');
          return out.print(`No run${what} has answered ctx.patched yet.`);
        }
        const rows = patches.map((s) => [
          s.type,
          s.patch,
          relativeTime(s.firstRecordedAt, out.now),
          String(s.inFlightNew),
          String(s.inFlightOld),
          String(s.inFlightPredating),
          String(s.recordedNew),
          String(s.recordedOld),
          { text: verdict(s), style: s.safeToRemoveOldBranch ? ('green' as const) : ('yellow' as const) },
        ]);
        out.print(
          table(
            [
              { header: 'TYPE' },
              { header: 'PATCH' },
              { header: 'FIRST RECORDED' },
              { header: 'IN FLIGHT NEW', align: 'right' },
              { header: 'IN FLIGHT OLD', align: 'right' },
              { header: 'NOT ASKED YET', align: 'right' },
              { header: 'ALL NEW', align: 'right' },
              { header: 'ALL OLD', align: 'right' },
              { header: 'VERDICT' },
            ],
            rows,
            out.style,
          ),
        );
      }),
    );
}
