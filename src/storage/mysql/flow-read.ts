/**
 * The read and the plan of a limited claim on MySQL/MariaDB (steps 1 and 2 of `flow-ops.ts`): the
 * statement `claimLimitedRead` and its rows, the shared plan over them, the read of further jobs
 * of groups with room, and the claim-order cutoff of a read that kept only the first open groups.
 * @internal
 */
import type { LimitRow } from '../flow-rows.js';
import { type FlowCandidate, type FlowPlan, planLimitedClaim, queueGroup, typeGroup } from '../shared/flow-plan.js';
import { type Executor, select } from './connection.js';
import { type GroupTail, claimLimitedMore, claimLimitedRead } from './queries/flow.js';
import { type DbRow, num, numOrNull, str, strOrNull } from './rows.js';

/** A candidate as read, with the flow group it was read from (null for a job without type limits). */
export interface ReadCandidate extends FlowCandidate {
  group: Buffer | null;
  /** True for the first job of an open group of the read (see `claimLimitedRead`). */
  openHead?: boolean;
}

/** What the read gives the plan. */
export interface ClaimState {
  now: number;
  /** Flow lock row 1's generation at the read. */
  gen: number;
  paused: Set<string>;
  typeLimits: Map<string, LimitRow>;
  queueLimits: Map<string, LimitRow>;
  running: Map<string, number>;
  tat: Map<string, number>;
  candidates: ReadCandidate[];
  /** Open flow groups per queue (see `claimLimitedRead`). */
  opened: Map<string, number>;
}

/** A candidate row of the read (kinds `h`, `z`, `m`). */
function toCandidate(r: DbRow): ReadCandidate {
  const g = r['grp'];
  return {
    id: str(r['id']),
    queue: str(r['queue']),
    type: str(r['name']),
    priority: num(r['priority']),
    runAt: num(r['run_at']),
    concurrencyKey: strOrNull(r['k1']),
    rateKey: strOrNull(r['k2']),
    group: Buffer.isBuffer(g) ? g : null,
  };
}

/** Offset added to run_at in a job's key (`HEAD_KEY` in `queries/flow.ts`). */
const RUN_AT_OFFSET = 1e15;

/**
 * The candidates of an `h` row of the read: its group's type, keys and queue, with each job of
 * its `id` column (the key's length in bytes, 4 digits, then the key, one after the other).
 */
function groupCandidates(r: DbRow): ReadCandidate[] {
  const out: ReadCandidate[] = [];
  const group = r['grp'] as Buffer;
  const v = r['id'];
  let rest = Buffer.isBuffer(v) ? v : Buffer.from(str(v), 'utf8');
  while (rest.length > 0) {
    const bytes = Number(rest.subarray(0, 4).toString('latin1'));
    const key = rest.subarray(4, 4 + bytes);
    rest = rest.subarray(4 + bytes);
    out.push({
      id: key.subarray(30).toString('utf8'),
      queue: str(r['queue']),
      type: str(r['name']),
      priority: 2147483647 - Number(key.subarray(0, 10).toString('latin1')),
      runAt: Number(key.subarray(10, 30).toString('latin1')) - RUN_AT_OFFSET,
      concurrencyKey: strOrNull(r['k1']),
      rateKey: strOrNull(r['k2']),
      group,
    });
  }
  return out;
}

/** A limit row of the read (`q` or `t`). */
function toLimit(scope: LimitRow['scope'], r: DbRow): LimitRow {
  return {
    scope,
    name: str(r['name']),
    concurrency: numOrNull(r['b']),
    rateLimit: numOrNull(r['c']),
    ratePeriodMs: numOrNull(r['d']),
    updatedAt: scope === 'type' ? num(r['a']) : 0,
  };
}

