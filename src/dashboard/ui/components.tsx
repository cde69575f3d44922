/** Small pieces every page uses. Text is always rendered as text: no HTML is built from data. */
import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext, useState } from 'preact/hooks';
import { ApiError, type ConfigJson, type Status } from './api.js';
import { json, localTime, relative } from './format.js';
import { useClock } from './hooks.js';

/** What every page may need: the dashboard's config and a way to show a message. */
export interface AppContext {
  config: ConfigJson;
  notify: (text: string, kind?: 'ok' | 'error') => void;
}

/** The app's context. */
export const App = createContext<AppContext>({
  config: { apiVersion: 1, readOnly: true, redact: { args: false, results: false, errors: false }, pollInterval: 2000 },
  notify: () => undefined,
});

/** The context of the app. */
export function useApp(): AppContext {
  return useContext(App);
}

/** A job status as a coloured label. */
export function StatusBadge({ status }: { status: Status | undefined }) {
  return <span class={`badge st-${status ?? 'unknown'}`}>{status ?? '?'}</span>;
}

/**
 * A relative time (`3 min ago`) that moves on with the page's shared clock, with the instant in
 * UTC on hover; `exact` also shows the local date and time before it.
 */
export function When({ at, exact = false }: { at: string | number | undefined; exact?: boolean }) {
  const text = useClock((now) => (at === undefined ? '' : relative(at, now)));
  if (at === undefined) return <span class="muted">—</span>;
  const iso = typeof at === 'number' ? new Date(at).toISOString() : at;
  return (
    <time dateTime={iso} title={iso}>
      {exact ? (
        <>
          {localTime(iso)} <span class="muted">({text})</span>
        </>
      ) : (
        text
      )}
    </time>
  );
}

/** A payload as pretty JSON text, or a note when the dashboard hides it. */
export function Payload({ value, hidden, label }: { value: unknown; hidden: boolean; label: string }) {
  if (hidden) return <p class="muted redacted">{label} hidden by this dashboard (redact)</p>;
  return (
    <pre class="payload" aria-label={label}>
      {json(value)}
    </pre>
  );
}

/** An error or a load in progress. */
export function LoadState({ error, loading }: { error: Error | undefined; loading: boolean }) {
  if (error) return <p class="error" role="alert">{error.message}</p>;
  if (loading) return <p class="muted">Loading…</p>;
  return null;
}

/** The message of an action's failure. */
export function failure(e: unknown): string {
  if (e instanceof ApiError) return e.status === 403 ? `Refused: ${e.message}` : e.message;
  return e instanceof Error ? e.message : String(e);
}

/** Props of {@link Action}. */
export interface ActionProps {
  label: string;
  run: () => Promise<unknown>;
  /** Asked first with `confirm()`; no action when declined. */
  confirm?: string;
  danger?: boolean;
  /** Shown when the action succeeded (a function gets what `run` resolved with). */
  done?: string | ((result: unknown) => string);
  /** Called after success. */
  after?: () => void;
}

/**
 * A mutation button: hidden on a read-only dashboard, busy while it runs, reports the outcome.
 * While busy it is `aria-disabled` rather than `disabled`, so keyboard focus stays on it.
 */
export function Action({ label, run, confirm: question, danger, done, after }: ActionProps) {
  const { config, notify } = useApp();
  const [busy, setBusy] = useState(false);
  if (config.readOnly) return null;
  const click = async (): Promise<void> => {
    if (busy || (question !== undefined && !window.confirm(question))) return;
    setBusy(true);
    try {
      const result = await run();
      notify(typeof done === 'function' ? done(result) : (done ?? `${label}: done`), 'ok');
      after?.();
    } catch (e) {
      notify(failure(e), 'error');
    } finally {
      setBusy(false);
    }
  };
  return (
    <button type="button" class={danger ? 'danger' : ''} aria-disabled={busy ? 'true' : undefined} onClick={() => void click()}>
      {busy ? `${label}…` : label}
    </button>
  );
}

/** A titled section (named by its heading for assistive technology). */
export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  const headingId = `section-${id ?? title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <section aria-labelledby={headingId}>
      <h2 id={headingId}>{title}</h2>
      {children}
    </section>
  );
}

/** Text for screen readers only (e.g. the header of a column of buttons). */
export function Hidden({ children }: { children: ComponentChildren }) {
  return <span class="visually-hidden">{children}</span>;
}
