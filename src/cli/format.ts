/**
 * Human output of `sdj`: aligned tables, relative times and ages, and ANSI colour that is on only
 * when stdout is a terminal, `NO_COLOR` is unset and `--no-color` was not given.
 * @module
 */

/** The few styles the CLI uses. */
export type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan' | 'magenta';

const CODES: Record<Style, [open: number, close: number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
  magenta: [35, 39],
};

/** Applies a style to text, or returns the text as is when colour is off. */
export type Styler = (style: Style | undefined, text: string) => string;

/** A styler that colours when `enabled` is true and is the identity otherwise. */
export function makeStyler(enabled: boolean): Styler {
  return (style, text) => {
    if (!enabled || style === undefined || text === '') return text;
    const [open, close] = CODES[style];
    return `\u001b[${open}m${text}\u001b[${close}m`;
  };
}

/**
 * Whether to colour: stdout is a terminal, `NO_COLOR` is unset or empty (https://no-color.org),
 * and `--no-color` was not given.
 */
export function colorWanted(flag: boolean, env: NodeJS.ProcessEnv, isTTY: boolean | undefined): boolean {
  return flag && isTTY === true && (env['NO_COLOR'] === undefined || env['NO_COLOR'] === '');
}

/** A table column: its header and alignment (numbers align right). */
export interface Column {
  header: string;
  align?: 'left' | 'right';
}

/** A table cell: plain text, or text with a style applied after alignment. */
export type Cell = string | { text: string; style?: Style | undefined };

/**
 * Renders rows as an aligned table with a bold header line; columns are two spaces apart and
 * trailing blanks are trimmed. Widths are measured on the plain text, so colour never shifts columns.
 */
export function table(columns: readonly Column[], rows: readonly (readonly Cell[])[], style: Styler): string {
  const text = (c: Cell | undefined): string => (c === undefined ? '' : typeof c === 'string' ? c : c.text);
  const widths = columns.map((col, i) => Math.max(col.header.length, ...rows.map((r) => text(r[i]).length)));
  const pad = (s: string, i: number): string => {
    const w = widths[i] ?? 0;
    if (columns[i]?.align === 'right') return s.padStart(w);
    // The last column is not padded, so no line ends in blanks (inside or outside colour codes).
    return i === columns.length - 1 ? s : s.padEnd(w);
  };
  const header = columns.map((c, i) => style('bold', pad(c.header, i))).join('  ');
  const lines = rows.map((r) =>
    columns
      .map((_, i) => {
        const cell = r[i];
        const styled = typeof cell === 'object' ? cell.style : undefined;
        return style(styled, pad(text(cell), i));
      })
      .join('  ')
      .trimEnd(),
  );
  return [header.trimEnd(), ...lines].join('\n');
}

/**
 * A key/value block (`jobs show`): keys padded to one width, values as given. Rows whose value
 * is undefined are left out.
 */
export function fields(rows: readonly [key: string, value: string | undefined][], style: Styler, indent = '  '): string {
  const shown = rows.filter((r): r is [string, string] => r[1] !== undefined);
  const width = Math.max(0, ...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${indent}${style('dim', k.padEnd(width))}  ${v}`).join('\n');
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * A length of time for people: `45s`, `12m`, `2h 5m`, `3d 4h` (whole units, rounded down;
 * under a second is `0s`).
 */
export function formatAge(ms: number): string {
  const t = Math.max(0, Math.floor(ms));
  if (t < MINUTE) return `${Math.floor(t / SECOND)}s`;
  if (t < HOUR) return `${Math.floor(t / MINUTE)}m`;
  if (t < DAY) {
    const h = Math.floor(t / HOUR);
    const m = Math.floor((t % HOUR) / MINUTE);
    return m === 0 ? `${h}h` : `${h}h ${m}m`;
  }
  const d = Math.floor(t / DAY);
  const h = Math.floor((t % DAY) / HOUR);
  return h === 0 ? `${d}d` : `${d}d ${h}h`;
}

/** An instant relative to `now`: `3m ago`, `in 2h`, `now` (within a second), or `-` when absent. */
export function relativeTime(at: Date | undefined, now: number): string {
  if (at === undefined) return '-';
  const diff = at.getTime() - now;
  if (Math.abs(diff) < SECOND) return 'now';
  return diff < 0 ? `${formatAge(-diff)} ago` : `in ${formatAge(diff)}`;
}

/** An instant as ISO text followed by its relative time, e.g. `2025-01-02T03:04:05.000Z (3m ago)`. */
export function timeWithRelative(at: Date | undefined, now: number): string | undefined {
  return at === undefined ? undefined : `${at.toISOString()} (${relativeTime(at, now)})`;
}

/** The first line of a text, cut to `max` characters with an ellipsis. */
export function shorten(text: string | undefined, max: number): string {
  if (text === undefined) return '';
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > max ? `${line.slice(0, Math.max(0, max - 1))}…` : line;
}

/** A JSON value on one line (for args, results and step outputs); `undefined` stays absent. */
export function compactJson(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The style a job status is shown in. */
export function statusStyle(status: string): Style | undefined {
  switch (status) {
    case 'failed':
      return 'red';
    case 'completed':
      return 'green';
    case 'running':
      return 'cyan';
    case 'pending':
    case 'waiting':
    case 'paused':
      return 'yellow';
    case 'cancelled':
      return 'dim';
    default:
      return undefined;
  }
}

/** `1 job` / `3 jobs`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
