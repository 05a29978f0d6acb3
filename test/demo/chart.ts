// The transactions-per-second chart of the demo: rows of bars in the terminal, and an SVG with the freeze marked.

export interface ChartInput {
  /** Transactions per second per bucket. */
  series: number[];
  bucketMs: number;
  /** Where the freeze (guest paused) started and ended, in ms from the series start. */
  freeze?: { fromMs: number; toMs: number };
  /** Where the migration started and ended, in ms from the series start. */
  migration?: { fromMs: number; toMs: number };
}

const BAR_WIDTH = 50;

export function terminalChart({ series, bucketMs, freeze, migration }: ChartInput): string {
  const peak = Math.max(1, ...series);
  const within = (range: { fromMs: number; toMs: number } | undefined, t: number): boolean =>
    range !== undefined && t + bucketMs > range.fromMs && t < range.toMs;
  return series
    .map((tps, i) => {
      const t = i * bucketMs;
      const bar = '█'.repeat(Math.round((tps / peak) * BAR_WIDTH)).padEnd(BAR_WIDTH);
      const mark = within(freeze, t) ? ' ◀ freeze' : within(migration, t) ? ' · migrating' : '';
      return `${(t / 1000).toFixed(1).padStart(6)} s │${bar}│ ${tps.toFixed(0).padStart(6)} tx/s${mark}`;
    })
    .join('\n');
}

export function svgChart({ series, bucketMs, freeze, migration }: ChartInput, title: string): string {
  const width = 900;
  const height = 320;
  const left = 60;
  const bottom = 40;
  const plotWidth = width - left - 20;
  const plotHeight = height - bottom - 40;
  const peak = Math.max(1, ...series);
  const durationMs = series.length * bucketMs;
  const x = (ms: number): number => left + (ms / durationMs) * plotWidth;
  const y = (tps: number): number => 40 + plotHeight - (tps / peak) * plotHeight;
  const points = series
    .map((tps, i) => `${x((i + 0.5) * bucketMs).toFixed(1)},${y(tps).toFixed(1)}`)
    .join(' ');
  const band = (range: { fromMs: number; toMs: number } | undefined, fill: string, label: string): string =>
    range === undefined
      ? ''
      : `<rect x="${x(range.fromMs).toFixed(1)}" y="40" width="${Math.max(1, x(range.toMs) - x(range.fromMs)).toFixed(1)}" ` +
        `height="${plotHeight}" fill="${fill}"/><text x="${x(range.fromMs).toFixed(1)}" y="35" font-size="11">${label}</text>`;
  const ticks = Array.from(
    { length: Math.floor(durationMs / 1000) + 1 },
    (_, s) =>
      `<text x="${x(s * 1000).toFixed(1)}" y="${height - bottom + 16}" font-size="11" text-anchor="middle">${s}s</text>`,
  ).join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14">${title}</text>`,
    band(migration, '#e8f0fe', 'migration'),
    band(freeze, '#fde2e2', 'freeze'),
    `<polyline fill="none" stroke="#1a73e8" stroke-width="2" points="${points}"/>`,
    `<line x1="${left}" y1="${40 + plotHeight}" x2="${left + plotWidth}" y2="${40 + plotHeight}" stroke="black"/>`,
    `<line x1="${left}" y1="40" x2="${left}" y2="${40 + plotHeight}" stroke="black"/>`,
    `<text x="${left - 8}" y="44" font-size="11" text-anchor="end">${peak.toFixed(0)}</text>`,
    `<text x="${left - 8}" y="${40 + plotHeight}" font-size="11" text-anchor="end">0</text>`,
    `<text x="14" y="${40 + plotHeight / 2}" font-size="11" transform="rotate(-90 14 ${40 + plotHeight / 2})">transactions/s</text>`,
    ticks,
    '</svg>',
    '',
  ].join('\n');
}
