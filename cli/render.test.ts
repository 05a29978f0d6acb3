import type { Migration, MigrationStatus } from '../crds/index.js';
import { formatBytes, formatDuration } from './format.js';
import {
  phaseSpans,
  progressBar,
  renderLiveLine,
  renderOutcome,
  renderProgress,
  renderQuiesce,
  renderSwitchover,
  totalTimeMs,
} from './render.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function migration(status: MigrationStatus): Migration {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: { name: 'vm01-x7k2p', namespace: 'default', creationTimestamp: '2026-11-29T10:00:00Z' },
    spec: { vmName: 'vm01', targetNode: 'node-b' },
    status,
  };
}

const succeeded: MigrationStatus = {
  phase: 'Succeeded',
  sourceNode: 'node-a',
  targetNode: 'node-b',
  phaseTimings: [
    { phase: 'Pending', startedAt: '2026-11-29T10:00:00.000Z', durationMs: 5 },
    { phase: 'Scheduling', startedAt: '2026-11-29T10:00:00.005Z', durationMs: 20 },
    { phase: 'Initializing', startedAt: '2026-11-29T10:00:00.025Z', durationMs: 300 },
    { phase: 'Copying', startedAt: '2026-11-29T10:00:00.325Z', durationMs: 1850 },
    { phase: 'Quiescing', startedAt: '2026-11-29T10:00:02.175Z', durationMs: 4 },
    { phase: 'Freezing', startedAt: '2026-11-29T10:00:02.179Z', durationMs: 41 },
    { phase: 'Succeeded', startedAt: '2026-11-29T10:00:02.220Z' },
  ],
  progress: { round: 4, transferredBytes: 1.25 * GiB, remainingBytes: 0, totalBytes: GiB, percent: 100 },
  downtime: { qemuMs: 41, guestGapMs: 63 },
};

describe('formatting', () => {
  it('uses binary units and short durations', () => {
    expect([0, 1023, 1536, 640 * MiB, 1.25 * GiB, 300 * GiB].map(formatBytes)).toEqual([
      '0 B',
      '1023 B',
      '1.5 KiB',
      '640 MiB',
      '1.3 GiB',
      '300 GiB',
    ]);
    expect([41, 999.6, 2310, 125_000].map(formatDuration)).toEqual(['41 ms', '1.00 s', '2.31 s', '2m05s']);
  });
});

describe('progress', () => {
  it('draws a bar of the copied share', () => {
    expect(progressBar(0, 10)).toBe('[----------]');
    expect(progressBar(62, 10)).toBe('[######----]');
    expect(progressBar(100, 10)).toBe('[##########]');
  });

  const progress = {
    round: 3,
    transferredBytes: 640 * MiB,
    remainingBytes: 384 * MiB,
    totalBytes: GiB,
    dirtyBytesPerSecond: 12 * MiB,
    throughputBytesPerSecond: 410 * MiB,
    expectedDowntimeMs: 35,
  };

  it('renders round, percent (derived when the operator did not set it), bytes and rates', () => {
    expect(renderProgress(progress, true)).toBe(
      'round 3 [###############---------] 62% · throughput 410 MiB/s · 640 MiB sent · 384 MiB left · ' +
        'dirty 12.0 MiB/s · expected downtime 35 ms',
    );
    expect(renderProgress({ ...progress, percent: 70 }, false)).toBe(
      'round 3 70% · throughput 410 MiB/s · 640 MiB sent · 384 MiB left · dirty 12.0 MiB/s · expected downtime 35 ms',
    );
  });

  it('adds the local disks copied so far', () => {
    expect(
      renderProgress({ round: 0, percent: 25, diskTransferredBytes: 256 * MiB, diskTotalBytes: GiB }, false),
    ).toBe('round 0 25% · disks 256 MiB of 1.0 GiB copied');
  });

  it('leaves out what the status does not have', () => {
    expect(renderProgress({ transferredBytes: 1536 }, true)).toBe('1.5 KiB sent');
    expect(renderProgress(undefined, true)).toBe('');
  });

  it('shows progress only while copying', () => {
    expect(renderLiveLine({ phase: 'Copying', progress: { round: 1, percent: 5 } }, false)).toBe(
      'Copying: round 1 5%',
    );
    expect(renderLiveLine({ phase: 'Initializing', progress: { round: 1 } }, false)).toBe('Initializing…');
    expect(renderLiveLine(undefined, true)).toBe('Pending…');
  });
});

describe('phaseSpans', () => {
  it('orders the phases by start and fills in the duration of a phase that was followed by another', () => {
    const spans = phaseSpans({
      phaseTimings: [
        { phase: 'Copying', startedAt: '2026-11-29T10:00:01.000Z' },
        { phase: 'Scheduling', startedAt: '2026-11-29T10:00:00.000Z' },
        { phase: 'Initializing', startedAt: '2026-11-29T10:00:00.250Z', durationMs: 700 },
      ],
    });
    expect(spans.map((s) => [s.phase, s.durationMs])).toEqual([
      ['Scheduling', 250],
      ['Initializing', 700],
      ['Copying', undefined],
    ]);
  });
});

