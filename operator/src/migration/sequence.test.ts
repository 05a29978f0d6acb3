import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type { MigrationOutcome__Output, MigrationState__Output } from '../../../proto/index.js';
import type { MigrationDaemonClient } from '../daemon/migration-client.js';
import { cancelOnSource, handOver, switchToTargetInPostCopy } from './sequence.js';

const quiet = pino({ level: 'silent' });
const grpcError = (code: grpc.status, details: string) =>
  Object.assign(new Error(details), { code, details });
const answering = (answer: () => Promise<MigrationState__Output>) => ({ cancelMigration: answer });

describe('cancelOnSource', () => {
  it('is done once the source acknowledged the cancel', async () => {
    const source = answering(async () => ({}) as MigrationState__Output);
    expect(await cancelOnSource(source, 'm', 'deleted', quiet)).toBe('cancelled');
  });

  it("is done when the source answers that it is too late (the daemon's FAILED_PRECONDITION)", async () => {
    const source = answering(() =>
      Promise.reject(grpcError(grpc.status.FAILED_PRECONDITION, 'too late to cancel: it completed')),
    );
    expect(await cancelOnSource(source, 'm', 'deleted', quiet)).toBe('too late');
  });

  it('throws any other failure, so that the cancel is sent again', async () => {
    for (const code of [grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.NOT_FOUND]) {
      const source = answering(() => Promise.reject(grpcError(code, 'QEMU did not answer')));
      await expect(cancelOnSource(source, 'm', 'deleted', quiet)).rejects.toMatchObject({ code });
    }
  });
});

type Stage = MigrationState__Output['stage'];
const state = (stage: Stage, message = '') => ({ stage, message, guest: 'g' }) as MigrationState__Output;

/**
 * handOver of a completed migration whose target refuses ResumeTarget (unless `targetState` is RESUMED) and then
 * answers GetMigration with `targetState` (undefined: NOT_FOUND); the calls it made, in order.
 */
async function run(
  targetState: MigrationState__Output | undefined,
  guest: { phase: string; message: string } | undefined,
  {
    resumeCallFails = false,
    postCopy = false,
    retainLocalDisks = undefined as string[] | undefined,
    releasedBefore = undefined as string[] | undefined,
  } = {},
) {
  const calls: string[] = [];
  const target = {
    resumeTarget: async () => {
      calls.push('resumeTarget');
      if (targetState?.stage === 'MIGRATION_STAGE_RESUMED' && !resumeCallFails) return targetState;
      throw grpcError(
        targetState === undefined ? grpc.status.NOT_FOUND : grpc.status.FAILED_PRECONDITION,
        'not resuming',
      );
    },
    getMigration: async () => targetState,
    abortIncoming: async (_id: string, options?: { keepLocalDisks?: boolean }) => {
      calls.push(options?.keepLocalDisks ? 'abortIncoming keep-disks' : 'abortIncoming');
      return state('MIGRATION_STAGE_ABORTED');
    },
  };
  // The source daemon moves each retained disk's image aside and says where (retained_local_images).
  const aside = (disks: string[]) => disks.map((disk) => `/images/${disk}.qcow2.tern-retained-m`);
  const source = {
    getMigration: async () =>
      releasedBefore === undefined
        ? state('MIGRATION_STAGE_FINISHED')
        : { ...state('MIGRATION_STAGE_RELEASED'), retainedLocalImages: aside(releasedBefore) },
    releaseSource: async (
      _id: string,
      owner: string,
      _epoch: number,
      options?: { removeLocalDisks?: boolean; retainLocalDisks?: string[] },
    ) => {
      const retain = options?.retainLocalDisks?.length ? ` retain ${options.retainLocalDisks.join(',')}` : '';
      calls.push(`releaseSource ${owner}${options?.removeLocalDisks ? ' remove-disks' : ''}${retain}`);
      return {
        ...state('MIGRATION_STAGE_RELEASED'),
        retainedLocalImages: aside(options?.retainLocalDisks ?? []),
      };
    },
    resumeSource: async () => {
      calls.push('resumeSource');
      return state('MIGRATION_STAGE_SOURCE_RESUMED');
    },
  };
  // A hand-over resumed after an earlier run released the source: the record names the target already.
  let owner = releasedBefore === undefined ? 'a' : 'b';
  const result = await handOver({
    source: source as unknown as MigrationDaemonClient,
    target: target as unknown as MigrationDaemonClient,
    targetGuests: { getGuest: async () => guest as never },
    id: 'm',
    outcome: { result: 'RESULT_COMPLETED', postCopy } as MigrationOutcome__Output,
    sourceNode: 'a',
    targetNode: 'b',
    ownership: {
      owner: async () => owner,
      compareAndSwap: async (from, to) => (owner === from ? (owner = to) : owner),
      epoch: () => 1,
    },
    ...(retainLocalDisks !== undefined ? { retainLocalDisks: async () => retainLocalDisks } : {}),
  });
  return { result, calls, owner };
}

