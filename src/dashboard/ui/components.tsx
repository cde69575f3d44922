/** Small pieces every page uses. Text is always rendered as text: no HTML is built from data. */
import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext, useState } from 'preact/hooks';
import { ApiError, type ConfigJson, type Status } from './api.js';
import { json, relative } from './format.js';

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

/** A relative time, with the exact instant on hover. */
export function When({ at }: { at: string | number | undefined }) {
  if (at === undefined) return <span class="muted">—</span>;
  const iso = typeof at === 'number' ? new Date(at).toISOString() : at;
  return (
    <time dateTime={iso} title={iso}>
      {relative(at)}
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
  /** Shown when the action succeeded. */
  done?: string;
  /** Called after success. */
  after?: () => void;
}

/** A mutation button: hidden on a read-only dashboard, busy while it runs, reports the outcome. */
export function Action({ label, run, confirm: question, danger, done, after }: ActionProps) {
  const { config, notify } = useApp();
  const [busy, setBusy] = useState(false);
  if (config.readOnly) return null;
  const click = async (): Promise<void> => {
    if (question !== undefined && !window.confirm(question)) return;
    setBusy(true);
    try {
      await run();
      notify(done ?? `${label}: done`, 'ok');
      after?.();
    } catch (e) {
      notify(failure(e), 'error');
    } finally {
      setBusy(false);
    }
  };
  return (
    <button type="button" class={danger ? 'danger' : ''} disabled={busy} onClick={() => void click()}>
      {busy ? `${label}…` : label}
    </button>
  );
}

/** A titled section. */
export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section>
      <h2>{title}</h2>
      {children}
    </section>
  );
}
