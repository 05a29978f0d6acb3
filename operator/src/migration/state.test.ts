import type {
  HypervisorNode,
  Migration,
  MigrationPhase,
  VirtualMachine,
  VirtualMachinePhase,
} from '../../../crds/index.js';
import type { MigrationOutcome__Output } from '../../../proto/index.js';
import {
  ATTEMPT_ANNOTATION,
  ProgressThrottle,
  admit,
  closePhase,
  daemonMigrationId,
  decideHandOver,
  decideRunStart,
  MAX_UNSTARTED_RUN_FAILURES,
  runRetryDelayMs,
  enterPhase,
  failureFromOutcome,
  incomingReservations,
  isLaterPhase,
  migrationAttempt,
  phaseFromWire,
  type AdmissionInput,
  type ConcurrencyLimits,
} from './state.js';

function node(
  name: string,
  options: { ready?: boolean; accelerator?: 'kvm' | 'tcg'; memory?: string; cordoned?: boolean } = {},
): HypervisorNode {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'HypervisorNode',
    metadata: { name },
    spec: { unschedulable: options.cordoned },
    status: {
      endpoint: '127.0.0.1:7443',
      accelerator: options.accelerator ?? 'tcg',
      allocatable: { cpu: 8, memory: options.memory ?? '8Gi' },
      conditions: [
        {
          type: 'Ready',
          status: options.ready === false ? 'False' : 'True',
          reason: 'DaemonReady',
          message: '',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    },
  };
}

function vm(
  name: string,
  nodeName: string | undefined = 'a',
  phase: VirtualMachinePhase = 'Running',
  memory = '1Gi',
): VirtualMachine {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    spec: { running: true, cpu: { cores: 1 }, memory, boot: { kernel: { path: '/images/vmlinux' } } },
    status: nodeName ? { node: nodeName, phase, epoch: 1 } : { phase },
  };
}

function migration(
  name: string,
  options: {
    vmName?: string;
    targetNode?: string;
    phase?: MigrationPhase;
    created?: string;
    source?: string;
    target?: string;
  } = {},
): Migration {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'Migration',
    metadata: {
      name,
      namespace: 'default',
      uid: `uid-${name}`,
      creationTimestamp: options.created ?? '2026-01-01T00:00:10Z',
    },
    spec: { vmName: options.vmName ?? 'vm1', targetNode: options.targetNode },
    status: options.phase
      ? { phase: options.phase, sourceNode: options.source, targetNode: options.target }
      : undefined,
  };
}

const LIMITS: ConcurrencyLimits = { cluster: 5, outboundPerNode: 2, inboundPerNode: 2 };

function input(overrides: Partial<AdmissionInput> = {}): AdmissionInput {
  const theVm = vm('vm1');
  return {
    migration: migration('m1', { targetNode: 'b' }),
    vm: theVm,
    nodes: [node('a'), node('b'), node('c')],
    vms: [theVm],
    migrations: [],
    limits: LIMITS,
    ...overrides,
  };
}