describe('handOver after a completed post-copy whose target lost the guest', () => {
  it('aborts the target and releases the source (no paused half), and reports it instead of failing', async () => {
    const lost = state('MIGRATION_STAGE_TARGET_FAILED', 'the loaded target QEMU is gone');
    const { result, calls, owner } = await run(lost, undefined, { postCopy: true });
    expect(result).toEqual({ kind: 'postCopyLost', why: 'the loaded target QEMU is gone' });
    // The guest starts again on the target: neither node's local disk images are removed.
    expect(calls).toEqual(['resumeTarget', 'abortIncoming keep-disks', 'releaseSource b']);
    expect(owner).toBe('b');
  });
});

describe('handOver after a completed pre-copy whose target does not resume the guest', () => {
  it.each([
    ['has no such guest', undefined],
    ['holds it Failed', { phase: 'GUEST_PHASE_FAILED', message: 'QEMU exited' }],
    ['holds it Stopped', { phase: 'GUEST_PHASE_STOPPED', message: '' }],
  ])(
    'a target that knows nothing of it and %s may have run it: the source is released, never resumed',
    async (_case, guest) => {
      const { result, calls, owner } = await run(undefined, guest);
      expect(result).toMatchObject({ kind: 'targetStateLost', why: expect.stringMatching(/knows nothing/) });
      expect(calls).toEqual(['resumeTarget', 'abortIncoming keep-disks', 'releaseSource b']);
      expect(owner).toBe('b');
    },
  );

  it('a target whose daemon knows its loaded QEMU died (TARGET_FAILED) gives the guest back to the source', async () => {
    const failed = state('MIGRATION_STAGE_TARGET_FAILED', 'the loaded target QEMU is gone');
    const { result, calls, owner } = await run(failed, undefined);
    expect(result).toMatchObject({ kind: 'rolledBack', sourceResumed: true });
    expect(calls).toEqual(['resumeTarget', 'abortIncoming', 'resumeSource']);
    expect(owner).toBe('a');
  });

  it('a target that resumed the guest (its QEMU may crash later) is handed over to', async () => {
    const resumed = state('MIGRATION_STAGE_RESUMED', 'the target runs the guest');
    const { result, calls, owner } = await run(resumed, { phase: 'GUEST_PHASE_RUNNING', message: '' });
    expect(result).toMatchObject({ kind: 'handedOver' });
    // Only now, with the guest running on the target, do the source's local disk images go.
    expect(calls).toEqual(['resumeTarget', 'releaseSource b remove-disks']);
    expect(owner).toBe('b');
  });

  it('names the disks whose source copy the VM retains on the release after the target resumed', async () => {
    const resumed = state('MIGRATION_STAGE_RESUMED', 'the target runs the guest');
    const { result, calls } = await run(
      resumed,
      { phase: 'GUEST_PHASE_RUNNING', message: '' },
      { retainLocalDisks: ['data'] },
    );
    expect(calls).toEqual(['resumeTarget', 'releaseSource b remove-disks retain data']);
    expect(result).toMatchObject({
      kind: 'handedOver',
      sourceRetained: ['/images/data.qcow2.tern-retained-m'],
    });
  });

  it("a resumed hand-over reports the copies an earlier run's release retained, from the source", async () => {
    const resumed = state('MIGRATION_STAGE_RESUMED', 'the target runs the guest');
    const { result, calls } = await run(resumed, undefined, { releasedBefore: ['data'] });
    expect(calls).toEqual([]);
    expect(result).toMatchObject({
      kind: 'handedOver',
      committedHere: false,
      sourceRetained: ['/images/data.qcow2.tern-retained-m'],
    });
  });

  it('a release after a failure retains nothing by name: every copy stays at its path', async () => {
    const lost = state('MIGRATION_STAGE_TARGET_FAILED', 'the loaded target QEMU is gone');
    const { calls } = await run(lost, undefined, { postCopy: true, retainLocalDisks: ['data'] });
    expect(calls).toEqual(['resumeTarget', 'abortIncoming keep-disks', 'releaseSource b']);
  });

  it.each([
    ['answers ResumeTarget with it', false],
    ['fails ResumeTarget and then tells it', true],
  ])(
    'a target whose QEMU died while it resumed the guest (guest_lost) %s: the source is released, never resumed',
    async (_case, resumeCallFails) => {
      const lost = {
        ...state('MIGRATION_STAGE_RESUMED', "the target's QEMU died after it was told to resume the guest"),
        guestLost: true,
      };
      const { result, calls, owner } = await run(lost, undefined, { resumeCallFails });
      expect(result).toEqual({ kind: 'resumedTargetLost', why: lost.message });
      // The target's daemon ended its side itself: no abort (it would refuse a RESUMED migration).
      expect(calls).toEqual(['resumeTarget', 'releaseSource b']);
      expect(owner).toBe('b');
    },
  );
});

