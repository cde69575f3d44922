/**
 * `npm run chaos -- --backend postgres|mysql|sqlite --minutes 2 --seed 42 --workers 4 --scale 1`
 *
 * A seeded torture run of the engine: N worker processes share a fresh database while the
 * orchestrator (this process) feeds them a mixed load — plain, flaky, noRetry, 5-step
 * workflows, fan-outs of 20–50 children (some nested, some failing, under each strategy),
 * durable sleeps, signal waits (it sends the signals), two schedules every worker process
 * defines as it starts, gated jobs, errors with NUL and lone surrogates, bursts of results near
 * the payload cap — cancels some fan-out parents while their children run, acts as an operator
 * (retryJob, pauseJob/resumeJob, pauseQueue/resumeQueue, schedule re-definitions; see
 * operator.ts), and SIGKILLs a random worker every few seconds (restarting it at once); some
 * processes stop a worker during its start first (boot.ts). Job types with fleet-wide
 * concurrency and rate limits (some keyed) and a queue with a queue limit run among the rest,
 * each run recording the interval it held its slot (flow.ts). Finished jobs are pruned as they
 * age (`--retention`, 20 s for completed jobs by default): by the workers' maintenance, and by
 * `queue.prune()` from this process and two pruner processes at once (pruning.ts); a database
 * trigger records every deleted job row (prune-archive.ts). Then it stops the load, lets the
 * workers drain the backlog, stops them, prunes once more alone, and audits the database against
 * the engine's promises (see audit*.ts). Every handler records its runs and side effects in
 * `chaos_effects` in the same database.
 *
 * Exit code: 0 when every invariant held, 1 on any violation, 2 when the run itself failed.
 * The database is dropped afterwards unless `--keep` is given or a violation was found.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Queue } from '../../src/queue/queue.js';
import type { Storage } from '../../src/storage/storage.js';
import { loadAudit } from './audit-data.js';
import { checkBigResults, checkErrorTexts, checkOperatorRetries, checkPauses, checkStops } from './audit-operator.js';
import { checkCancelled, checkKilledRunsRecovered, checkOutcomes, checkOutcomesKept, checkSingleOwner, checkSleeps, checkTerminal, checkWorkers, type Verdict } from './audit.js';
import { checkDeletionsExplained, checkFinalPrune, checkPruneCalls, checkPrunedDue, checkPrunedOnce, checkPrunedWhole } from './audit-prune.js';
import { checkFanOuts, checkSchedule, checkSignals, checkSteps } from './audit-workflows.js';
import { checkConcurrency, checkFlowSetup, checkRate } from './audit-flow.js';
import { createBackend, createEffectsTable, openChaosDb, openStorage, type ChaosDb } from './backend.js';
import { Effects } from './effects.js';
import { RoguePruner } from './fault-prune.js';
import { Fleet } from './fleet.js';
import { createFlowTable, FLOW_TYPES, METERED_LIMITS, METERED_QUEUE, readFlow, registerOptions, storedLimits } from './flow.js';
import { Load } from './load.js';
import { printLogDigest } from './log-digest.js';
import { Operator } from './operator.js';
import { parseOptions, Rng, type ChaosOptions } from './options.js';
import { createPruneArchive } from './prune-archive.js';
import { lastPrune, PruneCrew } from './pruning.js';
import { printFigures, printVerdicts, type Figures } from './report.js';
import { ALT, TICK } from './schedules.js';

const TICK_MS = 500;
const LEASE_MS = 8000;
/** The workers' `pruneInterval`. */
const PRUNE_MS = 750;

