// The result table (markdown, also printed) and docs/benchmarks.md.
import { KEY_LIMIT, TYPE_LIMIT } from './flow.mjs';

/** The flow-control shapes (ours only, lib/flow.mjs). */
export const FLOW_SHAPES = ['drain-limited', 'drain-keyed'];

/** What the peers offer instead of the flow-control shapes' limits (one line, under the table and in the notes). */
export const FLOW_PEERS_NOTE =
  'drain-limited and drain-keyed run on our targets only; what the peers offer instead: graphile-worker named queues (`queueName`: one job at a time per name, a per-key limit of 1 only, not kept with localQueue as configured here, graphile/worker#621), pg-boss 10 the `singleton` queue policy (one active job per queue or per `singletonKey`), BullMQ 6 queue-wide `setGlobalConcurrency` / `setGlobalRateLimit` (per-group limits are BullMQ Pro only), DBOS queues with global, per-partition and rate limits (dispatched by polling, 1 s by default).';

export const ROWS = [
  { shape: 'enqueue-single', key: 'jobsPerSec', metric: 'jobs/s', better: 'higher' },
  { shape: 'enqueue-batch', key: 'jobsPerSec', metric: 'jobs/s', better: 'higher' },
  { shape: 'drain', key: 'jobsPerSec', metric: 'jobs/s', better: 'higher' },
  { shape: 'drain', key: 'rtPerJob', metric: 'round trips/job (client-counted)', better: 'lower' },
  { shape: 'drain', key: 'xactsPerJob', metric: 'transactions/job (pg_stat_database)', better: 'lower' },
  { shape: 'drain', key: 'stmtsPerJob', metric: 'statements/job (pg_stat_statements)', better: 'lower', optional: true },
  { shape: 'drain', key: 'cpuUs', metric: 'worker process CPU µs/job', better: 'lower' },
  { shape: 'drain', key: 'srvCpuUs', metric: "server CPU µs/job (the run's backends)", better: 'lower', optional: true },
  { shape: 'drain', key: 'srvAllCpuUs', metric: 'server CPU µs/job (all server processes)', better: 'lower', optional: true },
  { shape: 'drain', key: 'callsPerJob', metric: 'storage calls/job (ours)', better: 'lower', optional: true },
  { shape: 'drain', key: 'claimsPerJob', metric: 'claim calls/job (ours)', better: 'lower', optional: true },
  { shape: 'drain', key: 'claimRtPerJob', metric: 'round trips of claim calls/job (ours)', better: 'lower', optional: true },
  { shape: 'drain', key: 'msPerClaim', metric: 'ms per jobClaim call, worker wall clock (ours)', better: 'lower', optional: true },
  { shape: 'drain-1m', key: 'jobsPerSec', metric: 'jobs/s', better: 'higher' },
  { shape: 'drain-1m', key: 'vsDrain', metric: "÷ the same target's drain", better: 'higher', noRatio: true },
  { shape: 'drain-1m', key: 'rtPerJob', metric: 'round trips/job (client-counted)', better: 'lower', optional: true },
  { shape: 'drain-1m', key: 'cpuUs', metric: 'worker process CPU µs/job', better: 'lower' },
  { shape: 'drain-1m', key: 'srvCpuUs', metric: "server CPU µs/job (the run's backends)", better: 'lower', optional: true },
  { shape: 'drain-1m', key: 'srvAllCpuUs', metric: 'server CPU µs/job (all server processes)', better: 'lower', optional: true },
  { shape: 'drain-1m', key: 'peakRssMb', metric: 'worker peak RSS MB', better: 'lower' },
  { shape: 'drain-1m', key: 'vacuums', metric: 'vacuums by the harness (server autovacuum off)', better: 'lower', optional: true, noRatio: true },
  { shape: 'drain-after-history', key: 'jobsPerSec', metric: 'jobs/s', better: 'higher' },
  { shape: 'drain-after-history', key: 'vsDrain', metric: "÷ the same target's drain", better: 'higher', noRatio: true },
  { shape: 'drain-after-history', key: 'rtPerJob', metric: 'round trips/job (client-counted)', better: 'lower', optional: true },
  { shape: 'drain-after-history', key: 'cpuUs', metric: 'worker process CPU µs/job', better: 'lower' },
  { shape: 'drain-after-history', key: 'srvCpuUs', metric: "server CPU µs/job (the run's backends)", better: 'lower', optional: true },
  { shape: 'drain-after-history', key: 'srvAllCpuUs', metric: 'server CPU µs/job (all server processes)', better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'jobsPerSec', metric: 'jobs/s', better: 'higher' },
  { shape: 'drain-limited', key: 'vsDrain', metric: "÷ the same target's drain (goal: ≥ 0.9)", better: 'higher', noRatio: true },
  { shape: 'drain-limited', key: 'rtPerJob', metric: 'round trips/job (client-counted)', better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'xactsPerJob', metric: 'transactions/job (pg_stat_database)', better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'stmtsPerJob', metric: 'statements/job (pg_stat_statements)', better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'callsPerJob', metric: 'storage calls/job', better: 'lower' },
  { shape: 'drain-limited', key: 'claimsPerJob', metric: 'claim calls/job (jobClaim + jobClaimLimited)', better: 'lower' },
  { shape: 'drain-limited', key: 'emptyClaimsPerJob', metric: 'claim calls that returned no job, per job', better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'limitedClaimsPerJob', metric: 'jobClaimLimited calls/job', better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'claimRtPerJob', metric: 'round trips of claim calls/job', better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'cpuUs', metric: 'worker process CPU µs/job', better: 'lower' },
  { shape: 'drain-limited', key: 'srvCpuUs', metric: "server CPU µs/job (the run's backends)", better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'srvAllCpuUs', metric: 'server CPU µs/job (all server processes)', better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'jobsPerLimitedClaim', metric: 'jobs per jobClaimLimited call', better: 'higher', optional: true, noRatio: true },
  { shape: 'drain-limited', key: 'msPerLimitedClaim', metric: 'ms per jobClaimLimited call (worker wall clock)', better: 'lower', optional: true },
  { shape: 'drain-limited', key: 'msPerClaim', metric: 'ms per jobClaim call (worker wall clock)', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'jobsPerSec', metric: 'jobs/s', better: 'higher' },
  { shape: 'drain-keyed', key: 'vsDrain', metric: "÷ the same target's drain", better: 'higher', noRatio: true },
  { shape: 'drain-keyed', key: 'rtPerJob', metric: 'round trips/job (client-counted)', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'xactsPerJob', metric: 'transactions/job (pg_stat_database)', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'stmtsPerJob', metric: 'statements/job (pg_stat_statements)', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'callsPerJob', metric: 'storage calls/job', better: 'lower' },
  { shape: 'drain-keyed', key: 'claimsPerJob', metric: 'claim calls/job (jobClaim + jobClaimLimited)', better: 'lower' },
  { shape: 'drain-keyed', key: 'emptyClaimsPerJob', metric: 'claim calls that returned no job, per job', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'limitedClaimsPerJob', metric: 'jobClaimLimited calls/job', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'claimRtPerJob', metric: 'round trips of claim calls/job', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'cpuUs', metric: 'worker process CPU µs/job', better: 'lower' },
  { shape: 'drain-keyed', key: 'srvCpuUs', metric: "server CPU µs/job (the run's backends)", better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'srvAllCpuUs', metric: 'server CPU µs/job (all server processes)', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'jobsPerLimitedClaim', metric: 'jobs per jobClaimLimited call', better: 'higher', optional: true, noRatio: true },
  { shape: 'drain-keyed', key: 'msPerLimitedClaim', metric: 'ms per jobClaimLimited call (worker wall clock)', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'msPerClaim', metric: 'ms per jobClaim call (worker wall clock)', better: 'lower', optional: true },
  { shape: 'drain-keyed', key: 'peakRunning', metric: 'most jobs held at once by the worker (claimed, outcome not yet stored; up to 2 × its concurrency)', better: 'higher', noRatio: true },
  { shape: 'drain-otel', key: 'jobsPerSec', metric: 'jobs/s', better: 'higher' },
  { shape: 'drain-otel', key: 'vsDrain', metric: "÷ the same target's drain (goal: ≥ 0.9)", better: 'higher', noRatio: true },
  { shape: 'drain-otel', key: 'rtPerJob', metric: 'round trips/job (client-counted)', better: 'lower', optional: true },
  { shape: 'drain-otel', key: 'xactsPerJob', metric: 'transactions/job (pg_stat_database)', better: 'lower', optional: true },
  { shape: 'drain-otel', key: 'stmtsPerJob', metric: 'statements/job (pg_stat_statements)', better: 'lower', optional: true },
  { shape: 'drain-otel', key: 'callsPerJob', metric: 'storage calls/job', better: 'lower' },
  { shape: 'drain-otel', key: 'claimsPerJob', metric: 'claim calls/job', better: 'lower', optional: true },
  { shape: 'drain-otel', key: 'cpuUs', metric: 'worker process CPU µs/job', better: 'lower' },
  { shape: 'drain-otel', key: 'srvCpuUs', metric: "server CPU µs/job (the run's backends)", better: 'lower', optional: true },
  { shape: 'drain-otel', key: 'srvAllCpuUs', metric: 'server CPU µs/job (all server processes)', better: 'lower', optional: true },
  { shape: 'drain-otel', key: 'spansPerJob', metric: 'spans exported/job (producer + worker; at least 2)', better: 'lower', noRatio: true },
  { shape: 'drain-otel', key: 'metricExports', metric: 'metric exports by the worker (periodic reader, 1 s, + one at the end)', better: 'lower', optional: true, noRatio: true },
  { shape: 'drain-passthrough', key: 'jobsPerSec', metric: 'jobs/s', better: 'higher' },
  { shape: 'drain-passthrough', key: 'vsDrain', metric: "÷ the same target's drain (goal: ≥ 0.95)", better: 'higher', noRatio: true },
  { shape: 'drain-passthrough', key: 'rtPerJob', metric: 'round trips/job (client-counted)', better: 'lower', optional: true },
  { shape: 'drain-passthrough', key: 'callsPerJob', metric: 'storage calls/job', better: 'lower' },
  { shape: 'drain-passthrough', key: 'cpuUs', metric: 'worker process CPU µs/job', better: 'lower' },
  { shape: 'drain-passthrough', key: 'srvCpuUs', metric: "server CPU µs/job (the run's backends)", better: 'lower', optional: true },
  { shape: 'fleet', key: 'fleet1', metric: 'jobs/s, 1 worker process', better: 'higher' },
  { shape: 'fleet', key: 'fleet2', metric: 'jobs/s, 2 worker processes', better: 'higher' },
  { shape: 'fleet', key: 'fleet4', metric: 'jobs/s, 4 worker processes', better: 'higher' },
  { shape: 'fleet', key: 'fleetScale', metric: '4 processes ÷ 1 process', better: 'higher', noRatio: true },
  { shape: 'latency', key: 'p50', metric: 'p50 ms', better: 'lower' },
  { shape: 'latency', key: 'p95', metric: 'p95 ms', better: 'lower' },
  { shape: 'latency', key: 'p99', metric: 'p99 ms', better: 'lower' },
  { shape: 'latency', key: 'xp50', metric: 'p50 ms, producer in another process (SQLite)', better: 'lower', optional: true },
  { shape: 'latency', key: 'xp95', metric: 'p95 ms, producer in another process (SQLite)', better: 'lower', optional: true },
  { shape: 'latency', key: 'xp99', metric: 'p99 ms, producer in another process (SQLite)', better: 'lower', optional: true },
  { shape: 'workflow', key: 'stepsPerSec', metric: 'steps/s', better: 'higher' },
  { shape: 'workflow', key: 'stepP50Ms', metric: 'ms per step, p50', better: 'lower' },
  { shape: 'workflow', key: 'rtPerStep', metric: 'round trips/step (client-counted)', better: 'lower' },
  { shape: 'workflow', key: 'cpuUs', metric: 'worker (engine) process CPU µs/step', better: 'lower' },
  { shape: 'workflow', key: 'srvCpuUs', metric: 'server CPU µs/step', better: 'lower', optional: true },
  { shape: 'workflow-serial', key: 'stepsPerSec', metric: 'steps/s', better: 'higher' },
  { shape: 'workflow-serial', key: 'stepP50Ms', metric: 'ms per step, p50', better: 'lower' },
  { shape: 'workflow-serial', key: 'rtPerStep', metric: 'round trips/step (client-counted)', better: 'lower', optional: true },
  { shape: 'workflow-serial', key: 'cpuUs', metric: 'worker (engine) process CPU µs/step', better: 'lower' },
  { shape: 'workflow-serial', key: 'srvCpuUs', metric: 'server CPU µs/step', better: 'lower', optional: true },
  { shape: 'fan-out', key: 'seconds', metric: 's to fan-in', better: 'lower' },
  { shape: 'sleep-steps', key: 'opCalls', metric: 'storage calls/ctx.sleep', better: 'lower' },
  { shape: 'sleep-steps', key: 'opRt', metric: 'round trips/ctx.sleep (client-counted)', better: 'lower', optional: true },
  { shape: 'sleep-steps', key: 'rtPerUnit', metric: 'round trips/sleep step, all (client-counted)', better: 'lower', optional: true },
  { shape: 'fan-out-resume', key: 'opCalls', metric: 'storage calls/fan-out resume', better: 'lower' },
  { shape: 'fan-out-resume', key: 'opRt', metric: 'round trips/fan-out resume (client-counted)', better: 'lower', optional: true },
  { shape: 'fan-out-resume', key: 'rtPerUnit', metric: 'round trips/fan-out of 4, all (client-counted)', better: 'lower', optional: true },
  { shape: 'memory', key: 'peakRssMb', metric: 'worker peak RSS MB', better: 'lower' },
  { shape: 'memory', key: 'jobsPerSec', metric: 'drain jobs/s at this size', better: 'higher' },
  { shape: 'retention-steady', key: 'sizeMaxMin', metric: 'retention on: tables + indexes, max ÷ min after warm-up', better: 'lower', noRatio: true },
  { shape: 'retention-steady', key: 'sizeEndStart', metric: 'retention on: tables + indexes, last ÷ first after warm-up', better: 'lower', noRatio: true },
  { shape: 'retention-steady', key: 'sizeTrendPct', metric: 'retention on: tables + indexes, % change per completed-retention period after warm-up (least-squares slope ÷ mean)', better: 'lower', noRatio: true },
  { shape: 'retention-steady', key: 'rowsMaxMin', metric: 'retention on: rows, max ÷ min after warm-up', better: 'lower', noRatio: true },
  { shape: 'retention-steady', key: 'offSizeEndStart', metric: 'retention off: tables + indexes, last ÷ first after warm-up', better: 'lower', noRatio: true },
  { shape: 'retention-steady', key: 'offSizeTrendPct', metric: 'retention off: tables + indexes, % change per completed-retention period after warm-up', better: 'lower', noRatio: true },
  { shape: 'retention-steady', key: 'offRowsEndStart', metric: 'retention off: rows, last ÷ first after warm-up', better: 'lower', noRatio: true },
  { shape: 'retention-steady', key: 'onMB', metric: 'retention on: MB at the end', better: 'lower', noRatio: true },
  { shape: 'retention-steady', key: 'offMB', metric: 'retention off: MB at the end', better: 'lower', noRatio: true },
  { shape: 'retention-steady', key: 'jobsPerSec', metric: 'retention on: jobs finished/s', better: 'higher', noRatio: true },
  { shape: 'retention-steady', key: 'pruned', metric: 'retention on: jobs pruned', better: 'higher', noRatio: true },
];

