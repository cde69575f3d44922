/**
 * `--fault prune`, the audit's self-check for retention: a rogue pruner deletes job rows behind
 * the library's back, dressed as a prune (holding the fleet's prune lock; on SQLite, under a
 * prune token), three kinds at a few instants of the load phase:
 * - `unfinished`: a pending or running plain root job;
 * - `young`: a plain root job that completed moments ago;
 * - `sub-job`: a finished fan-out child whose parent is still waiting or running;
 * - `no-lock`: the oldest completed plain root, deleted plainly (no prune lock, no token).
 * The audit must report each (pruned while unfinished; pruned before its age; a sub-job pruned
 * without its parent; a deletion that is neither a prune nor a retry). Plain jobs the operator pauses are left alone (a pause of a deleted job
 * would keep the operator busy until the drain gives up).
 */
import { createRequire } from 'node:module';
import { pruneLockKey } from '../../src/storage/postgres/retention.js';
import type { BackendEnv, ChaosDb } from './backend.js';
import type { Plan } from './load.js';
import { pruneMark } from './prune-archive.js';

const require = createRequire(import.meta.url);

/** One rogue deletion. */
export interface RogueDeletion {
  kind: 'unfinished' | 'young' | 'sub-job' | 'no-lock';
  id: string;
  status: string;
  at: number;
}

type Pick = { id: string; status: string };

/** Deletes job rows as if pruning them, without the library. */
export class RoguePruner {
  readonly done: RogueDeletion[] = [];
  #n = 0;

  constructor(
    private readonly db: ChaosDb,
    private readonly env: BackendEnv,
    private readonly plans: Map<string, Plan>,
  ) {}

  /** One deletion of each kind (each skipped when no job fits right now). */
  async strike(): Promise<void> {
    const plain = (rows: Pick[]): Pick | undefined => rows.find((r) => {
      const p = this.plans.get(r.id);
      return p?.kind === 'plain' && p.pause === undefined;
    });
    const unfinished = plain(await this.db.all<Pick>("SELECT id, status FROM sdj_jobs WHERE type = 'chaos.plain' AND parent_id IS NULL AND status IN ('pending', 'running') ORDER BY created_at DESC LIMIT 50"));
    if (unfinished) await this.#delete('unfinished', unfinished);
    const young = plain(await this.db.all<Pick>("SELECT id, status FROM sdj_jobs WHERE type = 'chaos.plain' AND parent_id IS NULL AND status = 'completed' ORDER BY completed_at DESC LIMIT 50"));
    if (young) await this.#delete('young', young);
    const [child] = await this.db.all<Pick>(
      "SELECT c.id, c.status FROM sdj_jobs c JOIN sdj_jobs p ON p.id = c.parent_id WHERE c.type = 'chaos.child' AND c.status = 'completed' AND p.status IN ('waiting', 'running') LIMIT 1",
    );
    if (child) await this.#delete('sub-job', child);
    const old = plain(await this.db.all<Pick>("SELECT id, status FROM sdj_jobs WHERE type = 'chaos.plain' AND parent_id IS NULL AND status = 'completed' ORDER BY completed_at LIMIT 50"));
    if (old) {
      await this.db.run('DELETE FROM sdj_jobs WHERE id = ?', [old.id]);
      this.#note('no-lock', old);
    }
  }

  #note(kind: RogueDeletion['kind'], job: Pick): void {
    this.done.push({ kind, id: job.id, status: job.status, at: Date.now() });
    console.log(`chaos: FAULT prune: deleted ${kind} job ${job.id} (${job.status})${kind === 'no-lock' ? '' : ' as a prune'}`);
  }

  async #delete(kind: RogueDeletion['kind'], job: Pick): Promise<void> {
    switch (this.db.backend) {
      case 'postgres':
        await this.db.run('WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(?::bigint) AS got) DELETE FROM sdj_jobs WHERE id = ? AND EXISTS (SELECT 1 FROM l)', [
          pruneLockKey(this.env['CHAOS_PG_SCHEMA']!),
          job.id,
        ]);
        break;
      case 'mysql': {
        const mysql = require('mysql2/promise') as { createConnection(uri: string): Promise<{ query(s: string, v?: unknown[]): Promise<[unknown, unknown]>; end(): Promise<void> }> };
        const c = await mysql.createConnection(this.env['CHAOS_MYSQL_URL']!);
        try {
          await c.query("SELECT GET_LOCK(CONCAT('sdj_prune_', DATABASE()), 30)");
          await c.query('DELETE FROM sdj_jobs WHERE id = ?', [job.id]);
          await c.query("SELECT RELEASE_LOCK(CONCAT('sdj_prune_', DATABASE()))");
        } finally {
          await c.end();
        }
        break;
      }
      case 'sqlite': {
        // ChaosDb runs the statement synchronously inside run(): the token covers exactly it.
        pruneMark.token = `rogue:${++this.#n}`;
        const deleting = this.db.run('DELETE FROM sdj_jobs WHERE id = ?', [job.id]);
        pruneMark.token = null;
        await deleting;
        break;
      }
    }
    this.#note(kind, job);
  }
}
