/** Small hooks shared by the pages. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/** What {@link useLoad} returns. */
export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  reload: () => void;
}

/**
 * Loads data and loads it again whenever a dependency changes (the live version among them);
 * the previous data stays shown while the next load runs, so live refreshes do not flicker.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError(undefined);
      },
      (e: unknown) => live && setError(e instanceof Error ? e : new Error(String(e))),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, reload };
}

/** How often the page's clock ticks, in ms: relative times ("5 s ago") move on without a reload. */
export const TICK_MS = 1000;

type Tick = (now: number) => void;
const ticks = new Set<Tick>();
let timer: ReturnType<typeof setInterval> | undefined;

function tickAll(): void {
  if (document.hidden) return;
  const now = Date.now();
  for (const t of ticks) t(now);
}

/** One timer for the whole page, running only while some component shows a time. */
function onTick(t: Tick): () => void {
  ticks.add(t);
  if (timer === undefined) {
    timer = setInterval(tickAll, TICK_MS);
    document.addEventListener('visibilitychange', tickAll);
  }
  return () => {
    ticks.delete(t);
    if (ticks.size > 0 || timer === undefined) return;
    clearInterval(timer);
    timer = undefined;
    document.removeEventListener('visibilitychange', tickAll);
  };
}

/**
 * `compute(now)`, computed again at each tick of the page's shared clock; the component renders
 * again only when the value changes (a time shown in minutes does not re-render every second).
 */
export function useClock<T>(compute: (now: number) => T): T {
  const [now, setNow] = useState(Date.now);
  const latest = useRef({ compute, now });
  latest.current = { compute, now };
  useEffect(
    () =>
      onTick((t) => {
        const { compute: c, now: n } = latest.current;
        if (!Object.is(c(t), c(n))) setNow(t);
      }),
    [],
  );
  return compute(now);
}
