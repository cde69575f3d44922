/**
 * Retention: prune finished jobs now (`POST api/prune`), either what the queue's retention ages
 * say is due (`queue.prune()`) or every finished job older than an age (`{ olderThan }`).
 * Hidden on a read-only dashboard.
 */
import { useState } from 'preact/hooks';
import { post } from '../api.js';
import { failure, Section, useApp } from '../components.js';

const UNIT_MS = { minutes: 60_000, hours: 3_600_000, days: 86_400_000 } as const;
type Unit = keyof typeof UNIT_MS;

/** What a prune may be asked: the retention ages, or an age of its own. */
type Mode = 'due' | 'older';

/** The "Retention" section of the queues page. */
export function RetentionControl() {
  const { config, notify } = useApp();
  const [mode, setMode] = useState<Mode>('due');
  const [amount, setAmount] = useState('7');
  const [unit, setUnit] = useState<Unit>('days');
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<string | undefined>(undefined);
  if (config.readOnly) return null;

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (busy) return;
    const n = Number(amount);
    // The queue takes ages up to 100 years (365-day years), in whole ms.
    if (mode === 'older' && (amount.trim() === '' || !Number.isFinite(n) || n < 0 || Math.round(n * UNIT_MS[unit]) > 36_500 * UNIT_MS.days)) {
      notify('The age must be a number from 0 to 100 years (36500 days)', 'error');
      return;
    }
    const olderThan = mode === 'older' ? Math.round(n * UNIT_MS[unit]) : undefined;
    const what =
      olderThan === undefined
        ? 'the finished jobs whose retention age has passed'
        : `every finished job (completed, failed or cancelled) that finished more than ${amount} ${unit} ago`;
    if (!window.confirm(`Delete ${what}, with their checkpoints and signals? This cannot be undone.`)) return;
    setBusy(true);
    try {
      const r = await post<{ deleted: number }>('prune', olderThan === undefined ? {} : { olderThan });
      const text = `Pruned: ${r.deleted} finished job${r.deleted === 1 ? '' : 's'} deleted.`;
      setOutcome(text);
      notify(text, 'ok');
    } catch (err) {
      notify(failure(err), 'error');
    } finally {
      setBusy(false);
    }
  };

  return (
    <Section title="Retention">
      <p class="muted">
        Workers delete finished jobs once their retention age has passed: by default completed jobs after 7 days, failed and cancelled
        ones after 30 days (the queue's <code>retention</code> option). A workflow goes as a whole, and live jobs are never deleted.
      </p>
      <form class="prune" onSubmit={(e) => void submit(e)} aria-label="Prune finished jobs">
        <fieldset>
          <legend>Prune now</legend>
          <label>
            <input type="radio" name="prune-mode" value="due" checked={mode === 'due'} onChange={() => setMode('due')} />
            What retention says is due (the ages of the queue this dashboard serves; nothing when its retention is off)
          </label>
          <label>
            <input type="radio" name="prune-mode" value="older" checked={mode === 'older'} onChange={() => setMode('older')} />
            Every finished job, whatever its status, older than
          </label>{' '}
          <input
            type="number"
            name="prune-age"
            aria-label="Age"
            min={0}
            step="any"
            size={5}
            value={amount}
            onFocus={() => setMode('older')}
            onInput={(e) => setAmount((e.target as HTMLInputElement).value)}
          />{' '}
          <select name="prune-unit" aria-label="Unit" value={unit} onFocus={() => setMode('older')} onChange={(e) => setUnit((e.target as HTMLSelectElement).value as Unit)}>
            {Object.keys(UNIT_MS).map((u) => (
              <option value={u} key={u}>
                {u}
              </option>
            ))}
          </select>
        </fieldset>
        <button type="submit" class="danger" aria-disabled={busy ? 'true' : undefined}>
          {busy ? 'Pruning…' : 'Prune now'}
        </button>
        {outcome !== undefined && <p class="prune-outcome">{outcome}</p>}
      </form>
    </Section>
  );
}
