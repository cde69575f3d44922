// PostgreSQL server CPU over a window, read from /proc (the server must run on this machine).
//
// Two figures, both utime + stime in clock ticks (`getconf CLK_TCK`), turned into µs:
// - run: the backends connected to the run's own database (found through pg_stat_activity,
//   sampled every 250 ms so that a backend that connects during the window is seen; one that
//   exits between two samples loses at most its last 250 ms). Backends whose application_name
//   starts with `sdj-bench-` (the harness's own producer polls and admin queries) are left out.
// - all: every process of the server: the postmaster's own time and the time of the children
//   it has reaped (cutime + cstime, so exited backends count), plus every live child's time.
//   It includes the WAL writer, checkpointer and autovacuum, and any other database's work.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { PG_BASE_URL } from './pg.mjs';

const SAMPLE_MS = 250;
let ticksPerSec;

function clockTicks() {
  if (ticksPerSec === undefined) {
    try {
      ticksPerSec = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSec = 100; // Linux's USER_HZ on every common architecture
    }
  }
  return ticksPerSec;
}

/** { comm, ppid, own, children } of /proc/<pid>/stat (times in ticks), or undefined when gone. */
export function procStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' '); // f[0] is field 3 (state)
  return { comm, ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

/** Ticks of the whole server: postmaster (own + reaped children) + every live child. */
function serverTicks(postmaster) {
  const root = procStat(postmaster);
  if (!root) return undefined;
  let total = root.own + root.children;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(name);
    if (s && s.ppid === postmaster) total += s.own;
  }
  return total;
}

/**
 * Starts measuring the server CPU spent for `database`; `stop()` resolves to
 * `{ runUs, allUs, queries }` (µs over the window; `queries`: the sampler's own queries) or
 * `undefined` when the server is not local.
 */
export async function startServerCpu(database) {
  const admin = new pg.Client({ connectionString: PG_BASE_URL, application_name: 'sdj-bench-cpu' });
  await admin.connect();
  const self = (await admin.query('select pg_backend_pid() as pid')).rows[0].pid;
  const postmaster = procStat(self)?.ppid;
  if (!postmaster || !/^postgres|^postmaster/.test(procStat(postmaster)?.comm ?? '')) {
    await admin.end();
    return { stop: async () => undefined }; // server on another machine (or /proc unreadable)
  }
  const seen = new Map(); // pid -> { first, last } ticks
  let queries = 0; // this sampler's own queries, for callers counting round trips in this process
  const sample = async (initial) => {
    queries++;
    const { rows } = await admin.query(
      "select pid from pg_stat_activity where datname = $1 and coalesce(application_name, '') not like 'sdj-bench-%'",
      [database],
    );
    for (const { pid } of rows) {
      const s = procStat(pid);
      if (!s) continue;
      const known = seen.get(pid);
      if (known) known.last = s.own;
      else seen.set(pid, { first: initial ? s.own : 0, last: s.own });
    }
  };
  await sample(true);
  const allBefore = serverTicks(postmaster);
  let sampling = Promise.resolve();
  const timer = setInterval(() => {
    sampling = sampling.then(() => sample(false)).catch(() => {});
  }, SAMPLE_MS);
  return {
    async stop() {
      clearInterval(timer);
      await sampling;
      try {
        await sample(false);
        const allAfter = serverTicks(postmaster);
        const us = 1e6 / clockTicks();
        let run = 0;
        for (const { first, last } of seen.values()) run += last - first;
        const allUs = allBefore !== undefined && allAfter !== undefined ? (allAfter - allBefore) * us : undefined;
        return { runUs: run * us, allUs, queries };
      } finally {
        await admin.end();
      }
    },
  };
}

/** Adds `srvCpuUs` and `srvAllCpuUs` (µs per unit) to metrics from a stopped measurement. */
export function addServerCpu(metrics, cpu, units) {
  if (!cpu) return metrics;
  metrics.srvCpuUs = cpu.runUs / units;
  if (cpu.allUs !== undefined) metrics.srvAllCpuUs = cpu.allUs / units;
  return metrics;
}