async function main(): Promise<number> {
  let opts: ChaosOptions;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const t0 = Date.now();
  const logDir = mkdtempSync(join(tmpdir(), 'sdj-chaos-log-'));
  const backend = await createBackend(opts.backend, opts.seed);
  const ages = opts.retention === null ? 'retention off' : `retention ${opts.retention.completed / 1000} s (failed/cancelled ${opts.retention.failed / 1000} s)`;
  console.log(`chaos: ${opts.backend}, ${opts.minutes} min, seed ${opts.seed}, ${opts.workers} workers, scale ${opts.scale}, ${ages}${opts.fault === 'none' ? '' : `, FAULT ${opts.fault} (violations expected)`}`);
  console.log(`chaos: database ${backend.where}; worker logs in ${logDir}/workers.log`);
  let storage: Storage | undefined;
  let db: ChaosDb | undefined;
  let fleet: Fleet | undefined;
  let crew: PruneCrew | undefined;
  let violations = -1;
  const interrupt = (): void => {
    fleet?.abort();
    crew?.abort();
    process.exit(130);
  };
  process.once('SIGINT', interrupt);
  try {
    storage = await openStorage(backend.env, 4);
    await storage.migrate();
    db = openChaosDb(backend.env, 2);
    await createEffectsTable(db);
    await createFlowTable(db);
    await createPruneArchive(db, backend.env);
    const retention = opts.retention ?? false;
    const queue = new Queue(storage, { retention });
    await queue.setQueueLimits(METERED_QUEUE, METERED_LIMITS);
    // The type limits as each worker stores them when it starts, stored before the first job is
    // enqueued (a worker prints `ready` while its start is still storing them): the audit then
    // expects every job of a limited type ever run to carry the `limited` mark.
    if (opts.fault !== 'flow') {
      for (const t of FLOW_TYPES) {
        if (!t.concurrency && !t.rateLimit) continue;
        await storage.limitSet({ scope: 'type', name: t.type, ...storedLimits(t) });
      }
    }
    // The flow types as the workers register them, for their key functions at enqueue (this
    // process runs no worker: the handler never runs).
    for (const t of FLOW_TYPES) queue.register(t.type, () => Promise.reject(new Error('the orchestrator runs no jobs')), registerOptions(t));

    // The schedules are defined by the worker processes as they start (several at once).
    const lease = opts.fault === 'lease' ? 300 : LEASE_MS;
    const env = { ...backend.env, CHAOS_FAULT: opts.fault, CHAOS_SEED: String(opts.seed), CHAOS_RETENTION: JSON.stringify(retention) };
    fleet = new Fleet(opts.workers, { ...env, CHAOS_LEASE_MS: String(lease), CHAOS_PRUNE_MS: String(PRUNE_MS) }, logDir);
    await fleet.start();
    crew = new PruneCrew(queue, env, new Rng(opts.seed, 7), logDir);
    crew.start();
    const load = new Load(queue, new Rng(opts.seed, 1), opts.scale, new Rng(opts.seed, 5), new Rng(opts.seed, 8));
    const operator = new Operator(queue, storage, new Effects(db, 'operator', process.pid), { queues: new Rng(opts.seed, 3), schedules: new Rng(opts.seed, 4), latency: new Rng(opts.seed, 6) });
    load.onEnqueued = (id, plan, at) => operator.track(id, plan, at);
    const rogue = opts.fault === 'prune' ? new RoguePruner(db, backend.env, load.plans) : undefined;
    await torture(opts, fleet, load, operator, storage, rogue);

    // Drain: no more load, kills, cancellations or pauses; the remaining signals go out and
    // paused jobs and queues are resumed now. Processes started from now on define no schedules.
    load.finish();
    await operator.finish();
    fleet.drain();
    if (!(await fleet.settled())) console.log('chaos: some worker processes did not become ready');
    await queue.unschedule(TICK.name);
    await queue.unschedule(ALT.name);
    const drainStart = Date.now();
    const drained = await drain(load, operator, storage, opts.drainSeconds * 1000);
    const drainSeconds = (Date.now() - drainStart) / 1000;
    console.log(drained ? `chaos: drained in ${drainSeconds.toFixed(1)} s` : `chaos: NOT drained after ${drainSeconds.toFixed(1)} s`);
    await fleet.stop();
    await crew.stop();
    const finalPrune = await lastPrune(queue, db, opts.retention !== null);

    const input = await loadAudit(db, fleet.lives, load.plans, operator.log, { backend: opts.backend, retention: opts.retention, finalPrune });
    const flowRuns = await readFlow(db);
    const verdicts: Verdict[] = [
      checkTerminal(input),
      checkOutcomes(input),
      checkSingleOwner(input),
      checkKilledRunsRecovered(input),
      checkOutcomesKept(input),
      checkSteps(input),
      checkFanOuts(input),
      checkSignals(input),
      checkSchedule(input),
      checkSleeps(input),
      checkCancelled(input),
      checkOperatorRetries(input),
      checkPauses(input),
      checkStops(input),
      checkErrorTexts(input),
      await checkBigResults(input, db),
      checkWorkers(input),
      checkConcurrency(flowRuns, input.lives),
      checkRate(flowRuns, input),
      await checkFlowSetup(db, storage),
      checkPrunedDue(input),
      checkPrunedWhole(input),
      checkPrunedOnce(input),
      checkDeletionsExplained(input),
      checkFinalPrune(input),
      checkPruneCalls(crew.stats),
    ];
    console.log('');
    violations = printVerdicts(verdicts, opts.examples);
    if (violations !== 0) printLogDigest(verdicts, fleet.lives, join(logDir, 'workers.log'), t0);
    for (const r of rogue?.done ?? []) console.log(`  · FAULT prune deleted ${r.kind} job ${r.id} (${r.status}) at ${r.at}`);
    const jobs = [...input.all.values()];
    const byStatus: Record<string, number> = {};
    for (const j of jobs) byStatus[j.status] = (byStatus[j.status] ?? 0) + 1;
    const runs = [...input.runs.values()].flat();
    const figures: Figures = {
      backend: opts.backend,
      seed: opts.seed,
      minutes: opts.minutes,
      workers: opts.workers,
      scale: opts.scale,
      jobs: jobs.length,
      auditedFully: input.jobs.size,
      pruned: input.pruned.size,
      deletions: input.deletions.length,
      pruneCalls: crew.stats.calls,
      retention: opts.retention,
      byStatus,
      roots: load.plans.size,
      children: jobs.filter((j) => j.parentId !== null).length,
      ticks: jobs.filter((j) => j.type === TICK.name || j.type === ALT.name).length,
      kills: fleet.kills,
      reclaims: input.effects.filter((e) => e.kind === 'reclaim').length,
      interruptedRuns: runs.filter((r) => r.interrupted).length,
      rerunsAfterKill: [...input.runs.values()].reduce((n, list) => n + list.filter((r, i) => r.interrupted && i < list.length - 1).length, 0),
      runs: runs.length,
      signals: load.stats.signalsSent,
      cancels: load.stats.cancels,
      cancelsTooLate: load.stats.cancelsTooLate,
      effects: input.effects.length,
      flow: { jobs: [...load.plans.values()].filter((p) => p.kind === 'flow').length, runs: flowRuns.length },
      operator: {
        retries: [...operator.log.retries.values()].filter((r) => r.appliedAt !== null).length,
        jobPauses: [...operator.log.jobPauses.values()].filter((p) => p.pausedAt !== null).length,
        queuePauses: operator.log.queuePauses.length,
        scheduleDefs: operator.log.scheduleDefs.length,
        errors: operator.log.errors,
      },
      bootStops: input.effects.filter((e) => e.kind === 'stopped' && (e.info ?? '').startsWith('boot:')).length,
      plannedExits: fleet.plannedExits,
      drainSeconds,
      durationSeconds: (Date.now() - t0) / 1000,
      violations,
    };
    printFigures(figures);
    return violations === 0 ? 0 : 1;
  } catch (e) {
    console.error('chaos: the run itself failed:', e);
    fleet?.abort();
    return 2;
  } finally {
    process.removeListener('SIGINT', interrupt);
    await db?.close().catch(() => {});
    await storage?.close().catch(() => {});
    if (opts.keep || (violations !== 0 && opts.fault === 'none')) {
      console.log(`chaos: kept ${backend.where} and the worker logs in ${logDir} for inspection`);
    } else {
      await backend.drop().catch((e: unknown) => console.error('chaos: could not drop the database:', e));
      rmSync(logDir, { recursive: true, force: true });
    }
  }
}

