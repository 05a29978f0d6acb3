import { readFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import type { NodeInfo } from '../../proto/index.js';
import type { Accelerator, GuestStatus } from './model/guest.js';
import { detectQemuVersion, formatVersion } from './qemu/version.js';
import { toWireAccelerator } from './rpc/guest-wire.js';

/** Facts about the host that do not change while the daemon runs. */
export interface HostFacts {
  cpus: number;
  memoryMiB: number;
  /** e.g. '10.0.2' */
  qemuVersion: string;
  /** /proc/cpuinfo 'model name' of the first CPU, or 'unknown'. */
  hostCpuModel: string;
}

/** How guest NICs reach the network on this node, as reported to the operator. */
export type NetworkFacts = { mode: 'bridge'; bridge: string } | { mode: 'user'; limitation: string };

export interface Reservation {
  cpus: number;
  memoryMiB: number;
}

export async function probeHost(qemuBinary: string): Promise<HostFacts> {
  const version = await detectQemuVersion(qemuBinary);
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    cpus: cpus().length,
    memoryMiB: Math.floor(totalmem() / 2 ** 20),
    qemuVersion: formatVersion(version),
    hostCpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
  };
}

/** The CPU model guests see by default: QEMU's 'max' under TCG is the same on every host of one QEMU version. */
export function guestCpuModel(accelerator: Accelerator, host: HostFacts): string {
  return accelerator === 'tcg' ? 'max' : host.hostCpuModel;
}

/** Guests that hold resources: everything whose QEMU process is (or is about to be) alive. */
export function holdsResources(guest: GuestStatus): boolean {
  return guest.phase !== 'Stopped' && guest.phase !== 'Failed';
}

export function describeNode(
  nodeName: string,
  host: HostFacts,
  accelerator: Accelerator,
  reservation: Reservation,
  network: NetworkFacts,
  guests: GuestStatus[],
): NodeInfo {
  const active = guests.filter(holdsResources);
  return {
    nodeName,
    capacity: { cpus: host.cpus, memoryMib: host.memoryMiB },
    allocatable: {
      cpus: Math.max(0, host.cpus - reservation.cpus),
      memoryMib: Math.max(0, host.memoryMiB - reservation.memoryMiB),
    },
    allocated: {
      cpus: active.reduce((sum, guest) => sum + guest.spec.cpus, 0),
      memoryMib: active.reduce((sum, guest) => sum + guest.spec.memoryMiB, 0),
    },
    accelerator: toWireAccelerator(accelerator),
    qemuVersion: host.qemuVersion,
    cpuModel: guestCpuModel(accelerator, host),
    guestCount: guests.length,
    network:
      network.mode === 'bridge'
        ? { mode: 'NETWORK_MODE_BRIDGE', bridge: network.bridge, limitation: '' }
        : { mode: 'NETWORK_MODE_USER', bridge: '', limitation: network.limitation },
  };
}
