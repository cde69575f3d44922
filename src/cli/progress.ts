/**
 * The progress bar of bulk actions, drawn on stderr when stderr is a terminal (and left out
 * otherwise, so piped output and logs stay clean).
 * @module
 */

/** Progress of a bulk action, as `queue.retryJobs()` and its siblings report it after each batch. */
export interface BulkProgressLike {
  done: number;
  skipped: number;
  total: number;
}

/** One line of the bar: `retrying [#######-------------]  35%  350/1000  (2 skipped)`. */
export function renderProgress(label: string, p: BulkProgressLike, width = 30): string {
  const handled = p.done + p.skipped;
  const total = Math.max(p.total, handled);
  const ratio = total === 0 ? 1 : handled / total;
  const filled = Math.round(ratio * width);
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
  const pct = `${Math.floor(ratio * 100)}%`.padStart(4);
  const skipped = p.skipped > 0 ? `  (${p.skipped} skipped)` : '';
  return `${label} [${bar}] ${pct}  ${handled}/${total}${skipped}`;
}

/** A bar bound to a stream: `update` redraws it in place, `clear` erases it. */
export interface ProgressBar {
  /** Pass as `onProgress`; absent when the stream is not a terminal. */
  update: ((p: BulkProgressLike) => void) | undefined;
  /** Erases the bar, if one was drawn. */
  clear(): void;
}

/** A progress bar on `stream` when it is a terminal; a no-op otherwise. */
export function progressBar(stream: NodeJS.WriteStream, label: string): ProgressBar {
  if (stream.isTTY !== true) return { update: undefined, clear: () => undefined };
  let drawn = false;
  return {
    update: (p) => {
      drawn = true;
      stream.write(`\r${renderProgress(label, p)}\u001b[K`);
    },
    clear: () => {
      if (drawn) stream.write('\r\u001b[K');
      drawn = false;
    },
  };
}
