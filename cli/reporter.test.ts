import type { Migration, MigrationStatus, PhaseTiming } from '../crds/index.js';
import { MigrationReporter } from './reporter.js';

const MiB = 1024 * 1024;

const at = (ms: number) => new Date(Date.UTC(2026, 10, 29, 10, 0, 0, ms)).toISOString();

function snapshot(status?: MigrationStatus): Migration {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: 'vm01-x7k2p', namespace: 'default' },
    spec: { vmName: 'vm01' },
    ...(status && { status }),
  };
}

const timings = (...entries: [PhaseTiming['phase'], number, number?][]): PhaseTiming[] =>
  entries.map(([phase, start, durationMs]) => ({
    phase,
    startedAt: at(start),
    ...(durationMs !== undefined && { durationMs }),
  }));

const copying = (round: number, transferred: number): MigrationStatus => ({
  phase: 'Copying',
  sourceNode: 'node-a',
  targetNode: 'node-b',
  phaseTimings: timings(
    ['Pending', 0, 10],
    ['Scheduling', 10, 15],
    ['Initializing', 25, 300],
    ['Copying', 325],
  ),
  progress: {
    round,
    transferredBytes: transferred * MiB,
    remainingBytes: (1024 - transferred) * MiB,
    totalBytes: 1024 * MiB,
    dirtyBytesPerSecond: 8 * MiB,
    throughputBytesPerSecond: 400 * MiB,
  },
});

/** What a poller sees: Quiescing and Freezing are too short to be caught and show up only in the final timings. */
const SEQUENCE: Migration[] = [
  snapshot(),
  snapshot({ phase: 'Pending', phaseTimings: timings(['Pending', 0]) }),
  snapshot({
    phase: 'Initializing',
    phaseTimings: timings(['Pending', 0, 10], ['Scheduling', 10, 15], ['Initializing', 25]),
  }),
  snapshot(copying(1, 256)),
  snapshot(copying(1, 512)),
  snapshot(copying(2, 1000)),
  snapshot({
    ...copying(3, 1040),
    phase: 'Succeeded',
    phaseTimings: timings(
      ['Pending', 0, 10],
      ['Scheduling', 10, 15],
      ['Initializing', 25, 300],
      ['Copying', 325, 1850],
      ['Quiescing', 2175, 4],
      ['Freezing', 2179, 41],
      ['Succeeded', 2220],
    ),
    downtime: { qemuMs: 41 },
  }),
];

function play(isTTY: boolean, columns = 200): { output: string; succeeded: boolean | undefined } {
  let output = '';
  const reporter = new MigrationReporter({ write: (t) => (output += t), isTTY, columns });
  let succeeded: boolean | undefined;
  for (const m of SEQUENCE) {
    const outcome = reporter.update(m);
    if (outcome) succeeded = outcome.succeeded;
  }
  return { output, succeeded };
}

const SUMMARY = [
  'Guest migrated successfully.',
  '  vm01: node-a → node-b (migration default/vm01-x7k2p)',
  '  Downtime: 41 ms (QEMU)',
  '  Total time: 2.22 s',
  '  Transferred: 1.0 GiB',
];

describe('MigrationReporter', () => {
  it('prints plain lines when not on a terminal: each phase once, and a progress line per round', () => {
    const { output, succeeded } = play(false);
    expect(succeeded).toBe(true);
    expect(output.split('\n')).toEqual([
      'Pending…',
      'Pending phase completed in 10 ms.',
      'Scheduling phase completed in 15 ms.',
      'Initializing…',
      'Initializing phase completed in 300 ms.',
      'Copying: round 1 25% · throughput 400 MiB/s · 256 MiB sent · 768 MiB left · dirty 8.0 MiB/s',
      'Copying: round 2 97% · throughput 400 MiB/s · 1000 MiB sent · 24.0 MiB left · dirty 8.0 MiB/s',
      'Copying phase completed in 1.85 s.',
      'Quiescing phase completed in 4 ms.',
      'Freezing phase completed in 41 ms.',
      ...SUMMARY,
      '',
    ]);
    expect(output).not.toContain('\r');
  });

  it('redraws one live line with a progress bar on a terminal and keeps the phase lines', () => {
    const { output } = play(true);
    const E = '\r\x1b[2K';
    const bar = (filled: number) => `[${'#'.repeat(filled)}${'-'.repeat(24 - filled)}]`;
    expect(output).toBe(
      `${E}Pending…${E}Pending…` +
        `${E}Pending phase completed in 10 ms.\nScheduling phase completed in 15 ms.\n` +
        `${E}Initializing…${E}Initializing phase completed in 300 ms.\n` +
        `${E}Copying: round 1 ${bar(6)} 25% · throughput 400 MiB/s · 256 MiB sent · 768 MiB left · dirty 8.0 MiB/s` +
        `${E}Copying: round 1 ${bar(12)} 50% · throughput 400 MiB/s · 512 MiB sent · 512 MiB left · dirty 8.0 MiB/s` +
        `${E}Copying: round 2 ${bar(23)} 97% · throughput 400 MiB/s · 1000 MiB sent · 24.0 MiB left · dirty 8.0 MiB/s` +
        `${E}Copying phase completed in 1.85 s.\nQuiescing phase completed in 4 ms.\nFreezing phase completed in 41 ms.\n` +
        `${SUMMARY.join('\n')}\n`,
    );
  });

  it('keeps the throughput on the live line of an 80-column terminal', () => {
    const copying = play(true, 80)
      .output.split('\r\x1b[2K')
      .filter((l) => l.startsWith('Copying: '));
    expect(copying).toHaveLength(3);
    for (const line of copying) expect(line).toContain('throughput 400 MiB/s');
  });

  it('cuts the live line to the terminal width so that it never wraps', () => {
    const lines = play(true, 60).output.split('\r\x1b[2K');
    const copying = lines.filter((l) => l.startsWith('Copying: '));
    expect(copying).toHaveLength(3);
    for (const line of copying) {
      expect(line).toHaveLength(59);
      expect(line.endsWith('…')).toBe(true);
    }
  });
});

