// Conversions between the daemon's guest types (model/guest.ts) and the tern.node.v1alpha1 wire messages.
import {
  fromWireEnum,
  WIRE_DISK_BUSES,
  WIRE_DISK_CACHES,
  WIRE_DISK_FORMATS,
  WIRE_DISK_IO_MODES,
  WIRE_DISK_STORAGES,
} from '../../../proto/index.js';
import type {
  Accelerator as WireAccelerator,
  Disk__Output,
  Guest,
  GuestPhase as WirePhase,
  GuestSpec__Output,
  LocalDiskImage as WireLocalDiskImage,
  LocalDiskImage__Output,
  NicAttachment,
} from '../../../proto/index.js';
import { backingFilePath } from '../qemu/image-header.js';
import { baseIdentity, readImageHeader, type LocalDiskImage } from '../qemu/local-image.js';
import type { QemuUser } from '../qemu/run-as.js';
import type {
  Accelerator,
  DiskSpec,
  DiskStorage,
  GuestPhase,
  GuestDefinition,
  GuestStatus,
  NicBackend,
} from '../model/guest.js';

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
      namespace: spec.namespace ?? '',
      cpus: spec.cpus,
      memoryMib: spec.memoryMiB,
      machine: spec.machine ?? '',
      cpuModel: spec.cpuModel ?? '',
      ...(spec.boot
        ? { boot: { kernel: spec.boot.kernel, initrd: spec.boot.initrd ?? '', cmdline: spec.boot.cmdline } }
        : {}),
      disks: spec.disks.map((disk) => ({
        name: disk.name,
        path: disk.path,
        readOnly: disk.readOnly,
        format: WIRE_DISK_FORMATS[disk.format ?? 'raw'],
        bus: WIRE_DISK_BUSES[disk.bus],
        cache: WIRE_DISK_CACHES[disk.cache],
        io: WIRE_DISK_IO_MODES[disk.io],
        storage: WIRE_DISK_STORAGES[disk.storage],
        boot: disk.boot,
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
    ...(spec.namespace ? { namespace: spec.namespace } : {}),
    cpus: spec.cpus,
    memoryMiB: spec.memoryMib,
    ...(spec.machine ? { machine: spec.machine } : {}),
    ...(spec.cpuModel ? { cpuModel: spec.cpuModel } : {}),
    ...(isKernelBoot(spec.boot)
      ? {
          boot: {
            kernel: spec.boot.kernel,
            ...(spec.boot.initrd ? { initrd: spec.boot.initrd } : {}),
            cmdline: spec.boot.cmdline,
          },
        }
      : {}),
    disks: spec.disks.map(fromWireDisk),
    nics: spec.nics.map((nic) => ({ mac: nic.mac })),
  };
}

/**
 * An unset boot, or one with every field empty, means disk boot. A boot with an initrd or a command line but no
 * kernel stays a kernel boot, which validation refuses for its empty kernel (never silently a disk boot).
 */
function isKernelBoot(boot: GuestSpec__Output['boot']): boot is NonNullable<GuestSpec__Output['boot']> {
  return boot != null && (boot.kernel !== '' || boot.initrd !== '' || boot.cmdline.length > 0);
}

/**
 * Unspecified bus, cache and io take their defaults; an unspecified storage stays unset, so validation refuses it
 * (whether a migration copies the disk is never guessed).
 */
function fromWireDisk(disk: Disk__Output): DiskSpec {
  return {
    name: disk.name,
    path: disk.path,
    readOnly: disk.readOnly,
    ...(disk.format === 'DISK_FORMAT_QCOW2' ? { format: 'qcow2' as const } : {}),
    bus: fromWireEnum(WIRE_DISK_BUSES, disk.bus) ?? 'virtio',
    cache: fromWireEnum(WIRE_DISK_CACHES, disk.cache) ?? 'writeback',
    io: fromWireEnum(WIRE_DISK_IO_MODES, disk.io) ?? 'threads',
    storage: fromWireEnum(WIRE_DISK_STORAGES, disk.storage) as DiskStorage,
    boot: disk.boot,
  };
}

/**
 * The image of each `storage: local` disk of `spec`, read from its file (Guest.local_disks); a disk whose image
 * cannot be read is left out, and a migration target then refuses the guest saying which disk it lacks.
 */
export async function localDiskImages(
  spec: GuestDefinition,
  qemuUser: QemuUser | undefined,
): Promise<WireLocalDiskImage[]> {
  const local = spec.disks.filter((disk) => disk.storage === 'local');
  const images = await Promise.all(
    local.map(async (disk): Promise<LocalDiskImage | undefined> => {
      try {
        const header = await readImageHeader(disk.path, disk.format ?? 'raw');
        if (header.backingFile === undefined) return { name: disk.name, ...header };
        // An overlay's base: the target compares it with its own (hashed once per file version).
        const base = backingFilePath(header.backingFile, disk.path);
        if ('problem' in base) return undefined;
        return { name: disk.name, ...header, backingIdentity: await baseIdentity(base.path, qemuUser) };
      } catch {
        return undefined;
      }
    }),
  );
  return images
    .filter((image) => image !== undefined)
    .map((image) => ({
      name: image.name,
      virtualSizeBytes: image.virtualSizeBytes,
      backingFile: image.backingFile ?? '',
      backingIdentity: image.backingIdentity ?? '',
      backingFormat:
        image.backingFormat === undefined
          ? 'DISK_FORMAT_UNSPECIFIED'
          : image.backingFormat === 'qcow2'
            ? 'DISK_FORMAT_QCOW2'
            : 'DISK_FORMAT_RAW',
    }));
}

/** PrepareIncomingRequest.local_disks in the daemon's terms (sizes arrive as decimal strings or numbers). */
export function fromWireLocalDisks(disks: readonly LocalDiskImage__Output[]): LocalDiskImage[] {
  return disks.map((disk) => ({
    name: disk.name,
    virtualSizeBytes: Number(disk.virtualSizeBytes),
    ...(disk.backingFile !== ''
      ? {
          backingFile: disk.backingFile,
          ...(disk.backingIdentity !== '' ? { backingIdentity: disk.backingIdentity } : {}),
          ...(disk.backingFormat === 'DISK_FORMAT_QCOW2'
            ? { backingFormat: 'qcow2' as const }
            : disk.backingFormat === 'DISK_FORMAT_RAW'
              ? { backingFormat: 'raw' as const }
              : {}),
        }
      : {}),
  }));
}
