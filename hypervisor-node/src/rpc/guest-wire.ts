// Conversions between the daemon's guest types (model/guest.ts) and the tern.node.v1alpha1 wire messages.
import type {
  Accelerator as WireAccelerator,
  Guest,
  GuestPhase as WirePhase,
  GuestSpec__Output,
  NicAttachment,
} from '../../../proto/index.js';
import type { Accelerator, GuestPhase, GuestDefinition, GuestStatus, NicBackend } from '../model/guest.js';

const WIRE_PHASES: Record<GuestPhase, WirePhase> = {
  Starting: 'GUEST_PHASE_STARTING',
  Running: 'GUEST_PHASE_RUNNING',
  Paused: 'GUEST_PHASE_PAUSED',
  Stopping: 'GUEST_PHASE_STOPPING',
  Stopped: 'GUEST_PHASE_STOPPED',
  Failed: 'GUEST_PHASE_FAILED',
};

export function toWireAccelerator(accelerator: Accelerator): WireAccelerator {
  return accelerator === 'kvm' ? 'ACCELERATOR_KVM' : 'ACCELERATOR_TCG';
}

function toWireNic(mac: string, backend: NicBackend): NicAttachment {
  return backend.kind === 'tap'
    ? { mac, tap: { ifname: backend.ifname } }
    : {
        mac,
        user: { hostAddress: backend.hostAddress, hostPort: backend.hostPort, guestPort: backend.guestPort },
      };
}

/** reason and message pass through unchanged: the supervisor already writes them in the wire's terms. */
export function toWireGuest(status: GuestStatus): Guest {
  const { spec } = status;
  return {
    spec: {
      name: spec.name,
      uuid: spec.uuid,
      displayName: spec.displayName ?? '',
      cpus: spec.cpus,
      memoryMib: spec.memoryMiB,
      machine: spec.machine ?? '',
      cpuModel: spec.cpuModel ?? '',
      boot: { kernel: spec.boot.kernel, initrd: spec.boot.initrd ?? '', cmdline: spec.boot.cmdline },
      disks: spec.disks.map((disk) => ({
        path: disk.path,
        readOnly: disk.readOnly,
        format: disk.format === 'qcow2' ? 'DISK_FORMAT_QCOW2' : 'DISK_FORMAT_RAW',
      })),
      nics: spec.nics.map((nic) => ({ mac: nic.mac })),
    },
    phase: WIRE_PHASES[status.phase],
    pid: status.pid ?? 0,
    reason: status.reason ?? '',
    message: status.message ?? '',
    startedAt: status.startedAt ?? '',
    accelerator: toWireAccelerator(status.accelerator),
    // Backends are recorded per spec NIC, in order; the MAC ties each one to its NIC for the reader.
    nics: (status.nics ?? []).map((backend, i) => toWireNic(spec.nics[i]?.mac ?? '', backend)),
  };
}

/** proto3 has no "unset" for scalars: empty strings mean "the daemon's default". */
export function fromWireSpec(spec: GuestSpec__Output): GuestDefinition {
  return {
    name: spec.name,
    uuid: spec.uuid,
    ...(spec.displayName ? { displayName: spec.displayName } : {}),
    cpus: spec.cpus,
    memoryMiB: spec.memoryMib,
    ...(spec.machine ? { machine: spec.machine } : {}),
    ...(spec.cpuModel ? { cpuModel: spec.cpuModel } : {}),
    boot: {
      kernel: spec.boot?.kernel ?? '',
      ...(spec.boot?.initrd ? { initrd: spec.boot.initrd } : {}),
      cmdline: spec.boot?.cmdline ?? [],
    },
    disks: spec.disks.map((disk) => ({
      path: disk.path,
      readOnly: disk.readOnly,
      ...(disk.format === 'DISK_FORMAT_QCOW2' ? { format: 'qcow2' as const } : {}),
    })),
    nics: spec.nics.map((nic) => ({ mac: nic.mac })),
  };
}
