// `node --import ./test/helpers/package-from-src.mjs`: `simple-durable-jobs` and its subpath
// exports load from src/ (TypeScript, through tsx, which must be imported first) instead of the
// built dist/, so a test can run a user-facing example against the current source without a build.
import { register } from 'node:module';

register('./package-from-src-hooks.mjs', import.meta.url);