/** Adds up the rows of `claimLimitedRead`. */
export function parseRead(rows: readonly DbRow[]): ClaimState {
  const st: ClaimState = { now: 0, gen: 0, paused: new Set(), typeLimits: new Map(), queueLimits: new Map(), running: new Map(), tat: new Map(), candidates: [], opened: new Map() };
  const add = (k: string, n: number): void => void st.running.set(k, (st.running.get(k) ?? 0) + n);
  for (const r of rows) {
    switch (str(r['kind'])) {
      case 'n':
        st.now = num(r['a']);
        st.gen = num(r['b']);
        break;
      case 'q': {
        const l = toLimit('queue', r);
        if (num(r['a']) !== 0) st.paused.add(l.name);
        if (l.concurrency !== null || l.rateLimit !== null) st.queueLimits.set(l.name, l);
        break;
      }
      case 't': {
        const l = toLimit('type', r);
        st.typeLimits.set(l.name, l);
        break;
      }
      case 'c':
        add(typeGroup(str(r['name']), str(r['k1'])), num(r['a']));
        add(queueGroup(str(r['k2'])), num(r['a']));
        break;
      case 's': {
        const scope = str(r['k2']);
        st.tat.set(scope === 'queue' ? queueGroup(str(r['name'])) : typeGroup(str(r['name']), str(r['k1'])), Number(r['tat']));
        break;
      }
      case 'h': {
        const jobs = groupCandidates(r);
        if (num(r['a']) === 1) jobs[0]!.openHead = true;
        st.candidates.push(...jobs);
        st.opened.set(str(r['queue']), num(r['run_at']));
        break;
      }
      default:
        st.candidates.push(toCandidate(r));
    }
  }
  return st;
}

/** The plan over the candidates left. */
export function plan(st: ClaimState, want: ReadonlyMap<string, number>): FlowPlan {
  return planLimitedClaim({ now: st.now, want, typeLimits: st.typeLimits, queueLimits: st.queueLimits, running: st.running, tat: st.tat, candidates: st.candidates });
}

/** Ready jobs read per flow group by the first read. */
const FIRST_READ = 2;

/**
 * The groups to read further: a group of which every job read was picked, and that had more
 * ready jobs than the read took, in a queue that wants more. Each gets as many more as its
 * concurrency groups and queue still have room for (none with a rate limit: a start blocks the
 * group for the rest of the claim), plus one, so that a group left full or blocked with a job
 * ready is reported (`saturated`, `retryInMs`).
 */
function moreTails(st: ClaimState, want: ReadonlyMap<string, number>, p: FlowPlan): GroupTail[] {
  const picked = new Set(p.picked);
  const byId = new Map(st.candidates.map((c) => [c.id, c]));
  const left = new Map(want);
  const used = new Map<string, number>();
  const bump = (k: string): void => void used.set(k, (used.get(k) ?? 0) + 1);
  for (const id of p.picked) {
    const c = byId.get(id)!;
    left.set(c.queue, (left.get(c.queue) ?? 0) - 1);
    bump(typeGroup(c.type, c.concurrencyKey));
    bump(queueGroup(c.queue));
  }
  const groups = new Map<string, { last: ReadCandidate; n: number; allPicked: boolean }>();
  for (const c of st.candidates) {
    if (c.group === null) continue;
    const k = `${c.queue}\u0000${c.group.toString('hex')}`;
    const g = groups.get(k);
    if (g === undefined) groups.set(k, { last: c, n: 1, allPicked: picked.has(c.id) });
    else groups.set(k, { last: claimOrder(g.last, c) < 0 ? c : g.last, n: g.n + 1, allPicked: g.allPicked && picked.has(c.id) });
  }
  const tails: GroupTail[] = [];
  for (const { last: c, n: read, allPicked } of groups.values()) {
    const wanted = left.get(c.queue) ?? 0;
    if (!allPicked || read < FIRST_READ || wanted <= 0) continue;
    const tl = st.typeLimits.get(c.type);
    const ql = st.queueLimits.get(c.queue);
    let n = tl?.rateLimit != null || ql?.rateLimit != null ? 0 : wanted;
    const room = (limit: number | null | undefined, group: string): void => {
      if (limit != null) n = Math.min(n, limit - (st.running.get(group) ?? 0) - (used.get(group) ?? 0));
    };
    room(tl?.concurrency, typeGroup(c.type, c.concurrencyKey));
    room(ql?.concurrency, queueGroup(c.queue));
    tails.push({ queue: c.queue, group: c.group!, after: { priority: c.priority, runAt: c.runAt, id: c.id }, n: Math.max(0, n) + 1 });
  }
  return tails;
}