describe('handOver with the ownership record read ahead (during the switchover)', () => {
  /** A completed hand-over whose target resumes; the record's calls and the daemons' calls, in order. */
  async function withReadAhead(
    ahead: string | undefined,
    { stored = 'a', completed = true, sourceStageAtStart = undefined as Stage | undefined } = {},
  ) {
    const calls: string[] = [];
    let owner = stored;
    const target = {
      resumeTarget: async () => {
        calls.push('resumeTarget');
        return state('MIGRATION_STAGE_RESUMED');
      },
      getMigration: async () => state('MIGRATION_STAGE_LOADED'),
      abortIncoming: async () => {
        calls.push('abortIncoming');
        return state('MIGRATION_STAGE_ABORTED');
      },
    };
    const source = {
      getMigration: async () => state('MIGRATION_STAGE_FINISHED'),
      releaseSource: async () => {
        calls.push('releaseSource');
        return state('MIGRATION_STAGE_RELEASED');
      },
      resumeSource: async () => {
        calls.push('resumeSource');
        return state('MIGRATION_STAGE_SOURCE_RESUMED');
      },
    };
    const result = await handOver({
      source: source as unknown as MigrationDaemonClient,
      target: target as unknown as MigrationDaemonClient,
      targetGuests: { getGuest: async () => undefined },
      id: 'm',
      outcome: {
        result: completed ? 'RESULT_COMPLETED' : 'RESULT_FAILED',
        reason: 'x',
      } as MigrationOutcome__Output,
      sourceNode: 'a',
      targetNode: 'b',
      ...(sourceStageAtStart !== undefined ? { sourceStageAtStart } : {}),
      ownership: {
        owner: async () => {
          calls.push('owner');
          return owner;
        },
        compareAndSwap: async (from, to) => {
          calls.push(`swap ${from}→${to}`);
          return owner === from ? (owner = to) : owner;
        },
        epoch: () => 1,
        ownerReadAhead: async () => {
          calls.push('ownerReadAhead');
          return ahead;
        },
      },
    });
    return { result, calls, owner };
  }

  it('swaps straight from a read ahead that names the source: no read on the critical path', async () => {
    const { result, calls, owner } = await withReadAhead('a');
    expect(result).toMatchObject({ kind: 'handedOver', committedHere: true });
    expect(calls).toEqual(['ownerReadAhead', 'swap a→b', 'resumeTarget', 'releaseSource']);
    expect(owner).toBe('b');
  });

  it('a stale read ahead costs nothing but the swap: the swap is checked against the stored record', async () => {
    // The read ahead names the source, the stored record names another node meanwhile: nothing resumes.
    const { result, calls, owner } = await withReadAhead('a', { stored: 'c' });
    expect(result).toMatchObject({ kind: 'rolledBack', sourceResumed: false });
    expect(calls).toEqual(['ownerReadAhead', 'swap a→b', 'abortIncoming']);
    expect(owner).toBe('c');
  });

  it('decides on a fresh read when the read ahead names another node, or none was in hand', async () => {
    for (const ahead of ['b', 'c', undefined]) {
      const { calls } = await withReadAhead(ahead);
      expect(calls.slice(0, 3)).toEqual(['ownerReadAhead', 'owner', 'swap a→b']);
    }
  });

  it('never uses the read ahead for a rollback, nor in a run that resumed an earlier one', async () => {
    const failed = await withReadAhead('a', { completed: false });
    expect(failed.calls).toEqual(['owner', 'abortIncoming', 'resumeSource']);
    const resumedRun = await withReadAhead('a', { sourceStageAtStart: 'MIGRATION_STAGE_FINISHED' });
    expect(resumedRun.calls.slice(0, 2)).toEqual(['owner', 'swap a→b']);
  });
});

