#!/usr/bin/env node
/**
 * The `sdj` command (the package's `bin`): runs the program and exits with its code.
 * @module
 */
import { runCli } from './program.js';

// `sdj jobs list | head` closes stdout early: end quietly instead of throwing EPIPE.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
// The storage is closed by then; should a connection linger anyway, do not hang the shell.
setTimeout(() => process.exit(code), 2000).unref();