describe('admit', () => {
  it('schedules a Running VM to the given target', () => {
    expect(admit(input())).toEqual({ kind: 'schedule', source: 'a', target: 'b', message: 'from a to b' });
  });

  it.each<[string, Partial<AdmissionInput>, string]>([
    ['VMNotFound', { vm: undefined }, 'VirtualMachine vm1 does not exist in default'],
    ['VMNotRunning', { vm: vm('vm1', 'a', 'Starting') }, 'VirtualMachine vm1 is Starting, not Running'],
    ['VMNotRunning', { vm: vm('vm1', undefined, 'Stopped') }, 'VirtualMachine vm1 is Stopped, not Running'],
    [
      'TargetIsSource',
      { migration: migration('m1', { targetNode: 'a' }) },
      'VirtualMachine vm1 already runs on a',
    ],
    [
      'TargetNotFound',
      { migration: migration('m1', { targetNode: 'z' }) },
      'HypervisorNode z does not exist',
    ],
    ['TargetNotReady', { nodes: [node('a'), node('b', { ready: false })] }, 'HypervisorNode b is not Ready'],
    ['TargetNotReady', { nodes: [node('a'), node('b', { cordoned: true })] }, 'HypervisorNode b is cordoned'],
    [
      'IncompatibleTarget',
      { nodes: [node('a'), node('b', { accelerator: 'kvm' })] },
      'a runs tcg, b runs kvm',
    ],
    [
      'InsufficientCapacity',
      { nodes: [node('a'), node('b', { memory: '512Mi' })] },
      'b has 8 CPUs and 512 MiB free; vm1 needs 1 and 1024 MiB',
    ],
  ])('fails with %s', (reason, overrides, message) => {
    expect(admit(input(overrides))).toEqual({ kind: 'fail', reason, message });
  });

  it('counts the VMs already on the target against its capacity', () => {
    const result = admit(
      input({ nodes: [node('a'), node('b', { memory: '1536Mi' })], vms: [vm('vm1'), vm('other', 'b')] }),
    );
    expect(result).toMatchObject({ kind: 'fail', reason: 'InsufficientCapacity' });
  });

  it('counts the VMs migrating to the target against its capacity until their record names it', () => {
    const nodes = [node('a'), node('b', { memory: '1536Mi' })];
    const incoming = vm('other', 'c', 'Migrating');
    const heading = migration('m0', { vmName: 'other', phase: 'Copying', source: 'c', target: 'b' });
    expect(admit(input({ nodes, vms: [vm('vm1'), incoming], migrations: [heading] }))).toEqual({
      kind: 'fail',
      reason: 'InsufficientCapacity',
      message: 'b has 7 CPUs and 512 MiB free; vm1 needs 1 and 1024 MiB',
    });
    // Arrived (the record names b): the VM counts once, as a VM of b.
    const arrived = vm('other', 'b', 'Migrating');
    expect(admit(input({ nodes, vms: [vm('vm1'), arrived], migrations: [heading] }))).toMatchObject({
      kind: 'fail',
      reason: 'InsufficientCapacity',
      message: expect.stringContaining('512 MiB'),
    });
    // A finished or a waiting migration reserves nothing.
    for (const phase of ['Failed', 'Pending'] as const) {
      const done = migration('m0', { vmName: 'other', phase, source: 'c', target: 'b' });
      expect(admit(input({ nodes, vms: [vm('vm1'), incoming], migrations: [done] }))).toMatchObject({
        kind: 'schedule',
      });
    }
  });

  it('counts the CPUs of the VMs migrating to the target', () => {
    const big = vm('other', 'c', 'Migrating');
    big.spec.cpu.cores = 8;
    const heading = migration('m0', { vmName: 'other', phase: 'Scheduling', source: 'c', target: 'b' });
    expect(admit(input({ vms: [vm('vm1'), big], migrations: [heading] }))).toEqual({
      kind: 'fail',
      reason: 'InsufficientCapacity',
      message: 'b has 0 CPUs and 7168 MiB free; vm1 needs 1 and 1024 MiB',
    });
  });

  it('picks a target without counting on the room a migration heading there takes', () => {
    const nodes = [node('a'), node('b', { memory: '2Gi' }), node('c', { memory: '1536Mi' })];
    const incoming = vm('other', 'a', 'Migrating');
    const heading = migration('m0', { vmName: 'other', phase: 'Copying', source: 'a', target: 'b' });
    // b has the most memory, but 1 GiB of it is on its way there.
    expect(
      admit(input({ migration: migration('m1'), nodes, vms: [vm('vm1'), incoming], migrations: [heading] })),
    ).toMatchObject({ kind: 'schedule', target: 'c' });
  });

  it('fails the newer of two unfinished Migrations of the same VM, and any next to a running one', () => {
    const older = migration('m0', { created: '2026-01-01T00:00:05Z' });
    expect(admit(input({ migrations: [older] }))).toEqual({
      kind: 'fail',
      reason: 'AlreadyMigrating',
      message: 'Migration m0 of vm1 is not finished',
    });
    // Same second: the name decides; the older one itself is admitted.
    const sameSecond = migration('m2');
    expect(admit(input({ migrations: [sameSecond] }))).toMatchObject({ kind: 'schedule' });
    const newerButRunning = migration('m9', { created: '2026-01-01T00:01:00Z', phase: 'Copying' });
    expect(admit(input({ migrations: [newerButRunning] }))).toMatchObject({ reason: 'AlreadyMigrating' });
    const finished = migration('m0', { created: '2026-01-01T00:00:05Z', phase: 'Failed' });
    expect(admit(input({ migrations: [finished] }))).toMatchObject({ kind: 'schedule' });
  });

  it('fails when the VM is held by another Migration', () => {
    const held = vm('vm1');
    held.status!.activeMigration = 'elsewhere';
    expect(admit(input({ vm: held }))).toMatchObject({ kind: 'fail', reason: 'AlreadyMigrating' });
  });

  it('picks a target with placement when none is given, never the source nor another accelerator', () => {
    const nodes = [node('a'), node('b', { accelerator: 'kvm' }), node('c', { memory: '4Gi' }), node('d')];
    expect(admit(input({ migration: migration('m1'), nodes }))).toMatchObject({
      kind: 'schedule',
      source: 'a',
      target: 'd', // c has less free memory than d
    });
    expect(
      admit(input({ migration: migration('m1'), nodes: [node('a'), node('b', { ready: false })] })),
    ).toEqual({
      kind: 'fail',
      reason: 'NoTargetAvailable',
      message: 'no target for vm1 besides a: 0/1 nodes are available: 1 not ready',
    });
    expect(
      admit(input({ migration: migration('m1'), nodes: [node('a'), node('b', { memory: '512Mi' })] })),
    ).toMatchObject({ kind: 'fail', reason: 'InsufficientCapacity' });
  });

  it('ignores the VM pin to its current node when it picks a target', () => {
    const pinned = vm('vm1');
    pinned.spec.placement = { nodeName: 'a' };
    expect(admit(input({ migration: migration('m1'), vm: pinned, vms: [pinned] }))).toMatchObject({
      kind: 'schedule',
      target: 'b',
    });
  });

  describe('concurrency limits', () => {
    const running = (name: string, source: string, target: string) =>
      migration(name, { vmName: `vm-${name}`, phase: 'Copying', source, target });

    it('waits for the cluster-wide limit', () => {
      const others = [running('x1', 'c', 'd'), running('x2', 'd', 'c')];
      expect(admit(input({ migrations: others, limits: { ...LIMITS, cluster: 2 } }))).toEqual({
        kind: 'wait',
        reason: 'ClusterLimit',
        message: 'waiting: 2 migrations run cluster-wide (limit 2)',
        source: 'a',
        target: 'b',
      });
    });

    it('waits for the outbound limit of the source', () => {
      const others = [running('x1', 'a', 'c')];
      expect(admit(input({ migrations: others, limits: { ...LIMITS, outboundPerNode: 1 } }))).toMatchObject({
        kind: 'wait',
        reason: 'OutboundLimit',
        message: 'waiting: 1 migrations leave a (limit 1)',
      });
    });

    it('waits for the inbound limit of the target', () => {
      const others = [running('x1', 'c', 'b')];
      expect(admit(input({ migrations: others, limits: { ...LIMITS, inboundPerNode: 1 } }))).toMatchObject({
        kind: 'wait',
        reason: 'InboundLimit',
        message: 'waiting: 1 migrations enter b (limit 1)',
      });
    });

    it('counts only migrations that hold a slot (not Pending or finished ones, not itself)', () => {
      const others = [
        migration('p', { vmName: 'vm-p', phase: 'Pending', source: 'a', target: 'b' }),
        migration('s', { vmName: 'vm-s', phase: 'Succeeded', source: 'a', target: 'b' }),
        { ...migration('m1', { targetNode: 'b', phase: 'Pending', source: 'a', target: 'b' }) },
      ];
      const limits = { cluster: 1, outboundPerNode: 1, inboundPerNode: 1 };
      expect(admit(input({ migrations: others, limits }))).toMatchObject({ kind: 'schedule' });
    });
  });
});

