// Machine, server and package facts for the report.
import os from 'node:os';
import IORedis from 'ioredis';
import { withAdmin } from './pg.mjs';
import { REDIS_URL } from './util.mjs';

const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
export const loadAtStart = load();

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpu: `${cpus[0]?.model ?? 'unknown'} x ${cpus.length}`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
    'load average (1/5/15 min) at start': loadAtStart,
    'load average at end': `${load()} (other work on the machine skews the figures)`,
  };
}

export async function postgresInfo() {
  try {
    return await withAdmin(async (c) => {
      const show = async (name) => (await c.query(`show ${name}`)).rows[0][name];
      return {
        PostgreSQL: `${await show('server_version')} (fsync ${await show('fsync')}, synchronous_commit ${await show(
          'synchronous_commit',
        )}, shared_buffers ${await show('shared_buffers')}, autovacuum ${await show('autovacuum')}, shared_preload_libraries '${await show('shared_preload_libraries')}')`,
      };
    });
  } catch (err) {
    return { PostgreSQL: `unavailable (${err.message})` };
  }
}

export async function redisInfo() {
  const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true, enableOfflineQueue: false });
  try {
    await redis.connect();
    const info = await redis.info('server');
    const version = info.match(/redis_version:(\S+)/)?.[1] ?? 'unknown';
    let persistence = 'unknown';
    try {
      const [, aof] = await redis.config('GET', 'appendonly');
      const [, save] = await redis.config('GET', 'save');
      persistence = `appendonly ${aof}, save '${save}'`;
    } catch {
      /* CONFIG may be disabled */
    }
    return { Redis: `${version} (${persistence})` };
  } catch (err) {
    return { Redis: `unavailable (${err.message})` };
  } finally {
    redis.disconnect();
  }
}
