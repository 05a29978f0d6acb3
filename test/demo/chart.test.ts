import { CHART_MAX_WIDTH, phaseLetters, terminalChart } from './chart.js';
import { gapsOf } from './throughput.js';

const MARGIN = 8;
const steady = (buckets: number, tps = 200): number[] => new Array<number>(buckets).fill(tps);
const width = (text: string): number => Math.max(...text.split('\n').map((line) => [...line].length));
const row = (text: string, head: string): string => text.split('\n').find((line) => line.startsWith(head))!;

describe('terminalChart', () => {
  it('fits 80 columns whatever the run length', () => {
    for (const buckets of [1, 3, 72, 73, 127, 1000, 36_000]) {
      const chart = terminalChart({
        series: steady(buckets),
        bucketMs: 100,
        phases: [
          { name: 'Initializing', fromMs: 0, toMs: buckets * 40 },
          { name: 'Copying', fromMs: buckets * 40, toMs: buckets * 90 },
          { name: 'Freezing', fromMs: buckets * 90, toMs: buckets * 90 + 70 },
        ],
        gaps: [{ fromMs: buckets * 90, toMs: buckets * 90 + 300 }],
      });
      expect(width(chart)).toBeLessThanOrEqual(CHART_MAX_WIDTH);
      // time runs left to right: the plot is 8 rows high, not a row per bucket
      expect(chart.split('\n').length).toBeLessThan(20);
    }
    expect(width(terminalChart({ series: steady(500), bucketMs: 100 }, 50))).toBeLessThanOrEqual(50);
  });

  it('labels the time axis in seconds from 0, left to right, at the tick marks', () => {
    // 20 s in 100 ms buckets on 72 columns
    const lines = terminalChart({ series: steady(200), bucketMs: 100 }).split('\n');
    const axis = lines.find((line) => line.includes('└'))!;
    const labels = lines[lines.indexOf(axis) + 1]!;
    const values = [...labels.matchAll(/(\d+(?:\.\d)?)s/g)].map((m) => Number(m[1]));
    expect(values[0]).toBe(0);
    expect(values.length).toBeGreaterThan(3);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    for (const match of labels.matchAll(/\d+(?:\.\d)?s/g)) {
      const seconds = Number(match[0].slice(0, -1));
      const column = Math.round((seconds * 1000) / (20_000 / 72));
      // a tick under each label, unless the label was pulled left to fit the last columns
      if (match.index + match[0].length < labels.length || column === match.index - MARGIN)
        expect([...axis][MARGIN + column]).toBe('┬');
    }
    expect(lines[0]).toContain('over 20 s');
  });

  it("marks a client's gap at the columns of its time", () => {
    // 20 s on 72 columns: 277.8 ms per column; a gap from 10.0 to 10.6 s covers columns 36..38
    const series = steady(200).map((tps, i) => (i >= 100 && i < 106 ? 0 : tps));
    const chart = terminalChart({ series, bucketMs: 100, gaps: [{ fromMs: 10_000, toMs: 10_600 }] });
    const gaps = row(chart, 'gaps');
    expect([...gaps].flatMap((c, i) => (c === '▲' ? [i - MARGIN] : []))).toEqual([36, 37, 38]);
    expect(chart).toContain("client's gap (1, longest 600 ms)");
    // the bars dip there
    const bottom = chart.split('\n').find((line) => line.includes('└'))!;
    const lowest = chart.split('\n')[chart.split('\n').indexOf(bottom) - 1]!;
    expect([...lowest][MARGIN + 36]).not.toBe('█');
  });

  it('marks the phases along the axis, Freezing even when shorter than a column, with a legend', () => {
    const chart = terminalChart({
      series: steady(200),
      bucketMs: 100,
      phases: [
        { name: 'Pending', fromMs: 3000, toMs: 3050 },
        { name: 'Copying', fromMs: 3050, toMs: 9000 },
        { name: 'Quiescing', fromMs: 9000, toMs: 9040 },
        { name: 'Freezing', fromMs: 9040, toMs: 9110 },
        { name: 'PostCopy', fromMs: 9110, toMs: 12_000 },
      ],
    });
    const phases = row(chart, 'phase');
    // 277.8 ms per column: Pending (3000-3050 ms) wins column 10 over Copying, being shorter
    expect(phases.indexOf('P') - MARGIN).toBe(10);
    expect(phases.indexOf('C') - MARGIN).toBe(11);
    expect(phases.indexOf('F') - MARGIN).toBe(32); // 9040 ms
    expect(phases.trimEnd().length - MARGIN).toBe(Math.ceil(12_000 / (20_000 / 72)));
    expect(chart).toMatch(/F Freezing 70 ms/);
    expect(chart).toMatch(/O PostCopy 2\.9 s/);
    expect(chart).toMatch(/legend {2}█ mean tx\/s per column/);
  });
});

describe('phaseLetters', () => {
  it('gives each phase a letter of its own', () => {
    const letters = phaseLetters([
      'Pending',
      'Scheduling',
      'Initializing',
      'Copying',
      'Quiescing',
      'Freezing',
      'PostCopy',
    ]);
    expect([...letters.values()]).toEqual(['P', 'S', 'I', 'C', 'Q', 'F', 'O']);
  });
});

describe('gapsOf', () => {
  it('finds the pauses of at least minMs, relative to the start', () => {
    expect(gapsOf([100, 110, 500, 510, 520, 900], 100, 300)).toEqual([
      { fromMs: 10, toMs: 400 },
      { fromMs: 420, toMs: 800 },
    ]);
  });
});
