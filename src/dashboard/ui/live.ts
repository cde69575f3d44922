/**
 * The live stream: one EventSource per open page, shared by its views. The server reads the
 * database once per interval for every page together.
 */
import { useEffect, useState } from 'preact/hooks';
import { apiBase, type SnapshotJson } from './api.js';

type Listener = (s: SnapshotJson) => void;
const listeners = new Set<Listener>();
let source: EventSource | undefined;
let latest: SnapshotJson | undefined;

function open(): void {
  if (source !== undefined) return;
  source = new EventSource(new URL('live', apiBase()));
  source.addEventListener('snapshot', (e) => {
    latest = JSON.parse((e as MessageEvent<string>).data) as SnapshotJson;
    for (const l of listeners) l(latest);
  });
}

/** The latest snapshot, re-rendering the component at each change. */
export function useLive(): SnapshotJson | undefined {
  const [snap, setSnap] = useState<SnapshotJson | undefined>(latest);
  useEffect(() => {
    open();
    listeners.add(setSnap);
    return () => void listeners.delete(setSnap);
  }, []);
  return snap;
}

/** A number that changes whenever the live stream reports a change: put it in an effect's deps to refetch. */
export function useLiveVersion(): number {
  return useLive()?.version ?? 0;
}
