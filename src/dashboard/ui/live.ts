/**
 * The live stream: one EventSource per open page, shared by its views. The server reads the
 * database once per interval for every page together.
 */
import { useEffect, useState } from 'preact/hooks';
import { apiBase, type SnapshotJson } from './api.js';

/** A snapshot, with when this page received it (the browser's clock). */
export type LiveSnapshot = SnapshotJson & { receivedAt: number };

/** The stream's connection: `connecting` until the first answer, `lost` while the browser retries. */
export type Connection = 'connecting' | 'live' | 'lost';

interface LiveState {
  snapshot: LiveSnapshot | undefined;
  connection: Connection;
}

type Listener = (s: LiveState) => void;
const listeners = new Set<Listener>();
let source: EventSource | undefined;
let state: LiveState = { snapshot: undefined, connection: 'connecting' };

function set(next: Partial<LiveState>): void {
  state = { ...state, ...next };
  for (const l of listeners) l(state);
}

function open(): void {
  if (source !== undefined) return;
  source = new EventSource(new URL('live', apiBase()));
  source.addEventListener('open', () => set({ connection: 'live' }));
  // EventSource reconnects by itself after an error; the page says so meanwhile.
  source.addEventListener('error', () => set({ connection: 'lost' }));
  source.addEventListener('snapshot', (e) => {
    const snapshot = JSON.parse((e as MessageEvent<string>).data) as SnapshotJson;
    set({ snapshot: { ...snapshot, receivedAt: Date.now() }, connection: 'live' });
  });
}

function useLiveState(): LiveState {
  const [s, setS] = useState<LiveState>(state);
  useEffect(() => {
    open();
    listeners.add(setS);
    setS(state);
    return () => void listeners.delete(setS);
  }, []);
  return s;
}

/** The latest snapshot, re-rendering the component at each change. */
export function useLive(): LiveSnapshot | undefined {
  return useLiveState().snapshot;
}

/** The stream's connection state, and the error of the server's last read, if it failed. */
export function useConnection(): { connection: Connection; error: string | undefined } {
  const s = useLiveState();
  return { connection: s.connection, error: s.snapshot?.error };
}

/** A number that changes whenever the live stream reports a change: put it in an effect's deps to refetch. */
export function useLiveVersion(): number {
  return useLive()?.version ?? 0;
}
