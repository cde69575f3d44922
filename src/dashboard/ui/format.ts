/** Text for people: durations, relative times, short ids. */

/** `1.2 s`, `3 min`, `2 h 5 min`, `4 d`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

/** `5 s ago`, `in 3 min`, `just now` (whole seconds: the text changes at most once a second). */
export function relative(iso: string | number, now = Date.now()): string {
  const t = typeof iso === 'number' ? iso : Date.parse(iso);
  const d = t - now;
  const s = Math.round(Math.abs(d) / 1000);
  if (s === 0) return 'just now';
  const text = s < 60 ? `${s} s` : duration(Math.abs(d));
  return d > 0 ? `in ${text}` : `${text} ago`;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** `2026-03-04 09:30` (seconds added when not zero), in the browser's time zone. */
export function localTime(iso: string | number): string {
  const d = new Date(iso);
  const sec = d.getSeconds() === 0 ? '' : `:${pad(d.getSeconds())}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}${sec}`;
}

/** The last 8 characters of an id (ids are time-ordered, so the end tells them apart). */
export function shortId(id: string): string {
  return id.length > 12 ? `…${id.slice(-8)}` : id;
}

/** Pretty JSON of a payload (`undefined` shows as a dash). */
export function json(v: unknown): string {
  if (v === undefined) return '—';
  try {
    return JSON.stringify(v, null, 2) ?? String(v);
  } catch {
    return String(v);
  }
}