/** The load-and-kill phase: a load tick every 500 ms, due actions, a SIGKILL every few seconds. */
async function torture(opts: ChaosOptions, fleet: Fleet, load: Load, operator: Operator, storage: Storage, rogue?: RoguePruner): Promise<void> {
  const killRng = new Rng(opts.seed, 2);
  const start = Date.now();
  const end = start + opts.minutes * 60_000;
  // --fault prune: the rogue pruner strikes at a third and at two thirds of the phase.
  const strikes = rogue ? [start + (end - start) / 3, start + (2 * (end - start)) / 3] : [];
  const killDelay = (): number => Math.round(opts.killEvery * 1000 * (0.5 + killRng.next()));
  let nextLoad = start;
  let nextKill = start + killDelay();
  let nextReport = start + 10_000;
  let loadErrors = 0;
  while (Date.now() < end) {
    const now = Date.now();
    if (now >= nextLoad) {
      nextLoad += TICK_MS;
      await load.tick().catch((e: unknown) => {
        if (loadErrors++ < 5) console.error('chaos: enqueue failed:', e);
      });
    }
    await load.runDue(now);
    await operator.runDue(now);
    if (strikes.length > 0 && now >= strikes[0]!) {
      strikes.shift();
      await rogue?.strike().catch((e: unknown) => console.error('chaos: the rogue pruner failed:', e));
    }
    if (now >= nextKill) {
      const index = killRng.int(0, opts.workers - 1);
      // A process still booting is spared: the kill goes to the next slot that is up.
      const target = [...Array(opts.workers).keys()].map((k) => (index + k) % opts.workers).find((i) => fleet.uptime(i) >= 1500);
      if (target !== undefined) await fleet.kill(target);
      nextKill = now + killDelay();
    }
    if (now >= nextReport) {
      nextReport += 10_000;
      const c = await storage.jobCountByStatus({}).catch(() => undefined);
      const counts = c ? Object.entries(c).map(([k, n]) => `${k} ${n}`).join(', ') : 'counts unavailable';
      console.log(`chaos: ${((now - start) / 1000).toFixed(0)} s · enqueued ${load.stats.enqueued} · kills ${fleet.kills} · ${counts}`);
    }
    await delay(Math.max(1, Math.min(25, nextLoad - Date.now())));
  }
}

/**
 * Waits until every signal went out, the operator has nothing left to do and no job is left
 * non-terminal; then stops the operator and checks once more (its last retry may have reopened
 * a job). False on timeout.
 */
async function drain(load: Load, operator: Operator, storage: Storage, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let nextReport = Date.now() + 10_000;
  while (Date.now() < deadline) {
    await load.runDue();
    await operator.runDue();
    const c = await storage.jobCountByStatus({}).catch(() => undefined);
    const open = c ? c.pending + c.running + c.waiting + c.paused : Infinity;
    if (open === 0 && load.pendingSignals === 0 && operator.pending === 0) {
      await operator.freeze();
      const again = await storage.jobCountByStatus({}).catch(() => undefined);
      if (again && again.pending + again.running + again.waiting + again.paused === 0) return true;
    }
    if (Date.now() >= nextReport) {
      nextReport += 10_000;
      console.log(`chaos: draining · ${open} jobs open · ${load.pendingSignals} signals to send · ${operator.pending} operator actions`);
    }
    await delay(200);
  }
  await operator.freeze();
  return false;
}

process.exitCode = await main();