describe('daemon phases and outcomes', () => {
  it('maps the daemon phases onto Migration phases; terminal ones are left to the outcome', () => {
    expect(phaseFromWire('MIGRATION_PHASE_INITIALIZING')).toBe('Initializing');
    expect(phaseFromWire('MIGRATION_PHASE_COPYING')).toBe('Copying');
    expect(phaseFromWire('MIGRATION_PHASE_QUIESCING')).toBe('Quiescing');
    expect(phaseFromWire('MIGRATION_PHASE_FREEZING')).toBe('Freezing');
    expect(phaseFromWire('MIGRATION_PHASE_POST_COPY')).toBe('PostCopy');
    expect(phaseFromWire('MIGRATION_PHASE_COMPLETED')).toBeUndefined();
    expect(phaseFromWire('MIGRATION_PHASE_FAILED')).toBeUndefined();
  });

  const outcome = (result: MigrationOutcome__Output['result'], cause: MigrationOutcome__Output['cause']) =>
    ({ result, cause, reason: 'the sentence is for people' }) as MigrationOutcome__Output;

  it.each<[MigrationOutcome__Output, boolean, string]>([
    [outcome('RESULT_ABORTED', 'CAUSE_CANCELLED'), false, 'Cancelled'],
    [outcome('RESULT_FAILED', 'CAUSE_SOURCE'), true, 'Cancelled'],
    [outcome('RESULT_FAILED', 'CAUSE_CANCELLED'), false, 'Cancelled'],
    [outcome('RESULT_FAILED', 'CAUSE_TIMEOUT'), false, 'Timeout'],
    [outcome('RESULT_FAILED', 'CAUSE_STALLED'), false, 'Stalled'],
    [outcome('RESULT_FAILED', 'CAUSE_CONNECTION'), false, 'TransportFailed'],
    [outcome('RESULT_FAILED', 'CAUSE_SOURCE'), false, 'SourceFailed'],
    [outcome('RESULT_FAILED', 'CAUSE_UNSPECIFIED'), false, 'SourceFailed'],
    // A failed post-copy cost the guest its state, whatever the cause, also when the Migration was being deleted.
    [{ ...outcome('RESULT_FAILED', 'CAUSE_CONNECTION'), postCopy: true }, false, 'PostCopyFailed'],
    [{ ...outcome('RESULT_FAILED', 'CAUSE_SOURCE'), postCopy: true }, true, 'PostCopyFailed'],
  ])('outcome %j (cancelled %s) → %s', (wire, cancelled, reason) => {
    expect(failureFromOutcome(wire, cancelled)).toBe(reason);
  });
});

