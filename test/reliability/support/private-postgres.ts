/**
 * A private, throw-away PostgreSQL cluster for tests that stop, restart or sabotage the
 * server: `initdb` into a temp dir, `pg_ctl start` on a free port on 127.0.0.1 (trust auth),
 * and `destroy()` that stops it and deletes the dir. Stopping the machine's shared server would
 * break the other test files running in parallel; this cluster is ours alone.
 *
 * PostgreSQL refuses to run as root: when the test runs as root, the server binaries run as
 * the `postgres` OS user (`runuser -u postgres`) and the temp dir is chowned to it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A running private cluster. */
export interface PrivatePostgres {
  /** Connection string of the `postgres` database as the `postgres` superuser. */
  readonly url: string;
  readonly port: number;
  /** Stops the server (`pg_ctl stop -m fast`: connections are terminated at once). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Whether the server is running (`pg_ctl status`). */
  running(): Promise<boolean>;
  /** Stops the server if it runs and deletes its files. Idempotent. */
  destroy(): Promise<void>;
}

/** The newest installed PostgreSQL's bin dir (Debian layout), or PG_BIN. */
function binDir(): string {
  const fromEnv = process.env['PG_BIN'];
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) throw new Error('no PostgreSQL server binaries found under /usr/lib/postgresql (set PG_BIN)');
  return join(root, versions[0]!, 'bin');
}

/** A TCP port free on 127.0.0.1 right now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Initializes and starts a private cluster. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'sdj-private-pg-'));
  const data = join(dir, 'data');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  // As root, run the server binaries as `postgres`; otherwise as ourselves.
  const cmd = (tool: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args]);
  const exec = async (tool: string, args: string[]): Promise<void> => {
    const [file, argv] = cmd(tool, args);
    await run(file, argv, { cwd: dir, timeout: 120_000 });
  };
  const port = await freePort();
  let destroyed = false;
  const startArgs = ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`, 'start'];
  const emergencyStop = (): void => {
    // The test process is exiting without its after() hook (a crash): do not leave a server behind.
    if (destroyed) return;
    try {
      const [file, argv] = cmd('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      execFileSync(file, argv, { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', emergencyStop);
  try {
    await exec('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
    await exec('pg_ctl', startArgs);
  } catch (e) {
    emergencyStop();
    process.removeListener('exit', emergencyStop);
    throw new Error(`could not start a private PostgreSQL cluster (${bin}): ${(e as Error).message}`, { cause: e });
  }
  const running = async (): Promise<boolean> => {
    try {
      await exec('pg_ctl', ['-D', data, 'status']);
      return true;
    } catch {
      return false;
    }
  };
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: () => exec('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']),
    start: () => exec('pg_ctl', startArgs),
    running,
    destroy: async () => {
      if (destroyed) return;
      if (await running()) await exec('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop']);
      destroyed = true;
      process.removeListener('exit', emergencyStop);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
