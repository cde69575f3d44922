/**
 * A job's signals on its page: name, payload (hidden when the dashboard redacts args: a signal's
 * payload is an input; a large one shown on demand), when it was sent, and when a wait consumed
 * it or that it is buffered. A page of them at a time, oldest first, with a pager when there
 * are more.
 */
import type { SignalJson } from '../api.js';
import { Payload, Section, When } from '../components.js';
import { Pager, WholeValue, type Clip, type PagerProps } from './job-parts.js';

/** A signal as the job page receives it. */
export type PageSignal = SignalJson & Clip;

/** The signals section; nothing when the job has received none. */
export function Signals({ jobId, signals, pager }: { jobId: string; signals: PageSignal[]; pager: Omit<PagerProps, 'what' | 'count'> }) {
  if (signals.length === 0 && pager.offset === 0) return null;
  return (
    <Section title="Signals">
      <Pager what="signals" count={signals.length} {...pager} />
      <table class="signals">
        <thead>
          <tr>
            <th>Name</th>
            <th>Payload</th>
            <th>Sent</th>
            <th>Consumed</th>
          </tr>
        </thead>
        <tbody>
          {signals.map((s) => (
            <tr key={s.seq}>
              <td>{s.name}</td>
              <td>
                {s.clipped?.['payload'] !== undefined ? (
                  <WholeValue
                    size={s.clipped['payload']}
                    path={`jobs/${encodeURIComponent(jobId)}/signals/${s.seq}`}
                    pick={(a) => (a as { signal: SignalJson }).signal.payload}
                    label={`Payload of signal ${s.name}`}
                  />
                ) : (
                  <Payload value={s.payload} hidden={s.redacted?.includes('payload') ?? false} label={`Payload of signal ${s.name}`} />
                )}
              </td>
              <td>
                <When at={s.sentAt} />
              </td>
              <td>{s.consumedAt !== undefined ? <When at={s.consumedAt} /> : <span class="badge st-waiting">buffered</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