/** Claim order of two candidates: negative when `a` comes first. */
export function claimOrder(a: FlowCandidate, b: FlowCandidate): number {
  return b.priority - a.priority || a.runAt - b.runAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The read and plan of steps 1 and 2 (see the module header), on `ex`. */
export interface Planned {
  st: ClaimState;
  want: Map<string, number>;
  plan: FlowPlan;
}

/** Open groups read per queue by a read that needs all of them. */
const ALL_GROUPS = 1_000_000_000;

/**
 * Per queue whose open groups were not all read, the first job of the last one read: the read
 * holds every candidate up to it in claim order (and answers for nothing after it).
 */
function cutoffs(st: ClaimState, groups: number): Map<string, FlowCandidate> {
  const cut = new Map<string, FlowCandidate>();
  for (const c of st.candidates) {
    if (c.openHead !== true || (st.opened.get(c.queue) ?? 0) <= groups) continue;
    const k = cut.get(c.queue);
    if (k === undefined || claimOrder(k, c) < 0) cut.set(c.queue, c);
  }
  return cut;
}

/** Leaves out the candidates after their queue's cutoff. */
function withinCutoffs(st: ClaimState, cut: ReadonlyMap<string, FlowCandidate>): void {
  if (cut.size === 0) return;
  st.candidates = st.candidates.filter((c) => {
    const k = cut.get(c.queue);
    return k === undefined || claimOrder(c, k) <= 0;
  });
}

/** True when a queue whose groups were not all read got fewer jobs than it wants: the rest may hold more. */
function short(st: ClaimState, want: ReadonlyMap<string, number>, cut: ReadonlyMap<string, FlowCandidate>, p: FlowPlan): boolean {
  if (cut.size === 0) return false;
  const byId = new Map(st.candidates.map((c) => [c.id, c.queue]));
  const got = new Map<string, number>();
  for (const id of p.picked) got.set(byId.get(id)!, (got.get(byId.get(id)!) ?? 0) + 1);
  return [...cut.keys()].some((q) => (got.get(q) ?? 0) < (want.get(q) ?? 0));
}

/**
 * Steps 1 and 2: the read (every group of queues that had few last time; else the first open
 * groups, four times as many as the most any queue wants and a few more, and again with every
 * group when a queue cut short got fewer jobs than it wants), the plan, and the read of more
 * jobs of groups with room when needed.
 */
export async function readAndPlan(ex: Executor, now: number | null, queues: readonly { name: string; limit: number }[]): Promise<Planned> {
  const most = Math.max(...queues.map((q) => Math.floor(q.limit)));
  const key = queues.map((q) => q.name).join('\u0000');
  const ranked = (groupsSeen.get(key) ?? 0) > FEW_GROUPS;
  // Room for claimers racing on the same read: a group another one holds is skipped, the next taken.
  const first = await readOnce(ex, now, queues, ranked ? 4 * most + 16 : null);
  if (groupsSeen.size >= 1_000) groupsSeen.clear();
  groupsSeen.set(key, first.groups);
  return first.short ? (await readOnce(ex, now, queues, ALL_GROUPS)).planned : first.planned;
}

/** Open groups (or groups, for a read of every group) the last read of a set of queues saw, by the queues' names. */
const groupsSeen = new Map<string, number>();

/** Up to this many groups seen last time, the next read takes every group (no ranking: less fixed work). */
const FEW_GROUPS = 32;

/** One read and its plan, with at most `groups` open groups per queue. */
async function readOnce(
  ex: Executor,
  now: number | null,
  queues: readonly { name: string; limit: number }[],
  groups: number | null,
): Promise<{ planned: Planned; short: boolean; groups: number }> {
  const read = claimLimitedRead(now, queues, groups);
  const st = parseRead(await select(ex, read.sql, read.values));
  const want = new Map(queues.filter((q) => !st.paused.has(q.name)).map((q) => [q.name, Math.floor(q.limit)]));
  const seen = groups === null ? st.candidates.filter((c) => c.openHead === true).length : [...st.opened.values()].reduce((a, b) => a + b, 0);
  const cut = groups === null ? new Map<string, FlowCandidate>() : cutoffs(st, groups);
  withinCutoffs(st, cut);
  let planned = plan(st, want);
  const tails = moreTails(st, want, planned);
  if (tails.length > 0) {
    const more = claimLimitedMore(now, tails);
    for (const r of await select(ex, more.sql, more.values)) st.candidates.push(toCandidate(r));
    withinCutoffs(st, cut);
    planned = plan(st, want);
  }
  return { planned: { st, want, plan: planned }, short: short(st, want, cut, planned), groups: seen };
}
