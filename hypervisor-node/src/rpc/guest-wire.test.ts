import type { GuestSpec__Output } from '../../../proto/index.js';
import type { GuestStatus } from '../model/guest.js';
import { fromWireSpec, toWireGuest } from './guest-wire.js';

const wireSpec: GuestSpec__Output = {
  name: 'vm1',
  uuid: '3f0c9d52-7d1a-4c55-9a57-2b8e4f1a6c01',
  displayName: '',
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

  it('keeps explicit display name, machine, CPU model and initrd', () => {
    const spec = fromWireSpec({
      ...wireSpec,
      displayName: 'default/vm1',
      machine: 'pc',
      cpuModel: 'Skylake-Server',
      boot: { ...wireSpec.boot!, initrd: '/img/initrd' },
    });
    expect(spec).toMatchObject({
      displayName: 'default/vm1',
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
      reason: 'Exited',
      message: 'QEMU exited with status 1; last console lines:\nKernel panic',
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
      reason: 'Exited',
      message: 'QEMU exited with status 1; last console lines:\nKernel panic',
      startedAt: '',
      accelerator: 'ACCELERATOR_TCG',
      nics: [],
    });
  });

  it('writes each NIC backend with the MAC of its spec entry', () => {
    const spec = fromWireSpec({
      ...wireSpec,
      nics: [{ mac: '52:54:00:12:34:56' }, { mac: '52:54:00:ab:cd:ef' }],
    });
    const base = { name: 'vm1', uuid: wireSpec.uuid, phase: 'Running', accelerator: 'tcg', spec } as const;
    expect(
      toWireGuest({
        ...base,
        nics: [
          { kind: 'user', hostAddress: '127.0.0.1', hostPort: 40123, guestPort: 7000 },
          { kind: 'user', hostAddress: '127.0.0.1', hostPort: 40124, guestPort: 7000 },
        ],
      }).nics,
    ).toEqual([
      { mac: '52:54:00:12:34:56', user: { hostAddress: '127.0.0.1', hostPort: 40123, guestPort: 7000 } },
      { mac: '52:54:00:ab:cd:ef', user: { hostAddress: '127.0.0.1', hostPort: 40124, guestPort: 7000 } },
    ]);
    expect(toWireGuest({ ...base, nics: [{ kind: 'tap', ifname: 'tt0123456789abc' }] }).nics).toEqual([
      { mac: '52:54:00:12:34:56', tap: { ifname: 'tt0123456789abc' } },
    ]);
  });
});
