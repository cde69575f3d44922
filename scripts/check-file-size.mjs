#!/usr/bin/env node
// Fails when a source file under src/ passes the hard limit of 600 lines (generated files exempt);
// warns above the soft limit of 400.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SOFT = 400;
const HARD = 600;
const over = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts') && !p.endsWith('.generated.ts')) {
      const lines = readFileSync(p, 'utf8').split('\n').length;
      if (lines > HARD) over.push(`${p}: ${lines} lines (hard limit ${HARD})`);
      else if (lines > SOFT) console.warn(`note: ${p} has ${lines} lines (soft limit ${SOFT})`);
    }
  }
}
walk(new URL('../src', import.meta.url).pathname);
if (over.length) {
  console.error(over.join('\n'));
  process.exit(1);
}
