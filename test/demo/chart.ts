// The transactions-per-second chart of the demo: time on the x axis in the terminal (at most 80 columns), and an
// SVG with the freeze marked.

export interface Span {
  fromMs: number;
  toMs: number;
}

export interface ChartInput {
  /** Transactions per second per bucket. */
  series: number[];
  bucketMs: number;
  /** Where the freeze (guest paused) started and ended, in ms from the series start. */
  freeze?: Span;
  /** Where the migration started and ended, in ms from the series start. */
  migration?: Span;
  /** The Migration's phases in order (from its phaseTimings), in ms from the series start. */
  phases?: (Span & { name: string })[];
  /** The client's pauses without a completed transaction (throughput.ts gapsOf), in ms from the series start. */
  gaps?: Span[];
}

/** Width the terminal chart never exceeds: a classic terminal. */
export const CHART_MAX_WIDTH = 80;
const PLOT_ROWS = 8;
/** Left of the plot: the tx/s label (6), a space and the axis. */
const MARGIN = 8;
const EIGHTHS = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/** Axis tick steps (s): the smallest that leaves room for its labels is taken. */
const TICK_STEPS_S = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600];

const overlaps = (span: Span, fromMs: number, toMs: number): boolean =>
  span.fromMs < toMs && span.toMs > fromMs;

const seconds = (ms: number): string =>
  ms >= 10_000 || ms % 1000 === 0 ? `${Math.round(ms / 1000)}` : (ms / 1000).toFixed(1);

const duration = (ms: number): string => (ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

/** One letter per phase: the first letter of its name that no earlier phase took (PostCopy after Pending: O). */
export function phaseLetters(names: string[]): Map<string, string> {
  const letters = new Map<string, string>();
  for (const name of names) {
    if (letters.has(name)) continue;
    const taken = new Set(letters.values());
    const letter = [...name.toUpperCase()].find((c) => /[A-Z]/.test(c) && !taken.has(c)) ?? '?';
    letters.set(name, letter);
  }
  return letters;
}

/** Joins legend entries into lines of at most `width` columns, each continuation indented like the first. */
function wrap(head: string, entries: string[], width: number): string[] {
  const lines: string[] = [];
  let line = head;
  for (const entry of entries) {
    if (line.length > head.length && line.length + 2 + entry.length > width) {
      lines.push(line);
      line = ' '.repeat(head.length);
    }
    line += line.length > head.length ? `  ${entry}` : entry;
  }
  lines.push(line);
  return lines;
}

/**
 * The transactions-per-second chart for a terminal: time from left to right, at most `width` columns whatever the
 * run's length (each column the mean of the buckets it covers), the Migration's phases as letters under the time
 * axis, the client's gaps marked ▲ at their columns, and a legend. Plain Unicode block and box characters, no
 * colour.
 */
export function terminalChart(
  { series, bucketMs, phases = [], gaps = [] }: ChartInput,
  width = CHART_MAX_WIDTH,
): string {
  const plotWidth = Math.max(10, Math.min(width, CHART_MAX_WIDTH) - MARGIN);
  const durationMs = series.length * bucketMs;
  const columns = Math.min(plotWidth, series.length);
  const msPerColumn = durationMs / columns;
  const sums = new Array<number>(columns).fill(0);
  const counts = new Array<number>(columns).fill(0);
  series.forEach((tps, i) => {
    const column = Math.min(columns - 1, Math.floor((i * columns) / series.length));
    sums[column]! += tps;
    counts[column]!++;
  });
  const means = sums.map((sum, c) => (counts[c] ? sum / counts[c]! : 0));
  const peak = Math.max(1, ...means);
  const span = (c: number): [number, number] => [c * msPerColumn, (c + 1) * msPerColumn];

  const lines: string[] = [];
  lines.push(`transactions/s over ${seconds(durationMs)} s, ${duration(msPerColumn)} per column`);
  for (let row = PLOT_ROWS - 1; row >= 0; row--) {
    const label = row === PLOT_ROWS - 1 ? peak.toFixed(0) : '';
    const cells = means.map((mean) => {
      const eighths = Math.round((mean / peak) * PLOT_ROWS * 8) - row * 8;
      return EIGHTHS[Math.max(0, Math.min(8, eighths))]!;
    });
    lines.push(`${label.padStart(MARGIN - 2)} ┤${cells.join('')}`.trimEnd());
  }

  // The time axis: ticks every `step` seconds, the smallest step whose labels do not touch.
  const widest = seconds(durationMs).length + 2;
  const stepS =
    TICK_STEPS_S.find((step) => (step * 1000) / msPerColumn >= widest + 1) ?? TICK_STEPS_S.at(-1)!;
  const axis = [...'─'.repeat(columns)];
  const labels = [...' '.repeat(columns + MARGIN)];
  for (let tick = 0; tick * stepS * 1000 <= durationMs; tick++) {
    const t = tick * stepS * 1000;
    const column = Math.min(columns - 1, Math.round(t / msPerColumn));
    axis[column] = '┬';
    const text = `${seconds(t)}s`;
    const at = Math.min(MARGIN + column, MARGIN + columns - text.length);
    if (labels.slice(Math.max(0, at - 1), at + text.length + 1).every((c) => c === ' '))
      labels.splice(at, text.length, ...text);
  }
  lines.push(`${'0'.padStart(MARGIN - 2)} └${axis.join('')}`);
  lines.push(labels.join('').trimEnd());

  const legend: string[] = [];
  if (phases.length > 0) {
    const letters = phaseLetters(phases.map((phase) => phase.name));
    // A column shows the phase that covers it, Freezing before any other (the guest's pause is what the chart is
    // about), else the shortest: a phase shorter than a column is not hidden by a long neighbour (one of 0 ms has no
    // column, only its legend entry).
    const rank = (phase: Span & { name: string }): number =>
      phase.name === 'Freezing' ? -1 : phase.toMs - phase.fromMs;
    const row = means.map((_, c) => {
      const covering = phases.filter((phase) => phase.toMs > phase.fromMs && overlaps(phase, ...span(c)));
      covering.sort((a, b) => rank(a) - rank(b));
      return covering.length ? letters.get(covering[0]!.name)! : ' ';
    });
    lines.push(`${'phase'.padEnd(MARGIN)}${row.join('')}`.trimEnd());
    legend.push(
      ...phases.map(
        (phase) => `${letters.get(phase.name)} ${phase.name} ${duration(phase.toMs - phase.fromMs)}`,
      ),
    );
  }
  if (gaps.length > 0) {
    const row = means.map((_, c) => (gaps.some((gap) => overlaps(gap, ...span(c))) ? '▲' : ' '));
    const longest = Math.max(...gaps.map((gap) => gap.toMs - gap.fromMs));
    lines.push(`${'gaps'.padEnd(MARGIN)}${row.join('')}`.trimEnd());
    legend.push(`▲ client's gap (${gaps.length}, longest ${duration(longest)})`);
  }
  legend.unshift('█ mean tx/s per column');
  lines.push(...wrap('legend  ', legend, MARGIN + plotWidth));
  return lines.join('\n');
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
