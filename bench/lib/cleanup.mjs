// Leftovers of benchmark runs whose orchestrator died (killed, crashed machine): their
// PostgreSQL databases and Redis keys carry the orchestrator's pid; drop those whose
// process is gone. Only names this harness creates are ever touched.
import IORedis from 'ioredis';
import { withAdmin, dropDatabase } from './pg.mjs';
import { REDIS_URL } from './util.mjs';

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};

const staleName = (name, re) => {
  const m = name.match(re);
  return m && Number(m[1]) !== process.pid && !alive(Number(m[1]));
};

export async function sweepStale() {
  const dropped = [];
  await withAdmin(async (c) => {
    const { rows } = await c.query("select datname from pg_database where starts_with(datname, 'sdj_bench_')");
    for (const { datname } of rows) if (staleName(datname, /^sdj_bench_(\d+)_/)) dropped.push(datname);
  });
  for (const db of dropped) await dropDatabase(db);
  const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true, enableOfflineQueue: false });
  let keys = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', 'sdjbench:sdj_bench_*', 'COUNT', 1000);
      const stale = found.filter((k) => staleName(k, /^sdjbench:sdj_bench_(\d+)_/));
      if (stale.length) await redis.unlink(...stale);
      keys += stale.length;
      cursor = next;
    } while (cursor !== '0');
  } catch {
    /* Redis not running: nothing of ours can be there */
  } finally {
    redis.disconnect();
  }
  return { databases: dropped.length, keys };
}
