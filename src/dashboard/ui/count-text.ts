/** How the pages show a count the server capped (`queue.stats({ cap })`, `queue.queues({ cap })`). */

/**
 * A count as the pages show it: `1,234`, or `100,000+` above the cap the server counted up to
 * (the count reads `cap + 1` there).
 */
export function countText(n: number, cap: number | undefined): string {
  return cap !== undefined && n > cap ? `${cap.toLocaleString('en-US')}+` : n.toLocaleString('en-US');
}
