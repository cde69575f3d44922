/**
 * Pieces of the job page for histories of any size: a pager over one kind of entry
 * (checkpoints, signals), and a payload or error text the page left out for its size, shown
 * whole on demand.
 */
import { useState } from 'preact/hooks';
import { get } from '../api.js';
import { failure, Payload, useApp } from '../components.js';

/** What the server says it left out of an entry: field → its size in bytes. */
export interface Clip {
  clipped?: Record<string, number>;
}

/** `812 B`, `4.2 KB`, `1.0 MB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Props of {@link Pager}. */
export interface PagerProps {
  /** `checkpoints`, `signals`. */
  what: string;
  /** How many entries come before this page. */
  offset: number;
  /** Entries on this page. */
  count: number;
  /** Whether a later page exists. */
  more: boolean;
  first: () => void;
  previous: () => void;
  next: () => void;
}

/** Says which part of a long list is shown (`Checkpoints 101–200 of more`) and moves through it; nothing for a list that fits one page. */
export function Pager({ what, offset, count, more, first, previous, next }: PagerProps) {
  if (offset === 0 && !more) return null;
  const range = count === 0 ? `after the first ${offset}` : `${offset + 1}–${offset + count}`;
  return (
    <nav class="pager" aria-label={`Pages of ${what}`}>
      <span class="pager-range">
        Showing {what} {range}
        {more ? ', more follow' : ', the last ones'}.
      </span>{' '}
      {offset > 0 && (
        <>
          <button type="button" onClick={first}>
            First {what}
          </button>{' '}
          <button type="button" onClick={previous}>
            Previous {what}
          </button>{' '}
        </>
      )}
      {more && (
        <button type="button" onClick={next}>
          Next {what}
        </button>
      )}
    </nav>
  );
}

/**
 * A value the page left out for its size: its size and a button that fetches it whole
 * (`path` under `api/`, answering `{ [key]: entry }`), then shows it.
 */
export function WholeValue({ size, path, pick, label, text }: { size: number; path: string; pick: (answer: unknown) => unknown; label: string; text?: boolean }) {
  const { notify } = useApp();
  const [value, setValue] = useState<{ v: unknown } | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  if (value !== undefined) {
    return text === true && typeof value.v === 'string' ? <pre class="payload error-text">{value.v}</pre> : <Payload value={value.v} hidden={false} label={label} />;
  }
  const load = async (): Promise<void> => {
    if (busy) return;
    setBusy(true);
    try {
      setValue({ v: pick(await get<unknown>(path)) });
    } catch (e) {
      notify(failure(e), 'error');
    } finally {
      setBusy(false);
    }
  };
  return (
    <p class="muted clipped">
      {label}: {bytes(size)}, too large to show in the list.{' '}
      <button type="button" aria-disabled={busy ? 'true' : undefined} onClick={() => void load()}>
        {busy ? 'Loading…' : `Show ${label.toLowerCase()}`}
      </button>
    </p>
  );
}
