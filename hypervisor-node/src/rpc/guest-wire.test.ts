import type { GuestSpec__Output } from '../../../proto/index.js';
import type { GuestStatus } from '../model/guest.js';
import { fromWireSpec, toWireGuest } from './guest-wire.js';

const wireSpec: GuestSpec__Output = {
  name: 'vm1',
  uuid: '3f0c9d52-7d1a-4c55-9a57-2b8e4f1a6c01',
  displayName: '',
  namespace: '',
  cpus: 2,
  memoryMib: 1024,
  machine: '',
  cpuModel: '',
  boot: { kernel: '/img/vmlinuz', initrd: '', cmdline: ['quiet'] },
  disks: [
    {
      name: 'root',
      path: '/img/root.qcow2',
      readOnly: false,
      format: 'DISK_FORMAT_QCOW2',
      bus: 'DISK_BUS_SATA',
      cache: 'DISK_CACHE_NONE',
      io: 'DISK_IO_NATIVE',
      storage: 'DISK_STORAGE_LOCAL',
      boot: true,
    },
    {
      name: 'data',
      path: '/img/data.raw',
      readOnly: true,
      format: 'DISK_FORMAT_UNSPECIFIED',
      bus: 'DISK_BUS_UNSPECIFIED',
      cache: 'DISK_CACHE_UNSPECIFIED',
      io: 'DISK_IO_UNSPECIFIED',
      storage: 'DISK_STORAGE_UNSPECIFIED',
      boot: false,
    },
  ],
  nics: [{ mac: '52:54:00:12:34:56' }],
};

/** wireSpec as the daemon writes it back: every enum spelled out, the second disk shared. */
const specWithDefaults: GuestSpec__Output = {
  ...wireSpec,
  disks: [
    wireSpec.disks[0]!,
    {
      ...wireSpec.disks[1]!,
      format: 'DISK_FORMAT_RAW',
      bus: 'DISK_BUS_VIRTIO',
      cache: 'DISK_CACHE_WRITEBACK',
      io: 'DISK_IO_THREADS',
      storage: 'DISK_STORAGE_SHARED',
    },
  ],
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
        {
          name: 'root',
          path: '/img/root.qcow2',
          readOnly: false,
          format: 'qcow2',
          bus: 'sata',
          cache: 'none',
          io: 'native',
          storage: 'local',
          boot: true,
        },
        // Unspecified bus, cache and io take the defaults; storage stays unset for validation to refuse.
        {
          name: 'data',
          path: '/img/data.raw',
          readOnly: true,
          bus: 'virtio',
          cache: 'writeback',
          io: 'threads',
          storage: undefined,
          boot: false,
        },
      ],
      nics: [{ mac: '52:54:00:12:34:56' }],
    });
  });

  it('keeps explicit display name, namespace, machine, CPU model and initrd', () => {
    const spec = fromWireSpec({
      ...wireSpec,
      displayName: 'default/vm1',
      namespace: 'default',
      machine: 'pc',
      cpuModel: 'Skylake-Server',
      boot: { ...wireSpec.boot!, initrd: '/img/initrd' },
    });
    expect(spec).toMatchObject({
      displayName: 'default/vm1',
      namespace: 'default',
      machine: 'pc',
      cpuModel: 'Skylake-Server',
      boot: { initrd: '/img/initrd' },
    });
  });

  it('reads an unset or all-empty boot as disk boot, and a boot with words but no kernel as a kernel boot', () => {
    expect('boot' in fromWireSpec({ ...wireSpec, boot: null })).toBe(false);
    expect('boot' in fromWireSpec({ ...wireSpec, boot: { kernel: '', initrd: '', cmdline: [] } })).toBe(
      false,
    );
    // Never silently a disk boot: validation refuses the empty kernel.
    expect(fromWireSpec({ ...wireSpec, boot: { kernel: '', initrd: '', cmdline: ['quiet'] } }).boot).toEqual({
      kernel: '',
      cmdline: ['quiet'],
    });
    expect(
      fromWireSpec({ ...wireSpec, boot: { kernel: '', initrd: '/img/initrd', cmdline: [] } }).boot,
    ).toEqual({
      kernel: '',
      initrd: '/img/initrd',
      cmdline: [],
    });
  });

  it('writes a disk-boot spec without a boot, and reads it back the same', () => {
    const diskBoot = { ...specWithDefaults, boot: null };
    const status: GuestStatus = {
      name: 'vm1',
      uuid: wireSpec.uuid,
      phase: 'Running',
      accelerator: 'tcg',
      spec: fromWireSpec(diskBoot),
    };
    const written = toWireGuest(status).spec!;
    expect('boot' in written).toBe(false);
    expect(fromWireSpec({ ...written, boot: null } as GuestSpec__Output)).toEqual(status.spec);
  });

  it('writes a guest status with its phase, accelerator and spec', () => {
    const status: GuestStatus = {
      name: 'vm1',
      uuid: wireSpec.uuid,
      phase: 'Failed',
      reason: 'Exited',
      message: 'QEMU exited with status 1; last console lines:\nKernel panic',
      accelerator: 'tcg',
      spec: fromWireSpec(specWithDefaults),
    };
    expect(toWireGuest(status)).toEqual({
      spec: specWithDefaults,
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
