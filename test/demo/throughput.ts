// The demo's view of a client's completed transactions (performance.now() of each acknowledgement, from
// guest/host/durable-client.ts): the longest pause and the throughput over time.
/** The longest time between two consecutive completed transactions whose pause overlaps [fromMs, toMs]. */
export function longestGap(completions: number[], fromMs = -Infinity, toMs = Infinity): number {
  let gap = 0;
  for (let i = 1; i < completions.length; i++) {
    if (completions[i]! < fromMs || completions[i - 1]! > toMs) continue;
    gap = Math.max(gap, completions[i]! - completions[i - 1]!);
  }
  return gap;
}

/** Transactions per second in consecutive buckets of `bucketMs`, from `startMs` to `endMs`. */
export function throughputSeries(
  completions: number[],
  startMs: number,
  endMs: number,
  bucketMs: number,
): number[] {
  const buckets = new Array<number>(Math.max(1, Math.ceil((endMs - startMs) / bucketMs))).fill(0);
  for (const t of completions) {
    const i = Math.floor((t - startMs) / bucketMs);
    if (i >= 0 && i < buckets.length) buckets[i]!++;
  }
  return buckets.map((count) => (count * 1000) / bucketMs);
}

/** The pauses of at least `minMs` between consecutive completed transactions, as spans from `startMs`. */
export function gapsOf(
  completions: number[],
  startMs: number,
  minMs: number,
): { fromMs: number; toMs: number }[] {
  const gaps: { fromMs: number; toMs: number }[] = [];
  for (let i = 1; i < completions.length; i++) {
    if (completions[i]! - completions[i - 1]! >= minMs)
      gaps.push({ fromMs: completions[i - 1]! - startMs, toMs: completions[i]! - startMs });
  }
  return gaps;
}
