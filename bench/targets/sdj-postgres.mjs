import { makeSdjTarget } from './sdj-common.mjs';

// simple-durable-jobs on PostgreSQL (a fresh database per run).
export default makeSdjTarget('postgres');