describe('renderSwitchover', () => {
  const at = '2026-11-29T10:00:02.000Z';
  const switchover = {
    steps: [
      { step: 'SourcePaused' as const, at, offsetMs: 0, node: 'node-a' },
      { step: 'TargetLoaded' as const, at, offsetMs: 38.07, node: 'node-b' },
      { step: 'SourceCompleted' as const, at, offsetMs: 43.11, node: 'node-a' },
      { step: 'OutcomeSent' as const, at, offsetMs: 67.2, node: 'node-a' },
      { step: 'OutcomeReceived' as const, at, offsetMs: 74.37 },
      { step: 'OwnershipRecorded' as const, at, offsetMs: 88.93 },
      { step: 'ResumeRequested' as const, at, offsetMs: 90.9, node: 'node-b' },
      { step: 'TargetResumed' as const, at, offsetMs: 95.41, node: 'node-b' },
      { step: 'FirstFrame' as const, at, offsetMs: 96.16, node: 'node-b' },
      { step: 'ResumeAcknowledged' as const, at, offsetMs: 101.98 },
    ],
    clocks: [
      { node: 'node-a', offsetMs: -0.41, errorBoundMs: 0.28 },
      { node: 'node-b', offsetMs: 0.26, errorBoundMs: 0.5 },
    ],
    firstFrameResolutionMs: 1.04,
  };

  it("lists each step's ms after the pause, wrapped, with the clocks' largest error bound", () => {
    expect(renderSwitchover(switchover, '  Switchover: ', '    ')).toEqual([
      '  Switchover: ms after the pause (clocks ±0.5): loaded 38.1, completed 43.1, outcome sent 67.2,',
      '    outcome seen 74.4, recorded 88.9, resume asked 90.9, running 95.4, first frame 96.2 (-1.0),',
      '    acked 102.0',
    ]);
  });

  it('says why a step is missing, and shows nothing without a timeline', () => {
    const lines = renderSwitchover(
      { steps: switchover.steps.slice(0, 2), clocks: [], note: 'no FirstFrame: the guest has no tap' },
      'S: ',
      '  ',
    );
    expect(lines).toEqual([
      'S: ms after the pause (clocks ±0.0): loaded 38.1',
      '  no FirstFrame: the guest has no tap',
    ]);
    expect(renderSwitchover(undefined, 'S: ', '  ')).toEqual([]);
  });

  it('is part of the summary of a succeeded migration', () => {
    const lines = renderOutcome(migration({ ...succeeded, switchover })).lines;
    expect(lines[3]).toMatch(/^ {2}Switchover: ms after the pause/);
  });
});

describe('renderOutcome', () => {
  it('ends a successful migration like hpvmmigrate, with downtime and total time', () => {
    expect(totalTimeMs(migration(succeeded))).toBe(2220);
    expect(renderOutcome(migration(succeeded))).toEqual({
      succeeded: true,
      lines: [
        'Guest migrated successfully.',
        '  vm01: node-a → node-b (migration default/vm01-x7k2p)',
        '  Downtime: 41 ms (QEMU), longest guest gap 63 ms',
        '  Total time: 2.22 s',
        '  Transferred: 1.3 GiB',
      ],
    });
  });

  it('names the reason, the message and the phase of a failure', () => {
    const failed = migration({
      phase: 'Failed',
      sourceNode: 'node-a',
      failureReason: 'Stalled',
      message: 'remaining bytes did not shrink for 30 s',
      phaseTimings: [
        { phase: 'Pending', startedAt: '2026-11-29T10:00:00.000Z', durationMs: 10 },
        { phase: 'Copying', startedAt: '2026-11-29T10:00:00.010Z', durationMs: 31_000 },
        { phase: 'Failed', startedAt: '2026-11-29T10:00:31.010Z' },
      ],
    });
    expect(renderOutcome(failed)).toEqual({
      succeeded: false,
      lines: [
        'Migration failed (Stalled): remaining bytes did not shrink for 30 s',
        '  vm01: node-a → node-b (migration default/vm01-x7k2p) stopped during Copying after 31.01 s.',
      ],
    });
  });

  it('reports an abort without timings', () => {
    expect(renderOutcome(migration({ phase: 'Aborted', failureReason: 'Cancelled' })).lines).toEqual([
      'Migration aborted (Cancelled): no message from the operator',
      '  vm01: ? → node-b (migration default/vm01-x7k2p) stopped.',
    ]);
  });
});

describe('renderQuiesce', () => {
  const disk = {
    name: 'data',
    storage: 'local' as const,
    writes: 120,
    flushes: 118,
    writesAfterPause: 0,
    flushesAfterPause: 0,
    otherAfterPause: 0,
    mirrorCompleted: true,
    flushed: true,
  };

  it('shows the duration and each disk; a successful migration ends with it', () => {
    const quiesce = {
      durationMs: 37,
      disks: [disk, { ...disk, name: 'log', storage: 'shared' as const, mirrorCompleted: false }],
    };
    expect(renderQuiesce(quiesce)).toBe(
      '37 ms, 2 of 2 disks flushed, no I/O after the pause (data local, mirror completed; log shared)',
    );
    expect(renderOutcome(migration({ ...succeeded, quiesce })).lines).toContain(
      '  Quiesce: 37 ms, 2 of 2 disks flushed, no I/O after the pause (data local, mirror completed; log shared)',
    );
    expect(renderQuiesce({ durationMs: 2, disks: [] })).toBe('2 ms, no disks');
    expect(renderQuiesce(undefined)).toBeUndefined();
  });

  it('shows a failed step with its reason', () => {
    const quiesce = {
      durationMs: 240,
      disks: [{ ...disk, mirrorCompleted: false, flushed: false }],
      error: 'quiescing failed: completing the disk copy failed: Input/output error',
    };
    const failed = migration({ phase: 'Failed', failureReason: 'TransportFailed', message: 'x', quiesce });
    expect(renderOutcome(failed).lines.at(-1)).toBe(
      '  Quiesce: 240 ms, failed: quiescing failed: completing the disk copy failed: Input/output error ' +
        '(data local, mirror not completed, not proven flushed)',
    );
  });
});
