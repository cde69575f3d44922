// DBOS Transact (@dbos-inc/dbos-sdk) for the workflow shape only. Its system database
// is a fresh PostgreSQL database per run. Workflows are invoked directly (DBOS's
// fastest path; its queues dispatch on a polling interval), at most `concurrency`
// in flight; each step is a registered DBOS step, checkpointed in the system database.
import { DBOS } from '@dbos-inc/dbos-sdk';
import { createDatabase, dropDatabase, urlFor } from '../lib/pg.mjs';
import { pkgVersion, runDbName } from '../lib/util.mjs';
import { nowMs, pool } from '../lib/stats.mjs';

export default {
  name: 'dbos',
  backend: 'postgres',
  shapes: ['workflow'],
  version: () => pkgVersion('@dbos-inc/dbos-sdk'),
  settings: 'direct workflow calls, N in flight (no DBOS queue), DBOS.registerStep steps, default system-database pool',

  async prepare(env) {
    const db = runDbName(env, 'dbos');
    await createDatabase(db);
    return { db, url: urlFor(db) };
  },

  async cleanup(cfg) {
    await dropDatabase(cfg.db);
  },

  /** Runs in the driver process (DBOS is a per-process singleton). */
  async runWorkflows(cfg, { count, steps, concurrency, counter }) {
    const step = DBOS.registerStep(async (x) => x + 1, { name: 'step' });
    const workflow = DBOS.registerWorkflow(
      async (x, n) => {
        let v = x;
        for (let i = 0; i < n; i++) v = await step(v);
        return v;
      },
      { name: 'bench-workflow' },
    );
    DBOS.setConfig({ name: 'sdj-bench', systemDatabaseUrl: cfg.url, logLevel: 'error' });
    await DBOS.launch();
    try {
      counter?.reset();
      const t0 = nowMs();
      await pool(concurrency, count, async (i) => {
        const v = await workflow(i, steps);
        if (v !== i + steps) throw new Error(`workflow ${i} returned ${v}`);
      });
      const seconds = (nowMs() - t0) / 1000;
      const rt = counter?.get();
      return {
        stepsPerSec: (count * steps) / seconds,
        ...(rt !== undefined ? { rtPerStep: rt / (count * steps) } : {}),
      };
    } finally {
      await DBOS.shutdown();
    }
  },
};
