import type {
  Condition,
  HypervisorNodeStatus,
  MigrationStatus,
  VirtualMachineSpec,
  VirtualMachineStatus,
} from '../../../crds/index.js';
import {
  hypervisorNodeVerdict,
  migrationConditions,
  virtualMachineConditions,
  virtualMachineVerdict,
  withKstatus,
} from './conditions.js';

const T = new Date('2026-12-01T00:00:00Z');

const cond = (type: string, status: Condition['status'], reason: string, message = ''): Condition => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: '2026-11-30T00:00:00Z',
});

const spec = (running = true): VirtualMachineSpec => ({
  running,
  cpu: { cores: 1 },
  memory: '256Mi',
  boot: { kernel: { path: '/images/vmlinux' } },
});

const types = (conditions: Condition[]) => conditions.map((c) => `${c.type}=${c.status} ${c.reason}`);

describe('withKstatus', () => {
  it('sets Reconciling or Stalled True with the generation, and removes the one that does not hold', () => {
    const reconciling = withKstatus([], { reconciling: { reason: 'Starting', message: 'm' } }, 3, T);
    expect(reconciling).toEqual([
      {
        type: 'Reconciling',
        status: 'True',
        reason: 'Starting',
        message: 'm',
        observedGeneration: 3,
        lastTransitionTime: '2026-12-01T00:00:00Z',
      },
    ]);
    expect(
      types(withKstatus(reconciling, { stalled: { reason: 'GuestFailed', message: 'x' } }, 3, T)),
    ).toEqual(['Stalled=True GuestFailed']);
    expect(withKstatus(reconciling, {}, 3, T)).toEqual([]);
  });
});

describe('virtualMachineVerdict', () => {
  const status = (
    phase: VirtualMachineStatus['phase'],
    ...conditions: Condition[]
  ): VirtualMachineStatus => ({
    phase,
    node: 'node-a',
    activeMigration: phase === 'Migrating' ? 'm1' : undefined,
    conditions,
  });

  it.each([
    ['a running guest', status('Running', cond('Ready', 'True', 'GuestRunning')), {}],
    [
      'a running guest with a pending restart',
      status(
        'Running',
        cond('Ready', 'True', 'GuestRunning'),
        cond('RestartRequired', 'True', 'SpecChanged', 'r'),
      ),
      { reconciling: { reason: 'RestartRequired', message: 'r' } },
    ],
    [
      'a paused guest',
      status('Running', cond('Ready', 'False', 'GuestPaused', 'p')),
      { reconciling: { reason: 'GuestPaused', message: 'p' } },
    ],
    [
      'a migrating VM',
      status('Migrating', cond('Ready', 'True', 'GuestRunning')),
      { reconciling: { reason: 'Migrating', message: 'Migration m1 moves the guest from node-a' } },
    ],
    [
      'a starting VM',
      status('Starting', cond('Ready', 'False', 'GuestStarting', 's')),
      { reconciling: { reason: 'GuestStarting', message: 's' } },
    ],
    [
      'a failed VM',
      status('Failed', cond('Ready', 'False', 'GuestRejected', 'no')),
      { stalled: { reason: 'GuestRejected', message: 'no' } },
    ],
    [
      'a VM waiting for its lost node',
      status('Unknown', cond('NodeLost', 'True', 'WaitingForNode', 'lost')),
      { stalled: { reason: 'NodeLost', message: 'lost' } },
    ],
    [
      'a VM whose node is not ready yet',
      status('Unknown', cond('Ready', 'Unknown', 'NodeNotReady', 'n')),
      { reconciling: { reason: 'NodeNotReady', message: 'n' } },
    ],
  ])('%s', (_what, vmStatus, verdict) => {
    expect(virtualMachineVerdict(spec(), vmStatus)).toEqual(verdict);
  });

  it('a stopped VM is at rest when its spec says stop (and loses Ready), Stalled when it should run', () => {
    const stopped = status('Stopped', cond('Ready', 'False', 'NotRunning'));
    expect(virtualMachineVerdict(spec(false), stopped)).toEqual({});
    expect(virtualMachineConditions(spec(false), stopped, 2, T)).toEqual([]);
    const poweredOff = status('Stopped', cond('Ready', 'False', 'GuestPoweredOff', 'off'));
    expect(types(virtualMachineConditions(spec(true), poweredOff, 2, T))).toEqual([
      'Ready=False GuestPoweredOff',
      'Stalled=True GuestPoweredOff',
    ]);
  });
});

describe('migrationConditions', () => {
  const status = (
    phase: MigrationStatus['phase'],
    extra: Partial<MigrationStatus> = {},
  ): MigrationStatus => ({
    phase,
    ...extra,
  });

  it('is Reconciling with the phase while it runs, and with what it waits for while Pending', () => {
    expect(types(migrationConditions(status('Copying'), 1, T))).toEqual([
      'Ready=False Copying',
      'Reconciling=True Copying',
    ]);
    const waiting = status('Pending', { conditions: [cond('Scheduled', 'False', 'ClusterLimit')] });
    expect(types(migrationConditions(waiting, 1, T))).toEqual([
      'Scheduled=False ClusterLimit',
      'Ready=False Pending',
      'Reconciling=True ClusterLimit',
    ]);
  });

  it('is Ready once Succeeded and Stalled with its reason once Failed or Aborted', () => {
    const running = migrationConditions(status('Freezing'), 1, T);
    expect(types(migrationConditions(status('Succeeded', { conditions: running }), 1, T))).toEqual([
      'Ready=True Succeeded',
    ]);
    expect(
      types(migrationConditions(status('Failed', { conditions: running, failureReason: 'Timeout' }), 1, T)),
    ).toEqual(['Ready=False Timeout', 'Stalled=True Timeout']);
    expect(types(migrationConditions(status('Aborted', { failureReason: 'Cancelled' }), 1, T))).toEqual([
      'Ready=False Cancelled',
      'Stalled=True Cancelled',
    ]);
  });
});

describe('hypervisorNodeVerdict', () => {
  it('is Stalled when lost or its drain is blocked, Reconciling while it is evacuated, else at rest', () => {
    const node = (extra: Partial<HypervisorNodeStatus>): HypervisorNodeStatus => ({
      conditions: [cond('Ready', 'True', 'DaemonReady')],
      ...extra,
    });
    expect(hypervisorNodeVerdict(node({}))).toEqual({});
    expect(
      hypervisorNodeVerdict(node({ conditions: [cond('Fenced', 'True', 'FenceTimeElapsed', 'gone')] })),
    ).toEqual({ stalled: { reason: 'NodeLost', message: 'gone' } });
    expect(
      hypervisorNodeVerdict(
        node({ evacuation: { phase: 'Blocked', total: 2, remaining: 1, message: 'vm1: None' } }),
      ),
    ).toEqual({ stalled: { reason: 'EvacuationBlocked', message: 'vm1: None' } });
    expect(
      hypervisorNodeVerdict(node({ evacuation: { phase: 'Evacuating', total: 2, remaining: 1 } })),
    ).toEqual({
      reconciling: { reason: 'Evacuating', message: '1 of 2 VMs left' },
    });
  });
});
