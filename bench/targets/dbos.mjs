// DBOS Transact (@dbos-inc/dbos-sdk) for the workflow shapes only. Its system database is a
// fresh PostgreSQL database per run, with DBOS's default configuration (system-database pool of
// 10, like ours). Workflows are invoked directly (how an application runs a workflow it awaits,
// and DBOS's fastest path: its queues dispatch on a polling interval), at most `concurrency` in
// flight, after as many untimed warm-up workflows; each step is a registered DBOS step,
// checkpointed in its own transaction before the call returns. See bench/README.md.
import { DBOS } from '@dbos-inc/dbos-sdk';
import { createDatabase, dropDatabase, urlFor } from '../lib/pg.mjs';
import { pkgVersion, runDbName } from '../lib/util.mjs';
import { nowMs, percentile, pool } from '../lib/stats.mjs';

export default {
  name: 'dbos',
  backend: 'postgres',
  shapes: ['workflow', 'workflow-serial'],
  version: () => pkgVersion('@dbos-inc/dbos-sdk'),
  settings: 'direct workflow calls, 16 in flight or one at a time (no DBOS queue), DBOS.registerStep steps, default configuration (system-database pool 10), untimed warm-up of as many workflows',
  note:
    'DBOS runs about 8.6 round trips and 1.4 commits per step; with its own process and PostgreSQL sharing 2 CPUs it is CPU-bound ' +
    '(see its CPU rows), so its figure falls with any other work on the machine (see the load averages above) and rises ' +
    '15-25% once its code is JIT-compiled (hence the warm-up).',

  async prepare(env) {
    const db = runDbName(env, 'dbos');
    await createDatabase(db);
    return { db, url: urlFor(db) };
  },

  async cleanup(cfg) {
    await dropDatabase(cfg.db);
  },

  /**
   * Runs in the driver process (DBOS is a per-process singleton): `warmUp` workflows first, then
   * `count` timed ones, `concurrency` in flight; `timed.begin()` / `timed.end()` bracket the timed part.
   */
  async runWorkflows(cfg, { count, steps, concurrency, warmUp, timed }) {
    const stepMs = [];
    let measure = false;
    const step = DBOS.registerStep(async (x) => x + 1, { name: 'step' });
    const workflow = DBOS.registerWorkflow(
      async (x, n) => {
        let v = x;
        for (let i = 0; i < n; i++) {
          const t0 = nowMs();
          v = await step(v);
          if (measure) stepMs.push(nowMs() - t0);
        }
        return v;
      },
      { name: 'bench-workflow' },
    );
    DBOS.setConfig({ name: 'sdj-bench', systemDatabaseUrl: cfg.url, logLevel: 'error' });
    await DBOS.launch();
    try {
      const run = (n, from) =>
        pool(concurrency, n, async (i) => {
          const v = await workflow(from + i, steps);
          if (v !== from + i + steps) throw new Error(`workflow ${from + i} returned ${v}`);
        });
      await run(warmUp, count);
      await timed.begin();
      measure = true;
      const t0 = nowMs();
      await run(count, 0);
      const seconds = (nowMs() - t0) / 1000;
      measure = false;
      await timed.end();
      return { stepsPerSec: (count * steps) / seconds, stepP50Ms: percentile(stepMs, 50) };
    } finally {
      await DBOS.shutdown();
    }
  },
};
