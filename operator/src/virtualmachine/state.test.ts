import type { VirtualMachine, VirtualMachinePhase } from '../../../crds/index.js';
import type { Guest__Output, GuestPhase__Output } from '../../../proto/index.js';
import { conditionReason, nextGuestStep, pendingRestart } from './state.js';

const UID = 'uid-1';

function vm(
  phase: VirtualMachinePhase | undefined,
  options: {
    running?: boolean;
    restartPolicy?: 'Always' | 'Never';
    generation?: number;
    observed?: number;
  } = {},
): VirtualMachine {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm1', namespace: 'default', uid: UID, generation: options.generation ?? 1 },
    spec: {
      running: options.running ?? true,
      cpu: { cores: 1 },
      memory: '256Mi',
      boot: { kernel: { path: '/images/vmlinux' } },
      restartPolicy: options.restartPolicy,
    },
    status: {
      phase,
      node: 'node-a',
      epoch: 1,
      observedGeneration: options.observed ?? options.generation ?? 1,
    },
  };
}

function guest(phase: GuestPhase__Output, extra: Partial<Guest__Output> = {}): Guest__Output {
  return {
    spec: {
      name: 'vm1',
      uuid: UID,
      displayName: 'default/vm1',
      namespace: 'default',
      cpus: 1,
      memoryMib: 256,
      machine: '',
      cpuModel: '',
      boot: null,
      disks: [],
      nics: [],
    },
    phase,
    pid: phase === 'GUEST_PHASE_RUNNING' ? 4242 : 0,
    reason: '',
    message: '',
    startedAt: '',
    accelerator: 'ACCELERATOR_TCG',
    nics: [],
    localDisks: [],
    ...extra,
  };
}

