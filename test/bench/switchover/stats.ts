// The switchover bench's arithmetic (pure): nearest-rank percentiles, the run schedule, the client's gap around a
// switchover and its first reply after the resume.

/** Nearest-rank percentile (q in 0..1) of a non-empty list; NaN for an empty one. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * `tern` Tern migrations and `direct` direct ones, the direct ones spread evenly (30 and 10: T T T D, ten times), so
 * both see the same host load over the run.
 */
export function interleave(tern: number, direct: number): ('tern' | 'direct')[] {
  const total = tern + direct;
  const order: ('tern' | 'direct')[] = [];
  for (let i = 0; i < total; i++) {
    const isDirect = Math.floor(((i + 1) * direct) / total) > Math.floor((i * direct) / total);
    order.push(isDirect ? 'direct' : 'tern');
  }
  return order;
}

/**
 * The longest interval between two consecutive completions (wall ms, sorted) of one client that overlaps the
 * switchover [pausedMs, resumedMs]: the client's view of it. Undefined when the client completed nothing on one
 * side of it.
 */
export function clientGap(
  completions: readonly number[],
  pausedMs: number,
  resumedMs: number,
): number | undefined {
  let gap: number | undefined;
  for (let i = 1; i < completions.length; i++) {
    if (completions[i]! < pausedMs || completions[i - 1]! > resumedMs) continue;
    gap = Math.max(gap ?? 0, completions[i]! - completions[i - 1]!);
  }
  return gap;
}

/** The first completion (wall ms) after `afterMs`, of any of the clients. */
export function firstAfter(completions: readonly (readonly number[])[], afterMs: number): number | undefined {
  let first: number | undefined;
  for (const list of completions) {
    const at = list.find((t) => t > afterMs);
    if (at !== undefined && (first === undefined || at < first)) first = at;
  }
  return first;
}

/** `p50 … p90 … p99 …` of a metric, or `n/a` without samples. */
export function describe(values: readonly number[], digits = 1): string {
  if (values.length === 0) return 'n/a';
  return (['p50', 'p90', 'p99'] as const)
    .map((label, i) => `${label} ${percentile(values, [0.5, 0.9, 0.99][i]!).toFixed(digits).padStart(7)}`)
    .join('  ');
}