export function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return String(Number(v.toPrecision(2)));
}

/**
 * results: Map target -> Map shape -> { metrics?, error?, runs }.
 * Ratio = the target's figure / the baseline's figure (so > 1 means "more" of the metric).
 */
export function buildTable(targets, results, baseline, counts, history, keys) {
  const header = ['shape', 'metric', 'better', ...targets];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((h, i) => (i < 3 ? '---' : '---:')).join('|')}|`];
  for (const row of ROWS) {
    const cells = targets.map((t) => {
      const r = results.get(t)?.get(row.shape);
      if (!r) return '';
      if (r.error) return row.key === ROWS.find((x) => x.shape === row.shape).key ? 'error' : '';
      return r.metrics?.[row.key];
    });
    if (cells.every((c) => c === '' || c === undefined)) continue;
    if (row.optional && cells.every((c) => typeof c !== 'number')) continue;
    const base = baseline ? results.get(baseline)?.get(row.shape)?.metrics?.[row.key] : undefined;
    const shown = cells.map((c, i) => {
      if (typeof c !== 'number') return c ?? '';
      const ratio = base && !row.noRatio && targets[i] !== baseline ? ` (×${fmt(c / base)})` : '';
      return `${fmt(c)}${ratio}`;
    });
    const n = counts[row.shape]?.toLocaleString('en-US');
    const after = row.shape === 'drain-after-history' && history ? ` after ${history.toLocaleString('en-US')} finished`
      : row.shape === 'drain-keyed' && keys ? ` over ${Math.min(keys, counts[row.shape]).toLocaleString('en-US')} keys, limit ${KEY_LIMIT} per key`
      : row.shape === 'drain-limited' ? `, limit ${TYPE_LIMIT.toLocaleString('en-US')}`
      : row.shape === 'drain-otel' ? ', traces + metrics'
      : row.shape === 'drain-passthrough' ? ', codec + middleware doing nothing' : '';
    const unit = row.shape === 'retention-steady' ? ' root jobs/s' : '';
    const label = `${row.shape}${n ? ` (${n}${unit}${after})` : ''}`;
    lines.push(`| ${[label, row.metric, row.better, ...shown].join(' | ')} |`);
  }
  return lines.join('\n');
}

export function errorList(results) {
  const out = [];
  for (const [t, shapes] of results) {
    const byMessage = new Map();
    for (const [s, r] of shapes) if (r.error) byMessage.set(r.error, [...(byMessage.get(r.error) ?? []), s]);
    for (const [msg, list] of byMessage) out.push(`- ${t} (${list.join(', ')}): ${msg}`);
  }
  return out.join('\n');
}

const fmtN = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : 'N');

export function buildDoc({ date, command, machine, versions, settings, params, table, errors, baseline, notes, sections }) {
  const kv = (o) => Object.entries(o).map(([k, v]) => `- ${k}: ${v}`).join('\n');
  return `# Benchmarks