describe('nextGuestStep', () => {
  it.each(['Pending', 'Scheduling', 'Starting'] as const)(
    'creates the guest when none exists in %s',
    (phase) => {
      expect(nextGuestStep(vm(phase), undefined)).toEqual({ kind: 'create' });
    },
  );

  it('reports Running with Ready=True for a running guest', () => {
    expect(nextGuestStep(vm('Starting'), guest('GUEST_PHASE_RUNNING'))).toEqual({
      kind: 'report',
      phase: 'Running',
      ready: { status: 'True', reason: 'GuestRunning', message: 'QEMU pid 4242 on node-a' },
    });
  });

  it.each([
    ['GUEST_PHASE_STARTING', 'Starting', 'GuestStarting'],
    ['GUEST_PHASE_PAUSED', 'Running', 'GuestPaused'],
    ['GUEST_PHASE_STOPPING', 'Stopping', 'GuestStopping'],
  ] as const)('maps %s to phase %s, not ready (%s)', (guestPhase, phase, reason) => {
    expect(nextGuestStep(vm('Running'), guest(guestPhase))).toMatchObject({
      kind: 'report',
      phase,
      ready: { status: 'False', reason },
    });
  });

  it('restarts a failed guest under restartPolicy Always (the default), keeping the daemon reason', () => {
    expect(
      nextGuestStep(vm('Running'), guest('GUEST_PHASE_FAILED', { reason: 'Signaled', message: 'SIGKILL' })),
    ).toEqual({ kind: 'restart', cause: 'Signaled', message: 'Signaled: SIGKILL' });
  });

  it('restarts a guest that powered off by itself under Always', () => {
    expect(nextGuestStep(vm('Running'), guest('GUEST_PHASE_STOPPED'))).toMatchObject({
      kind: 'restart',
      cause: 'GuestPoweredOff',
    });
  });

  it('uses a fallback cause when the daemon reason is not a CamelCase word', () => {
    expect(
      nextGuestStep(vm('Running'), guest('GUEST_PHASE_FAILED', { reason: 'QEMU killed by signal 9' })),
    ).toEqual({ kind: 'restart', cause: 'GuestFailed', message: 'QEMU killed by signal 9' });
  });

  it('restarts a guest that vanished from the daemon while it ran', () => {
    expect(nextGuestStep(vm('Running'), undefined)).toMatchObject({
      kind: 'restart',
      cause: 'GuestVanished',
    });
    expect(nextGuestStep(vm('Unknown'), undefined)).toMatchObject({
      kind: 'restart',
      cause: 'GuestVanished',
    });
  });

  it('reports Failed with the daemon reason under restartPolicy Never', () => {
    expect(
      nextGuestStep(
        vm('Running', { restartPolicy: 'Never' }),
        guest('GUEST_PHASE_FAILED', { reason: 'Signaled', message: 'SIGKILL' }),
      ),
    ).toEqual({
      kind: 'report',
      phase: 'Failed',
      ready: { status: 'False', reason: 'Signaled', message: 'Signaled: SIGKILL' },
    });
  });

  it('reports Stopped for a guest that powered off under restartPolicy Never', () => {
    expect(
      nextGuestStep(vm('Running', { restartPolicy: 'Never' }), guest('GUEST_PHASE_STOPPED')),
    ).toMatchObject({
      kind: 'report',
      phase: 'Stopped',
      ready: { reason: 'GuestPoweredOff' },
    });
  });

  it('leaves a Failed VM without a guest alone until its spec changes', () => {
    expect(nextGuestStep(vm('Failed', { restartPolicy: 'Never' }), undefined)).toMatchObject({
      kind: 'report',
      phase: 'Failed',
    });
    expect(
      nextGuestStep(vm('Failed', { restartPolicy: 'Never', generation: 2, observed: 1 }), undefined),
    ).toMatchObject({ kind: 'restart' });
  });

  it('stops a live guest when running is false', () => {
    for (const phase of ['GUEST_PHASE_RUNNING', 'GUEST_PHASE_STARTING', 'GUEST_PHASE_PAUSED'] as const) {
      expect(nextGuestStep(vm('Running', { running: false }), guest(phase))).toEqual({ kind: 'stop' });
    }
  });

  it('releases the node when running is false and the guest is down or gone', () => {
    for (const current of [guest('GUEST_PHASE_STOPPED'), guest('GUEST_PHASE_FAILED'), undefined]) {
      expect(nextGuestStep(vm('Stopping', { running: false }), current)).toEqual({ kind: 'release' });
    }
  });

  it('never touches a guest of the same name that belongs to another VM', () => {
    const foreign = guest('GUEST_PHASE_RUNNING', {
      spec: { ...guest('GUEST_PHASE_RUNNING').spec!, uuid: 'other' },
    });
    expect(nextGuestStep(vm('Starting'), foreign)).toMatchObject({ kind: 'conflict' });
    expect(nextGuestStep(vm('Running', { running: false }), foreign)).toMatchObject({ kind: 'conflict' });
  });
});

describe('conditionReason', () => {
  it('keeps CamelCase words and replaces anything else', () => {
    expect(conditionReason('Signaled', 'X')).toBe('Signaled');
    expect(conditionReason('killed by signal 9', 'X')).toBe('X');
    expect(conditionReason('', 'X')).toBe('X');
  });
});

describe('pendingRestart', () => {
  const running = guest('GUEST_PHASE_RUNNING');

  it("is undefined while the guest runs with the spec's cpu and memory", () => {
    expect(pendingRestart(vm('Running'), running)).toBeUndefined();
  });

  it('names each of cpu and memory that the running guest does not have yet', () => {
    const changed = vm('Running');
    changed.spec = { ...changed.spec, cpu: { cores: 2 }, memory: '1Gi' };
    expect(pendingRestart(changed, running)).toBe(
      'spec.cpu.cores is 2, the guest runs with 1; spec.memory is 1Gi, the guest runs with 256Mi: applied when ' +
        'the guest starts again (set spec.running to false, then back to true)',
    );
    const memoryOnly = vm('Running');
    memoryOnly.spec = { ...memoryOnly.spec, memory: '512Mi' };
    expect(pendingRestart(memoryOnly, running)).toMatch(/^spec\.memory is 512Mi, the guest runs with 256Mi:/);
  });
});
