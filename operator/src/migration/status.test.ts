import type { Migration, MigrationStatus } from '../../../crds/index.js';
import { findCondition } from '../../../kube/conditions.js';
import { CONDITION_MESSAGE_MAX_BYTES } from '../../../kube/messages.js';
import {
  MIGRATION_CONDITIONS,
  progressed,
  retrying,
  terminalStatus,
  toProgress,
  toQuiesce,
  withConditions,
} from './status.js';

const migration = { metadata: { name: 'm', generation: 1 } } as Migration;

describe('the Retrying condition', () => {
  const retryAt = new Date('2026-12-06T10:00:00Z');

  it('says how many runs failed, when the next starts and the last error, bounded', () => {
    const conditions = withConditions({}, migration, [retrying(3, 'x'.repeat(20_000), retryAt)]);
    const condition = findCondition(conditions, MIGRATION_CONDITIONS.Retrying)!;
    expect(condition).toMatchObject({ status: 'True', reason: 'RunFailed' });
    expect(condition.message).toMatch(
      /^3 runs in a row failed; the next starts at 2026-12-06T10:00:00.000Z\. Last error: x+/,
    );
    expect(Buffer.byteLength(condition.message)).toBeLessThanOrEqual(CONDITION_MESSAGE_MAX_BYTES);
  });

  it('is cleared when a run moves the Migration on, and not added when no run was retried', () => {
    const status: MigrationStatus = {
      phase: 'Copying',
      conditions: withConditions({}, migration, [retrying(1, 'UNAVAILABLE: node-b', retryAt)]),
    };
    expect(progressed({ phase: 'Copying' }, 'Quiescing')).toEqual([]);
    const cleared = withConditions(status, migration, progressed(status, 'Quiescing'));
    expect(findCondition(cleared, MIGRATION_CONDITIONS.Retrying)).toMatchObject({
      status: 'False',
      reason: 'Progressed',
    });
    const finished = terminalStatus(status, migration, 'Succeeded', undefined, 'moved', new Date());
    expect(findCondition(finished.conditions, MIGRATION_CONDITIONS.Retrying)?.status).toBe('False');
  });
});

describe('toProgress', () => {
  const wire = {
    status: 'setup',
    round: 0,
    transferredBytes: 0,
    remainingBytes: 0,
    totalBytes: 0,
    dirtyRateBytesPerSec: 0,
    throughputMbps: 0,
    expectedDowntimeMs: 0,
    cpuThrottlePercent: 0,
    qemuTotalTimeMs: 0,
    diskTransferredBytes: 0,
    diskTotalBytes: 0,
  };

  it('carries the local disks, and their percent until the memory starts', () => {
    const disks = toProgress({ ...wire, diskTransferredBytes: 256, diskTotalBytes: 1024 });
    expect(disks).toMatchObject({ percent: 25, diskTransferredBytes: 256, diskTotalBytes: 1024 });
    const memory = toProgress({
      ...wire,
      status: 'active',
      totalBytes: 100,
      remainingBytes: 10,
      diskTransferredBytes: 1024,
      diskTotalBytes: 1024,
    });
    expect(memory).toMatchObject({ percent: 90, diskTransferredBytes: 1024, diskTotalBytes: 1024 });
  });

  it('has no disk fields for a VM without local disks', () => {
    expect(toProgress(wire)).not.toHaveProperty('diskTotalBytes');
  });
});

describe('toQuiesce', () => {
  const disk = {
    name: 'data',
    storage: 'DISK_STORAGE_LOCAL' as const,
    writes: 120,
    flushes: 118,
    writesAfterPause: 0,
    flushesAfterPause: 0,
    otherAfterPause: 0,
    mirrorCompleted: true,
    flushed: true,
  };

  it("is the source's Quiescing report with each disk, its storage and counters", () => {
    const quiesce = toQuiesce({
      durationMs: 37,
      disks: [disk, { ...disk, name: 'log', storage: 'DISK_STORAGE_SHARED', mirrorCompleted: false }],
      error: '',
    });
    expect(quiesce).toEqual({
      durationMs: 37,
      disks: [
        { ...disk, storage: 'local' },
        { ...disk, name: 'log', storage: 'shared', mirrorCompleted: false },
      ],
    });
  });

  it('carries a failed step with its reason, bounded', () => {
    const quiesce = toQuiesce({ durationMs: 5, disks: [], error: 'x'.repeat(5000) });
    expect(quiesce.error).toHaveLength(1024);
  });
});

describe('the switchover timeline in the terminal status', () => {
  const switchover = {
    steps: [{ step: 'SourcePaused' as const, at: '2026-12-06T10:00:00.000Z', offsetMs: 0, node: 'node-a' }],
    clocks: [{ node: 'node-a', offsetMs: 0.1, errorBoundMs: 0.2 }],
  };
  const outcome = (result: 'RESULT_COMPLETED' | 'RESULT_FAILED') =>
    ({ result, downtimeMs: 40, rounds: 3, transferredBytes: 1 }) as Parameters<typeof terminalStatus>[6];

  it('is written with a completed outcome, next to the downtime', () => {
    const status = terminalStatus(
      { phase: 'Freezing' },
      migration,
      'Succeeded',
      undefined,
      'moved',
      new Date(),
      outcome('RESULT_COMPLETED'),
      63,
      switchover,
    );
    expect(status.switchover).toEqual(switchover);
    expect(status.downtime).toEqual({ qemuMs: 40, guestGapMs: 63 });
  });

  it('is not written for a migration that did not complete', () => {
    const status = terminalStatus(
      { phase: 'Copying' },
      migration,
      'Failed',
      'Stalled',
      'stalled',
      new Date(),
      outcome('RESULT_FAILED'),
      undefined,
      switchover,
    );
    expect(status.switchover).toBeUndefined();
  });
});
