// Resident-set-size readings of a process (Linux /proc, with a portable fallback).
import { readFileSync } from 'node:fs';

/** { peakRssMb, rssMb } for pid from /proc/<pid>/status, or undefined when unavailable. */
export function readRss(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => {
      const m = status.match(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm'));
      return m ? Number(m[1]) / 1024 : undefined;
    };
    return { peakRssMb: kb('VmHWM'), rssMb: kb('VmRSS') };
  } catch {
    return undefined;
  }
}

/** In-process sampler: keeps the largest process.memoryUsage().rss seen (fallback off Linux). */
export function startRssSampler(everyMs = 50) {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    const rss = process.memoryUsage().rss;
    if (rss > peak) peak = rss;
  }, everyMs);
  timer.unref();
  return {
    peakMb: () => Math.max(peak, process.memoryUsage().rss) / (1024 * 1024),
    stop: () => clearInterval(timer),
  };
}