describe('incomingReservations', () => {
  it('reserves the VM of every migration holding a slot on its target until the record names the target', () => {
    const moving = vm('m', 'a', 'Migrating');
    const reservations = incomingReservations(
      [
        migration('m1', { vmName: 'm', phase: 'Freezing', source: 'a', target: 'b' }),
        migration('m2', { vmName: 'gone', phase: 'Copying', source: 'a', target: 'b' }),
        migration('m3', { vmName: 'm', phase: 'Succeeded', source: 'a', target: 'c' }),
      ],
      [moving],
    );
    expect(reservations).toEqual([{ node: 'b', vm: moving }]);
    expect(
      incomingReservations(
        [migration('m1', { vmName: 'm', phase: 'Freezing', source: 'a', target: 'b' })],
        [vm('m', 'b', 'Migrating')],
      ),
    ).toEqual([]);
  });
});

describe('attempts', () => {
  it('names the first attempt by the UID and later ones by UID and number', () => {
    const m = migration('m1');
    expect(migrationAttempt(m)).toBe(0);
    expect(daemonMigrationId('uid-m1', 0)).toBe('uid-m1');
    m.metadata.annotations = { [ATTEMPT_ANNOTATION]: '2' };
    expect(migrationAttempt(m)).toBe(2);
    expect(daemonMigrationId('uid-m1', 2)).toBe('uid-m1-2');
    m.metadata.annotations = { [ATTEMPT_ANNOTATION]: 'x' };
    expect(migrationAttempt(m)).toBe(0);
  });
});

describe('decideRunStart', () => {
  const start = (
    phase: MigrationPhase,
    known: { source?: boolean; target?: boolean } = {},
    cancelled = false,
  ) =>
    decideRunStart({
      phase,
      sourceKnows: known.source ?? false,
      targetKnows: known.target ?? false,
      cancelled,
    });

  it('follows whatever the source holds, in any phase, cancelled or not', () => {
    for (const phase of ['Scheduling', 'Initializing', 'Copying', 'Freezing'] as const) {
      expect(start(phase, { source: true, target: true })).toEqual({ kind: 'follow' });
      expect(start(phase, { source: true }, true)).toEqual({ kind: 'follow' });
    }
  });

  it('prepares and starts a migration the daemons do not know yet', () => {
    expect(start('Scheduling')).toEqual({ kind: 'initialize', freshAttempt: false });
    expect(start('Initializing')).toEqual({ kind: 'initialize', freshAttempt: false });
  });

  it('replaces a target prepared by a lost run (its token is gone) with a fresh attempt', () => {
    expect(start('Scheduling', { target: true })).toEqual({ kind: 'initialize', freshAttempt: true });
    expect(start('Initializing', { target: true })).toEqual({ kind: 'initialize', freshAttempt: true });
  });

  it('cancels a deleted Migration the source never started', () => {
    expect(start('Scheduling', {}, true)).toEqual({ kind: 'cancel' });
    expect(start('Initializing', { target: true }, true)).toEqual({ kind: 'cancel' });
  });

  it('gives up after repeated failed runs only while the source knows nothing of the migration', () => {
    const failing = (phase: MigrationPhase, sourceKnows: boolean, failedRuns: number) =>
      decideRunStart({
        phase,
        sourceKnows,
        targetKnows: true,
        cancelled: false,
        failedRuns,
        lastFailure: 'x',
      });
    expect(failing('Initializing', false, MAX_UNSTARTED_RUN_FAILURES - 1)).toEqual({
      kind: 'initialize',
      freshAttempt: true,
    });
    for (const phase of ['Scheduling', 'Initializing'] as const) {
      expect(failing(phase, false, MAX_UNSTARTED_RUN_FAILURES)).toMatchObject({
        kind: 'fail',
        reason: 'Internal',
        nothingStarted: true,
        message: expect.stringMatching(/^gave up after 6 failed attempts to start it; the last: x$/),
      });
    }
    // Once the source holds it, the migration is followed however often runs failed.
    expect(failing('Initializing', true, 100)).toEqual({ kind: 'follow' });
    expect(failing('Copying', true, 100)).toEqual({ kind: 'follow' });
  });

  it('waits 5 s after a failed run, doubling to at most 5 min', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(runRetryDelayMs)).toEqual([
      5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000,
    ]);
  });

  it('fails with SourceFailed when the source forgot a migration it had started', () => {
    for (const phase of ['Copying', 'Quiescing', 'Freezing', 'PostCopy'] as const) {
      expect(start(phase, { target: true })).toMatchObject({ kind: 'fail', reason: 'SourceFailed' });
    }
  });
});

