import type { GuestSpec__Output } from '../../../proto/index.js';
import type { GuestStatus } from '../guests/types.js';
import { fromWireSpec, toWireGuest } from './convert.js';

const wireSpec: GuestSpec__Output = {
  name: 'vm1',
  uuid: '3f0c9d52-7d1a-4c55-9a57-2b8e4f1a6c01',
  cpus: 2,
  memoryMib: 1024,
  machine: '',
  cpuModel: '',
  boot: { kernel: '/img/vmlinuz', initrd: '', cmdline: ['quiet'] },
  disks: [
    { path: '/img/root.qcow2', readOnly: false, format: 'DISK_FORMAT_QCOW2' },
    { path: '/img/data.raw', readOnly: true, format: 'DISK_FORMAT_UNSPECIFIED' },
  ],
  nics: [{ mac: '52:54:00:12:34:56' }],
};

describe('wire conversion', () => {
  it('reads empty proto3 strings as "use the daemon default"', () => {
    expect(fromWireSpec(wireSpec)).toEqual({
      name: 'vm1',
      uuid: '3f0c9d52-7d1a-4c55-9a57-2b8e4f1a6c01',
      cpus: 2,
      memoryMiB: 1024,
      boot: { kernel: '/img/vmlinuz', cmdline: ['quiet'] },
      disks: [
        { path: '/img/root.qcow2', readOnly: false, format: 'qcow2' },
        { path: '/img/data.raw', readOnly: true },
      ],
      nics: [{ mac: '52:54:00:12:34:56' }],
    });
  });

  it('keeps explicit machine, CPU model and initrd', () => {
    const spec = fromWireSpec({
      ...wireSpec,
      machine: 'pc',
      cpuModel: 'Skylake-Server',
      boot: { ...wireSpec.boot!, initrd: '/img/initrd' },
    });
    expect(spec).toMatchObject({
      machine: 'pc',
      cpuModel: 'Skylake-Server',
      boot: { initrd: '/img/initrd' },
    });
  });

  it('writes a guest status with its phase, accelerator and spec', () => {
    const status: GuestStatus = {
      name: 'vm1',
      uuid: wireSpec.uuid,
      phase: 'Failed',
      reason: 'QEMU exited with status 1',
      accelerator: 'tcg',
      spec: fromWireSpec(wireSpec),
    };
    expect(toWireGuest(status)).toEqual({
      spec: {
        ...wireSpec,
        disks: [
          { path: '/img/root.qcow2', readOnly: false, format: 'DISK_FORMAT_QCOW2' },
          { path: '/img/data.raw', readOnly: true, format: 'DISK_FORMAT_RAW' },
        ],
      },
      phase: 'GUEST_PHASE_FAILED',
      pid: 0,
      reason: 'QEMU exited with status 1',
      message: '',
      startedAt: '',
      accelerator: 'ACCELERATOR_TCG',
    });
  });
});