describe('switchToTargetInPostCopy', () => {
  /** A target that reports `stages` one GetMigration after the other (the last one repeats). */
  function fixture(
    stages: Stage[],
    { owner: initialOwner = 'a', resume = undefined as (() => never) | undefined } = {},
  ) {
    const calls: string[] = [];
    let polls = 0;
    let owner = initialOwner;
    const target = {
      getMigration: async () => state(stages[Math.min(polls++, stages.length - 1)]!, 'target says'),
      resumeTarget: async (_id: string, recordedOwner: string, epoch: number) => {
        calls.push(`resumeTarget ${recordedOwner} epoch ${epoch}`);
        if (resume) resume();
        return state('MIGRATION_STAGE_RESUMED');
      },
    };
    let epoch = 1;
    const input = {
      source: {} as MigrationDaemonClient,
      target: target as unknown as MigrationDaemonClient,
      id: 'm',
      sourceNode: 'a',
      targetNode: 'b',
      ownership: {
        owner: async () => owner,
        compareAndSwap: async (from: string, to: string) => {
          calls.push(`swap ${from}→${to}`);
          if (owner === from) {
            owner = to;
            epoch += 1;
          }
          return owner;
        },
        epoch: () => epoch,
      },
      stop: new AbortController().signal,
      pollMs: 1,
      retryMs: 1,
      logger: quiet,
    };
    return { calls, input, owner: () => owner };
  }

  it('waits for the target to load the device state, swaps the record, then resumes the target', async () => {
    const { calls, input, owner } = fixture([
      'MIGRATION_STAGE_RUNNING',
      'MIGRATION_STAGE_RUNNING',
      'MIGRATION_STAGE_LOADED',
    ]);
    expect(await switchToTargetInPostCopy(input)).toMatchObject({ kind: 'resumed', committedHere: true });
    expect(calls).toEqual(['swap a→b', 'resumeTarget b epoch 2']);
    expect(owner()).toBe('b');
  });

  it('only resumes when the record names the target already (an earlier run swapped it)', async () => {
    const { calls, input } = fixture(['MIGRATION_STAGE_LOADED'], { owner: 'b' });
    expect(await switchToTargetInPostCopy(input)).toMatchObject({ kind: 'resumed', committedHere: false });
    expect(calls).toEqual(['resumeTarget b epoch 1']);
  });

  it('does nothing when the target failed before it loaded, or the record names another node', async () => {
    const failed = fixture(['MIGRATION_STAGE_RUNNING', 'MIGRATION_STAGE_TARGET_FAILED']);
    expect(await switchToTargetInPostCopy(failed.input)).toEqual({
      kind: 'notSwitched',
      why: 'b: target says',
    });
    expect(failed.calls).toEqual([]);
    const elsewhere = fixture(['MIGRATION_STAGE_LOADED'], { owner: 'c' });
    expect(await switchToTargetInPostCopy(elsewhere.input)).toMatchObject({ kind: 'notSwitched' });
    expect(elsewhere.calls).toEqual([]);
  });

  it('never swaps once stopped (the outcome came first)', async () => {
    const { calls, input } = fixture(['MIGRATION_STAGE_RUNNING']);
    const stop = new AbortController();
    const switching = switchToTargetInPostCopy({ ...input, stop: stop.signal });
    stop.abort();
    expect(await switching).toMatchObject({ kind: 'notSwitched' });
    expect(calls).toEqual([]);
  });

  it('asks ResumeTarget again after an UNAVAILABLE; a refusal ends the switch without one', async () => {
    let failures = 2;
    const flaky = fixture(['MIGRATION_STAGE_LOADED'], {
      resume: () => {
        if (failures-- > 0) throw grpcError(grpc.status.UNAVAILABLE, 'no answer');
        return undefined as never;
      },
    });
    expect(await switchToTargetInPostCopy(flaky.input)).toMatchObject({ kind: 'resumed' });
    expect(flaky.calls.filter((call) => call.startsWith('resumeTarget'))).toHaveLength(3);
    const refused = fixture(['MIGRATION_STAGE_LOADED'], {
      resume: () => {
        throw grpcError(grpc.status.FAILED_PRECONDITION, 'target g is not loaded');
      },
    });
    expect(await switchToTargetInPostCopy(refused.input)).toEqual({
      kind: 'notSwitched',
      why: 'target g is not loaded',
    });
  });
});

