// The detail of retention-steady runs (lib/retention.mjs), printed after the table and written
// into docs/benchmarks.md: settings, every sample after warm-up (and a few during it), and
// per-table figures after warm-up, for the retention-on and retention-off databases.
import { fmt } from './report.mjs';
import { trendPerPeriod } from './retention.mjs';

const kb = (bytes) => Math.round(bytes / 1024).toLocaleString('en-US');
const int = (n) => Math.round(n).toLocaleString('en-US');
const secs = (ms) => `${ms / 1000} s`;
const range = (xs, f) => {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? f(lo) : `${f(lo)}–${f(hi)}`;
};
const row = (cells) => `| ${cells.join(' | ')} |`;
const head = (cells, left = 1) => [row(cells), `|${cells.map((_, i) => (i < left ? '---' : '---:')).join('|')}|`];

function settingsText({ kind, settings: s, counters: c }) {
  const ages = Object.entries(s.ages).map(([k, v]) => `${k} ${secs(v)}`).join(', ');
  const vacuum = kind !== 'postgres'
    ? ''
    : s.vacuum === 'stand-in'
      ? ` PostgreSQL vacuum: the harness vacuums (and analyzes) a table when autovacuum's thresholds say so (server settings and the table's storage parameters, from pg_stat_user_tables), checked every ${s.vacuumEveryS} s, on both databases; the server's own autovacuum is ${s.serverAutovacuum?.autovacuum ?? 'unknown'} (naptime ${s.serverAutovacuum?.autovacuum_naptime ?? '?'} s). Vacuums: on ${c.on.vacuums}, off ${c.off.vacuums}; analyzes: on ${c.on.analyzes}, off ${c.off.analyzes}.`
      : ` PostgreSQL vacuum: left to the server (autovacuum ${s.serverAutovacuum?.autovacuum ?? 'unknown'}, naptime ${s.serverAutovacuum?.autovacuum_naptime ?? '?'} s).`;
  const side = (x) => `${int(x.roots)} root jobs enqueued, ${int(x.completed + x.failed)} jobs finished (${int(x.failed)} failed), ${int(x.pruned)} pruned in ${int(x.pruneBatches)} batches`;
  return [
    `Retention on: ages ${ages}, worker \`pruneInterval\` ${secs(s.pruneInterval)}; retention off: \`retention: false\`. ` +
      `${s.rate} root jobs/s for ${s.runS} s on each; warm-up ${s.warmUpS} s (two periods of the longest age); a sample every ${s.sampleS} s.${vacuum}`,
    `Retention on: ${side(c.on)}. Retention off: ${side(c.off)}.`,
  ];
}

function sampleTable({ kind, settings: s, samples }) {
  const extraHead = kind === 'sqlite' ? ['on: free pages KB', 'on: WAL KB'] : kind === 'postgres' ? ['on: dead rows'] : ['on: data_free KB', 'on: .ibd files KB'];
  const extra = (x) => {
    if (kind === 'sqlite') return [kb(x.extra.freeBytes), kb(x.extra.walBytes)];
    if (kind === 'postgres') return [int(Object.values(x.extra.deadTuples ?? {}).reduce((a, b) => a + b, 0))];
    return [kb(x.extra.freeBytes ?? 0), x.extra.fileBytes === undefined ? '' : kb(x.extra.fileBytes)];
  };
  const lines = head(['t (s)', 'root jobs enqueued', 'on: KB', 'on: rows', ...extraHead, 'off: KB', 'off: rows']);
  const warmEvery = s.sampleS * 4;
  for (const x of samples) {
    const warm = x.t < s.warmUpS;
    if (warm && x.t % warmEvery !== 0) continue;
    lines.push(row([`${x.t}${warm ? ' (warm-up)' : ''}`, int(x.roots), kb(x.on.totalBytes), int(x.on.totalRows), ...extra(x.on), kb(x.off.totalBytes), int(x.off.totalRows)]));
  }
  return lines;
}

function tableTable({ settings: s, samples }) {
  const steady = samples.filter((x) => x.t >= s.warmUpS);
  const names = [...new Set(samples.flatMap((x) => [...Object.keys(x.on.tables), ...Object.keys(x.off.tables)]))].sort();
  const lines = head(['table', 'on: table KB', 'on: index KB', 'on: rows', 'on: max ÷ min (table + index)', 'off: KB (table + index), first → last', 'off: rows, first → last']);
  const left = [];
  for (const name of names) {
    const on = steady.map((x) => x.on.tables[name] ?? { bytes: 0, indexBytes: 0, rows: 0 });
    const off = steady.map((x) => x.off.tables[name] ?? { bytes: 0, indexBytes: 0, rows: 0 });
    const all = samples.flatMap((x) => [x.on.tables[name], x.off.tables[name]]).filter(Boolean);
    if (all.every((t) => t.rows === all[0].rows && t.bytes === all[0].bytes && t.indexBytes === all[0].indexBytes)) {
      left.push(name);
      continue;
    }
    const both = on.map((t) => t.bytes + t.indexBytes);
    const offBoth = off.map((t) => t.bytes + t.indexBytes);
    lines.push(row([name, range(on.map((t) => t.bytes), kb), range(on.map((t) => t.indexBytes), kb), range(on.map((t) => t.rows), int),
      fmt(Math.max(...both) / Math.min(...both)), `${kb(offBoth[0])} → ${kb(offBoth.at(-1))}`, `${int(off[0].rows)} → ${int(off.at(-1).rows)}`]));
  }
  if (left.length) lines.push('', `Unchanged during the run (left out): ${left.join(', ')}.`);
  return lines;
}

/** Markdown for every retention-steady run in `details` ([{ target, shape, run, detail }]); '' when none. */
export function retentionSection(details) {
  const out = [];
  for (const { target, run, detail: d } of details.filter((x) => x.shape === 'retention-steady')) {
    const steady = d.samples.filter((x) => x.t >= d.settings.warmUpS);
    const on = steady.map((x) => x.on.totalBytes);
    const ratio = Math.max(...on) / Math.min(...on);
    const verdict = ratio <= d.tolerance ? 'flat' : 'not flat';
    const periodS = Math.min(...Object.values(d.settings.ages)) / 1000;
    const pct = (side) => `${fmt(100 * trendPerPeriod(steady.map((x) => x.t), steady.map((x) => x[side].totalBytes), periodS))} %`;
    out.push(
      `### retention-steady: ${target}${run > 1 ? ` (run ${run})` : ''}`,
      '',
      ...settingsText(d),
      '',
      `Tables + indexes of the retention-on database after warm-up: max ÷ min ${fmt(ratio)}, ${verdict} (tolerance: max ÷ min ≤ ${d.tolerance}); ` +
        `trend ${pct('on')} per ${periodS} s period (retention off: ${pct('off')}).`,
      '',
      ...sampleTable(d),
      '',
      `Per table, after warm-up (indexes counted with their table):`,
      '',
      ...tableTable(d),
      '',
    );
  }
  return out.join('\n').trim();
}