/** Plays snapshots taken at the given local times (ms) through one reporter. */
function playAt(isTTY: boolean, snapshots: [number, Migration][]): string {
  let output = '';
  let clock = 0;
  const reporter = new MigrationReporter({ write: (t) => (output += t), isTTY, columns: 300 }, () => clock);
  for (const [time, m] of snapshots) {
    clock = time;
    reporter.update(m);
  }
  return output;
}

describe('MigrationReporter: phase order', () => {
  // The operator closes Freezing when the daemon reports its end, before the hand-over moves the phase on:
  // a snapshot can carry phase Freezing with Freezing's duration already set.
  const freezing = (closed: boolean): Migration =>
    snapshot({
      ...copying(2, 1000),
      phase: 'Freezing',
      phaseTimings: timings(
        ['Pending', 0, 10],
        ['Scheduling', 10, 15],
        ['Initializing', 25, 300],
        ['Copying', 325, 1850],
        ['Quiescing', 2175, 4],
        ['Freezing', 2179, closed ? 72 : undefined],
      ),
    });
  const succeeded = snapshot({
    ...copying(2, 1000),
    phase: 'Succeeded',
    phaseTimings: timings(
      ['Pending', 0, 10],
      ['Scheduling', 10, 15],
      ['Initializing', 25, 300],
      ['Copying', 325, 1850],
      ['Quiescing', 2175, 4],
      ['Freezing', 2179, 72],
      ['Succeeded', 2300],
    ),
  });

  it.each([false, true])('never shows a phase as running after its completed line (tty %s)', (tty) => {
    const output = playAt(tty, [
      [0, snapshot(copying(1, 256))],
      [250, freezing(false)],
      [500, freezing(true)],
      [750, freezing(true)],
      [1000, succeeded],
    ]);
    const text = output.replaceAll('\r\x1b[2K', '\n');
    const completed = text.indexOf('Freezing phase completed in 72 ms.');
    expect(completed).toBeGreaterThan(text.indexOf('Freezing…'));
    expect(text.indexOf('Freezing…', completed)).toBe(-1);
  });

  it('prints the missed phases in order, with no running line for a phase already over', () => {
    const output = playAt(false, [
      [0, snapshot(copying(1, 256))],
      [250, freezing(true)],
      [500, succeeded],
    ]);
    expect(output.split('\n').slice(3, 8)).toEqual([
      'Copying: round 1 25% · throughput 400 MiB/s · 256 MiB sent · 768 MiB left · dirty 8.0 MiB/s',
      'Copying phase completed in 1.85 s.',
      'Quiescing phase completed in 4 ms.',
      'Freezing phase completed in 72 ms.',
      'Guest migrated successfully.',
    ]);
  });
});

describe('MigrationReporter: throughput', () => {
  // QEMU's first reports carry no measured rate yet (throughput 0) while bytes already move: a 2.3 s copy
  // polled every 250 ms, with the status' rate still 0.
  const copy = (transferredMiB: number, round = 1): Migration => {
    const status = copying(round, transferredMiB);
    return snapshot({ ...status, progress: { ...status.progress, throughputBytesPerSecond: 0 } });
  };
  const polls = (): [number, Migration][] =>
    Array.from({ length: 10 }, (_, i) => [i * 250, copy(50 * (i + 1))] as [number, Migration]);

  it('computes the rate from the bytes sent over time and never prints 0 B/s for a moving copy', () => {
    const lines = playAt(false, polls())
      .trimEnd()
      .split('\n')
      .filter((l) => l.startsWith('Copying: '));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('Copying: round 1 4% · 50.0 MiB sent · 974 MiB left · dirty 8.0 MiB/s');
    expect(lines.join('\n')).not.toContain('throughput 0 B/s');
    // 50 MiB every 250 ms.
    expect(lines.slice(1).every((l) => l.includes('throughput 200 MiB/s'))).toBe(true);
  });

  it('shows the computed rate on the live line of a terminal', () => {
    const output = playAt(true, polls());
    const last = output.split('\r\x1b[2K').at(-1)!;
    expect(last).toContain('500 MiB sent');
    expect(last).toContain('throughput 200 MiB/s');
    expect(output).not.toContain('throughput 0 B/s');
  });

  it("prefers the status' own rate once QEMU has measured one", () => {
    const withRate = snapshot(copying(1, 600));
    const output = playAt(false, [...polls().slice(0, 4), [1250, withRate]]);
    expect(output.trimEnd().split('\n').at(-1)).toContain('throughput 400 MiB/s');
  });
});