describe('decideHandOver', () => {
  it('commits a completed migration while the record names the source', () => {
    expect(decideHandOver(true, 'a', 'a', 'b')).toEqual({ kind: 'commit' });
  });
  it('finishes when the record already names the target (the swap happened before a restart)', () => {
    expect(decideHandOver(true, 'b', 'a', 'b')).toEqual({ kind: 'finish' });
  });
  it('rolls back and resumes the source when the migration did not complete', () => {
    expect(decideHandOver(false, 'a', 'a', 'b')).toEqual({ kind: 'rollback', resumeSource: true });
  });
  it('rolls back without resuming the source when the record names neither node', () => {
    expect(decideHandOver(true, 'c', 'a', 'b')).toEqual({ kind: 'rollback', resumeSource: false });
    expect(decideHandOver(false, undefined, 'a', 'b')).toEqual({ kind: 'rollback', resumeSource: false });
  });
});

describe('phase timings', () => {
  const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);

  it('ends the running phase when the next one starts, and ignores re-entering a phase', () => {
    let timings = enterPhase(undefined, 'Pending', at(0));
    timings = enterPhase(timings, 'Scheduling', at(10));
    timings = enterPhase(timings, 'Initializing', at(30));
    timings = enterPhase(timings, 'Initializing', at(50));
    expect(timings).toEqual([
      { phase: 'Pending', startedAt: at(0).toISOString(), durationMs: 10 },
      { phase: 'Scheduling', startedAt: at(10).toISOString(), durationMs: 20 },
      { phase: 'Initializing', startedAt: at(30).toISOString() },
    ]);
  });

  it("closes Freezing at the daemon's end of the freeze; the terminal phase gets a start only", () => {
    let timings = enterPhase(undefined, 'Freezing', at(0));
    timings = closePhase(timings, at(40));
    timings = enterPhase(timings, 'Succeeded', at(300));
    expect(timings).toEqual([
      { phase: 'Freezing', startedAt: at(0).toISOString(), durationMs: 40 },
      { phase: 'Succeeded', startedAt: at(300).toISOString() },
    ]);
  });

  it('never moves a phase back, and nothing follows a terminal phase', () => {
    expect(isLaterPhase('Copying', 'Initializing')).toBe(true);
    expect(isLaterPhase('Copying', 'Freezing')).toBe(false);
    expect(isLaterPhase('Failed', 'Copying')).toBe(true);
    expect(isLaterPhase('Copying', 'Succeeded')).toBe(false);
    expect(isLaterPhase('Scheduling', undefined)).toBe(true);
  });
});

describe('ProgressThrottle', () => {
  it('allows one write per interval; a phase change counts as a write', () => {
    const throttle = new ProgressThrottle(500);
    expect(throttle.take(1_000)).toBe(true);
    expect(throttle.take(1_200)).toBe(false);
    expect(throttle.delayMs(1_200)).toBe(300);
    expect(throttle.take(1_500)).toBe(true);
    throttle.wrote(1_700);
    expect(throttle.take(2_100)).toBe(false);
    expect(throttle.take(2_200)).toBe(true);
  });
});