describe('handOver after a post-copy that failed', () => {
  it('stops both QEMUs when the switch had moved the record to the target, which keeps it', async () => {
    const calls: string[] = [];
    const target = {
      abortIncoming: async (_id: string, options?: { keepLocalDisks?: boolean }) => {
        calls.push(options?.keepLocalDisks ? 'abortIncoming keep-disks' : 'abortIncoming');
        return state('MIGRATION_STAGE_RESUMED');
      },
    };
    const source = {
      getMigration: async () => state('MIGRATION_STAGE_FINISHED'),
      releaseSource: async (_id: string, owner: string) => {
        calls.push(`releaseSource ${owner}`);
        return state('MIGRATION_STAGE_RELEASED');
      },
    };
    const result = await handOver({
      source: source as unknown as MigrationDaemonClient,
      target: target as unknown as MigrationDaemonClient,
      targetGuests: { getGuest: async () => undefined },
      id: 'm',
      outcome: { result: 'RESULT_FAILED', postCopy: true } as MigrationOutcome__Output,
      sourceNode: 'a',
      targetNode: 'b',
      ownership: {
        owner: async () => 'b',
        compareAndSwap: async () => {
          throw new Error('the record must not move');
        },
        epoch: () => 2,
      },
    });
    expect(result).toEqual({ kind: 'postCopyFailedOnTarget' });
    expect(calls).toEqual(['abortIncoming keep-disks', 'releaseSource b']);
  });
});
