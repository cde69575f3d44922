#!/usr/bin/env node
// Builds the dashboard's front end (src/dashboard/ui/, Preact + uPlot) into dist/dashboard/ui/:
// type-checks it with its own tsconfig (DOM types, JSX), then bundles and minifies it with
// esbuild into app.js and app.css. Nothing is fetched at run time: the pages work offline.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const out = `${root}dist/dashboard/ui`;

const check = spawnSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}src/dashboard/ui/tsconfig.json`], { stdio: 'inherit' });
if (check.status !== 0) process.exit(check.status ?? 1);

rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { app: `${root}src/dashboard/ui/main.tsx` },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'linked',
  logLevel: 'warning',
});

// The bundle carries Preact's and uPlot's code: ship their licences beside it.
const licences = ['preact', 'uplot'].map((p) => `${p}\n${'='.repeat(p.length)}\n${readFileSync(`${root}node_modules/${p}/LICENSE`, 'utf8').trim()}\n`);
writeFileSync(`${out}/THIRD-PARTY-LICENSES.txt`, `The dashboard's front end (app.js, app.css) bundles these packages.\n\n${licences.join('\n')}`);
