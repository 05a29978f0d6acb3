import {
  MAX_UNANSWERED_REAP_QUERIES,
  reapDecision,
  resumedTargetLost,
  waitingForSource,
} from './incoming.js';
import type { MigrationRecordFile } from './record-file.js';

describe('waitingForSource', () => {
  it('is true while the incoming QEMU only listens', () => {
    for (const status of [undefined, 'none', 'setup'] as const) expect(waitingForSource(status)).toBe(true);
  });

  it('is false once a source streams into it, or after the incoming migration ended', () => {
    for (const status of ['active', 'postcopy-active', 'device', 'completed', 'failed'] as const) {
      expect(waitingForSource(status)).toBe(false);
    }
  });
});

describe('reapDecision', () => {
  it('removes an incoming QEMU that only listens, and looks again at one a source streams into', () => {
    expect(reapDecision({ status: 'setup' }, 0)).toBe('reap-unused');
    expect(reapDecision({ status: undefined }, 0)).toBe('reap-unused');
    expect(reapDecision({ status: 'active' }, 0)).toBe('look-again');
  });

  it('takes a query-migrate that failed as no answer, not as waiting: asked again, then removed', () => {
    expect(reapDecision({ error: 'QMP query-migrate got no reply within 10000 ms' }, 0)).toBe('look-again');
    expect(reapDecision({ error: 'timeout' }, MAX_UNANSWERED_REAP_QUERIES - 2)).toBe('look-again');
    expect(reapDecision({ error: 'timeout' }, MAX_UNANSWERED_REAP_QUERIES - 1)).toBe('reap-unresponsive');
    // An answer in between starts the count afresh (the caller passes 0 again).
    expect(reapDecision({ status: 'active' }, MAX_UNANSWERED_REAP_QUERIES - 1)).toBe('look-again');
  });
});

describe('resumedTargetLost', () => {
  const record: MigrationRecordFile = {
    id: 'm',
    role: 'target',
    guest: 'g',
    dataEndpoint: '10.0.0.2:49152',
    tokenDigest: 'd',
  };

  it('answers RESUMED for a target whose record holds the resume mark: the guest may have run there', () => {
    expect(resumedTargetLost({ ...record, resumeStartedAtMs: 1 }, 'QEMU was Failed')).toEqual({
      stage: 'MIGRATION_STAGE_RESUMED',
      message: expect.stringMatching(
        /QEMU died after it was told to resume the guest \(QEMU was Failed\).*restartPolicy/,
      ),
      guestLost: true,
    });
  });

  it('has nothing to say without the mark (never resumed there), nor for a source', () => {
    expect(resumedTargetLost(record, 'gone')).toBeUndefined();
    expect(resumedTargetLost({ ...record, role: 'source', resumeStartedAtMs: 1 }, 'gone')).toBeUndefined();
  });
});