Generated by \`${command}\` on ${date}. Do not edit by hand: re-run the benchmark.
Each figure is the median of ${params.runs} run(s); every run uses fresh state (a new
PostgreSQL database, a new SQLite file, or a new Redis key prefix) and its own processes.
Ratios in brackets are the figure divided by ${baseline ? `**${baseline}**'s (ours)` : "ours (our targets did not run, so none are shown)"}.
Benchmarks report numbers only; nothing here is a pass/fail threshold.

${table}
${errors ? `\nErrors:\n\n${errors}\n` : ''}
## Shapes

- enqueue-single: sequential awaited enqueues of one job each.
- enqueue-batch: jobs enqueued in batches of ${params.batchSize} (one call per batch).
- drain: jobs pre-enqueued, then one worker process started; timed from the start command to the
  moment the target's own storage shows every job finished (completion durably recorded).
  Round trips are counted in the worker process by wrapping node-postgres' \`Client.query\`;
  transactions come from \`pg_stat_database\` deltas of the run's own database, minus the
  benchmark's own polling.
- latency: an idle, running worker process; one job enqueued at a time, each after the previous one
  started; enqueue call to handler start, measured on the machine's monotonic clock.
  sdj-sqlite: SQLite has no cross-process notification, so its p50/p95/p99 are measured in one
  process (producer and worker on one \`Queue\`: the enqueue wakes the worker directly); the
  "producer in another process" rows are the cross-process figures (the worker notices other
  processes' commits by reading \`PRAGMA data_version\` every 5 ms).
- drain-1m: the drain at ${fmtN(params.counts['drain-1m'])} jobs (sustained); "÷ the same target's drain" is its
  jobs/s divided by the same target's drain figure of this run.
- drain-after-history: the drain of ${fmtN(params.counts['drain-after-history'])} jobs after ${fmtN(params.history)} completed jobs were written
  into our storage by SQL (a benchmark fixture, see bench/README.md); ours only: graphile-worker
  deletes a job when it completes and BullMQ removes completed jobs (removeOnComplete), so neither
  has a history to drain after; pg-boss's fixture would be SQL written into another project's schema.
- drain-limited (ours): the drain of ${fmtN(params.counts['drain-limited'])} jobs of a type registered with a concurrency limit of
  ${TYPE_LIMIT.toLocaleString('en-US')} (\`register(type, handler, { concurrency: { limit } })\`), which never binds with the worker's
  ${Number(process.env.BENCH_SDJ_CONCURRENCY || 50)} slots: what the limit itself costs. "÷ the same target's drain" is its jobs/s divided by the
  same target's drain of this run (the goal is at least 0.9). The limit is stored before the jobs are
  enqueued (as a deployed worker would have), so they are inserted limited and taken by the limited
  claim (\`jobClaimLimited\`). Claim figures come from the worker's counting wrapper of the storage.
- drain-keyed (ours): the drain of ${fmtN(params.counts['drain-keyed'])} jobs over ${fmtN(params.keys)} concurrency keys with a limit of ${KEY_LIMIT} per key (the
  key is a job argument, read by the registered key function at enqueue); each key's jobs are
  enqueued one after the other, so the claim must look past the backlog of the keys already
  running. The run fails if the worker sees two jobs of one key running at once.
- drain-otel (ours): the drain of ${fmtN(params.counts['drain-otel'])} no-op jobs with the producer's and the worker's \`Queue\` both
  instrumented (\`instrument()\` of \`simple-durable-jobs/otel\`: spans and metrics; the SDK as in the
  note below). "÷ the same target's drain" is its jobs/s divided by the same target's drain of this
  run (the goal is at least 0.9: instrumentation costs at most 10 %). The run fails unless every
  job has its \`send\` span (producer) and its \`process\` span (worker, the child of the trace
  context stored with the job), and the worker's \`sdj.jobs.completed\` counter reaches the job count.
- drain-passthrough (ours): the drain of ${fmtN(params.counts['drain-passthrough'])} no-op jobs with the producer's and the worker's \`Queue\` built
  with a payload codec whose \`encode\` and \`decode\` return their text unchanged, and a run, a step and an
  enqueue middleware that only call \`next()\`: what the codec layer and the middleware chain cost when
  they do nothing. "÷ the same target's drain" is its jobs/s divided by the same target's drain of
  this run (the goal is at least 0.95: at most 5 %). The run fails unless the worker's run
  middleware saw every job and a stored job carries the codec's frame.
- fleet: the drain with 1, 2 and 4 worker processes on one PostgreSQL database (a fresh database
  for each size), timed from their start commands to the last completion in storage.
- worker process CPU µs/job (or /step): user + system CPU time of the worker process (DBOS: of the
  process running the workflows) over the timed part, per job or step (\`process.cpuUsage()\`).
- server CPU µs/job (PostgreSQL targets): utime + stime from /proc of the server's processes over
  the timed part, per job; "the run's backends": the processes serving the run's own database
  (pg_stat_activity, sampled every 250 ms; the harness's own polls left out); "all server
  processes": the postmaster and every child, exited ones included (WAL writer, checkpointer,
  autovacuum, and any other work on the server at the time).
- workflow: ${fmtN(params.workflow)} workflows of ${params.steps} checkpointed steps, ${params.concurrency} in flight, after as many untimed
  warm-up workflows (open connections, JIT-compiled code: a running service's steady state); timed from the first enqueue/start to the last workflow finished. "ms per
  step": from a step call to its checkpointed result, measured inside the workflow.
- workflow-serial: ${fmtN(params.counts['workflow-serial'])} of the same workflows one at a time (after as many warm-up workflows).
- fan-out: one parent job fanning out to N children, timed from the parent's enqueue to its completion.
- sleep-steps: workflows of ${params.steps} \`ctx.sleep(50)\` steps each (${params.concurrency} in flight; each sleep suspends
  the job until the worker's maintenance wakes it). "storage calls/ctx.sleep": the storage calls
  the sleeps themselves made (first executions and replays), per sleep; "round trips/ctx.sleep":
  the PostgreSQL round trips of those calls; "all": every round trip of the worker process
  (claims, wake-ups, outcomes, polls) per sleep step.
- fan-out-resume: parents fanning out to 4 children each (collect-all); "storage calls/fan-out
  resume": the calls a parent's resume made (reading its fan-out and children, expiring it,
  waiting again), per parent; "all": every round trip of the worker process per fan-out.
- memory: peak RSS (VmHWM) of the worker process while draining the jobs.
- retention-steady (ours): a steady mix of ${fmtN(params.counts['retention-steady'])} root jobs/s (failures, retries, cancels,
  workflows, fan-outs, sleeps, signals) on two fresh databases side by side, one with retention
  ages scaled down to seconds, one with \`retention: false\`; sizes from the database catalog
  every few seconds (bench/README.md, "retention-steady"). Samples and per-table figures below.
${sections ? `\n${sections}\n` : ''}
## Machine

${kv(machine)}

## Versions

${kv(versions)}

## Settings

${kv(settings)}
${notes?.length ? `\n## Notes\n\n${notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`;
}
