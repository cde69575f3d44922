import { makeSdjTarget } from './sdj-common.mjs';

// simple-durable-jobs on SQLite (a fresh temp file per run).
export default makeSdjTarget('sqlite');
