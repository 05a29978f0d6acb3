// What the VirtualMachine reconciler does once it knows the VM, that its node is Ready, and the daemon's view of the
// guest. Pure, so that every branch is unit-tested; the reconciler performs the returned step.
import type { VirtualMachine, VirtualMachinePhase } from '../../../crds/index.js';
import { parseByteQuantity } from '../../../crds/index.js';
import type { Guest__Output } from '../../../proto/index.js';

export type GuestStep =
  /** Create the guest on the VM's node (first start, or a retry after a spec change). */
  | { kind: 'create' }
  /** The guest died or vanished while it should run and restartPolicy is Always: recreate it on the same node. */
  | { kind: 'restart'; cause: string; message: string }
  /** running: false — power the guest down, then delete it and release the node. */
  | { kind: 'stop' }
  /** running: false and the guest is already down (or gone): delete it and release the node. */
  | { kind: 'release' }
  /** Nothing to do on the daemon: report this phase and Ready condition. */
  | { kind: 'report'; phase: VirtualMachinePhase; ready: ReadyState }
  /** A guest of this name exists on the node but belongs to another VM: never touch it. */
  | { kind: 'conflict'; message: string };

export interface ReadyState {
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

const CONDITION_REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

/** A daemon's reason as a condition reason (CamelCase, validated by the CRD); `fallback` when it is not one. */
export function conditionReason(reason: string | undefined, fallback: string): string {
  return reason && CONDITION_REASON.test(reason) && reason.length <= 1024 ? reason : fallback;
}

function describe(guest: Guest__Output): string {
  return [guest.reason, guest.message].filter(Boolean).join(': ') || guest.phase;
}

/** Phases in which no guest on the node is expected yet: it is about to be (re)created. */
const CREATING: readonly (VirtualMachinePhase | undefined)[] = ['Pending', 'Scheduling', 'Starting'];

export function nextGuestStep(vm: VirtualMachine, guest: Guest__Output | undefined): GuestStep {
  if (guest && guest.spec?.uuid !== vm.metadata.uid) {
    return {
      kind: 'conflict',
      message: `node ${vm.status?.node} runs another guest under this VM's key ${vm.metadata.uid} (uuid ${guest.spec?.uuid})`,
    };
  }
  const phase = vm.status?.phase;
  if (!vm.spec.running) {
    if (!guest || guest.phase === 'GUEST_PHASE_STOPPED' || guest.phase === 'GUEST_PHASE_FAILED') {
      return { kind: 'release' };
    }
    return { kind: 'stop' };
  }
  const restartAlways = (vm.spec.restartPolicy ?? 'Always') === 'Always';
  if (!guest) {
    if (CREATING.includes(phase)) return { kind: 'create' };
    const specChanged = vm.metadata.generation !== vm.status?.observedGeneration;
    if ((phase === 'Failed' || phase === 'Stopped') && !specChanged) {
      return { kind: 'report', phase, ready: notReady(vm, phase) };
    }
    if (restartAlways || specChanged) {
      return {
        kind: 'restart',
        cause: 'GuestVanished',
        message: `the daemon on ${vm.status?.node} no longer has the guest`,
      };
    }
    return {
      kind: 'report',
      phase: 'Failed',
      ready: {
        status: 'False',
        reason: 'GuestVanished',
        message: `the daemon on ${vm.status?.node} lost the guest`,
      },
    };
  }
  switch (guest.phase) {
    case 'GUEST_PHASE_RUNNING':
      return {
        kind: 'report',
        phase: 'Running',
        ready: {
          status: 'True',
          reason: 'GuestRunning',
          message: `QEMU pid ${guest.pid} on ${vm.status?.node}`,
        },
      };
    case 'GUEST_PHASE_PAUSED':
      return {
        kind: 'report',
        phase: 'Running',
        ready: { status: 'False', reason: 'GuestPaused', message: describe(guest) },
      };
    case 'GUEST_PHASE_STOPPING':
      return {
        kind: 'report',
        phase: 'Stopping',
        ready: { status: 'False', reason: 'GuestStopping', message: describe(guest) },
      };
    case 'GUEST_PHASE_STOPPED':
    case 'GUEST_PHASE_FAILED': {
      const failed = guest.phase === 'GUEST_PHASE_FAILED';
      const cause = conditionReason(guest.reason, failed ? 'GuestFailed' : 'GuestPoweredOff');
      // A guest already reported down stays so until the spec changes (restartPolicy Never).
      if (restartAlways) return { kind: 'restart', cause, message: describe(guest) };
      return {
        kind: 'report',
        phase: failed ? 'Failed' : 'Stopped',
        ready: { status: 'False', reason: cause, message: describe(guest) },
      };
    }
    default:
      return {
        kind: 'report',
        phase: 'Starting',
        ready: { status: 'False', reason: 'GuestStarting', message: describe(guest) },
      };
  }
}

function notReady(vm: VirtualMachine, phase: VirtualMachinePhase): ReadyState {
  const current = vm.status?.conditions?.find((c) => c.type === 'Ready');
  return current && current.status !== 'True'
    ? { status: current.status, reason: current.reason, message: current.message }
    : { status: 'False', reason: phase, message: `the guest is ${phase.toLowerCase()}` };
}

const MiB = 1024 * 1024;

/**
 * What of the spec the running guest does not have yet: cpu and memory are fixed when QEMU starts, so a change
 * of them on a running VM takes effect only when the guest starts again. Undefined when the guest matches.
 */
export function pendingRestart(vm: VirtualMachine, guest: Guest__Output): string | undefined {
  const running = guest.spec;
  if (!running) return undefined;
  const differences: string[] = [];
  if (running.cpus !== vm.spec.cpu.cores) {
    differences.push(`spec.cpu.cores is ${vm.spec.cpu.cores}, the guest runs with ${running.cpus}`);
  }
  const memoryMib = Math.ceil(parseByteQuantity(vm.spec.memory) / MiB);
  if (running.memoryMib !== memoryMib) {
    differences.push(`spec.memory is ${vm.spec.memory}, the guest runs with ${running.memoryMib}Mi`);
  }
  if (differences.length === 0) return undefined;
  return (
    `${differences.join('; ')}: applied when the guest starts again ` +
    '(set spec.running to false, then back to true)'
  );
}
