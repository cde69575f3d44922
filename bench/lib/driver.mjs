// One isolated run of one shape on one target, in its own process (forked by run.mjs):
// fresh state, the shape, cleanup. Replies { ok, metrics } or { ok: false, error }.
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SHAPES } from './shapes.mjs';

process.on('disconnect', () => process.exit(1));

process.once('message', async ({ targetUrl, shape, params, env }) => {
  let target;
  let cfg;
  let reply;
  try {
    target = (await import(targetUrl)).default;
    env.tmpdir ??= path.join(os.tmpdir(), 'sdj-bench');
    mkdirSync(env.tmpdir, { recursive: true });
    cfg = await target.prepare(env);
    const metrics = await SHAPES[shape](target, cfg, params, { targetUrl, env });
    reply = { ok: true, metrics };
  } catch (err) {
    reply = { ok: false, error: err?.message ?? String(err), stack: err?.stack };
  }
  try {
    if (cfg) await target.cleanup(cfg);
  } catch (err) {
    console.error(`[bench] cleanup failed: ${err.message}`);
  }
  process.send(reply, () => process.exit(0));
});
