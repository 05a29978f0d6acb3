import type { VirtualMachine } from '../../../crds/index.js';
import { cmdlineWords, configuredGuestAddress, toGuestSpec, vmMacAddress } from './guest-spec.js';

function vm(
  spec: Partial<VirtualMachine['spec']> = {},
  uid = '0b5e2a8c-5d6f-4a61-9c1e-8f7d3b2a1c00',
): VirtualMachine {
  return {
    apiVersion: 'tern.dev/v1alpha1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm01', namespace: 'default', uid },
    spec: {
      running: true,
      cpu: { cores: 2 },
      memory: '1Gi',
      boot: {
        kernel: {
          path: '/images/vmlinux',
          initrdPath: '/images/initrd.img',
          cmdline: ' panic=-1  tern.wss_mib=16 ',
        },
      },
      ...spec,
    },
  };
}

describe('toGuestSpec', () => {
  it('names the guest by the uid (namespace/name for display) and maps CPUs, memory in MiB, kernel boot, one NIC', () => {
    expect(toGuestSpec(vm({ network: { macAddress: '52:54:00:AB:CD:EF' } }))).toEqual({
      name: '0b5e2a8c-5d6f-4a61-9c1e-8f7d3b2a1c00',
      uuid: '0b5e2a8c-5d6f-4a61-9c1e-8f7d3b2a1c00',
      displayName: 'default/vm01',
      namespace: 'default',
      cpus: 2,
      memoryMib: 1024,
      boot: {
        kernel: '/images/vmlinux',
        initrd: '/images/initrd.img',
        cmdline: ['panic=-1', 'tern.wss_mib=16'],
      },
      disks: [],
      nics: [{ mac: '52:54:00:ab:cd:ef' }],
    });
  });

  it('accepts memory as a byte count or in other units', () => {
    expect(toGuestSpec(vm({ memory: 268435456 })).memoryMib).toBe(256);
    expect(toGuestSpec(vm({ memory: '2048Mi' })).memoryMib).toBe(2048);
  });

  it('maps disks with their settings in spec order, marks the boot disk, and sends no kernel boot', () => {
    const spec = toGuestSpec(
      vm({
        boot: { disk: 'root' },
        disks: [
          {
            name: 'data',
            path: '/images/data.qcow2',
            format: 'qcow2',
            readOnly: true,
            storage: 'shared',
            bus: 'sata',
            cache: 'none',
            io: 'native',
          },
          { name: 'root', path: '/images/root.raw', storage: 'local' },
        ],
      }),
    );
    expect(spec.boot).toBeUndefined();
    expect(spec.disks).toEqual([
      {
        name: 'data',
        path: '/images/data.qcow2',
        readOnly: true,
        format: 'DISK_FORMAT_QCOW2',
        bus: 'DISK_BUS_SATA',
        cache: 'DISK_CACHE_NONE',
        io: 'DISK_IO_NATIVE',
        storage: 'DISK_STORAGE_SHARED',
        boot: false,
      },
      {
        name: 'root',
        path: '/images/root.raw',
        readOnly: false,
        format: 'DISK_FORMAT_RAW',
        bus: 'DISK_BUS_VIRTIO',
        cache: 'DISK_CACHE_WRITEBACK',
        io: 'DISK_IO_THREADS',
        storage: 'DISK_STORAGE_LOCAL',
        boot: true,
      },
    ]);
  });

  it('sends an empty initrd and no words when they are absent', () => {
    expect(toGuestSpec(vm({ boot: { kernel: { path: '/images/vmlinux' } } })).boot).toEqual({
      kernel: '/images/vmlinux',
      initrd: '',
      cmdline: [],
    });
  });
});

describe('vmMacAddress', () => {
  it('derives a stable, locally administered unicast MAC from the uid', () => {
    const mac = vmMacAddress(vm());
    expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    const first = parseInt(mac.slice(0, 2), 16);
    expect(first & 0x01).toBe(0);
    expect(first & 0x02).toBe(2);
    expect(vmMacAddress(vm())).toBe(mac);
    expect(vmMacAddress(vm({}, 'another-uid'))).not.toBe(mac);
  });

  it('prefers spec.network.macAddress, lower-cased', () => {
    expect(vmMacAddress(vm({ network: { macAddress: '0A:00:00:00:00:01' } }))).toBe('0a:00:00:00:00:01');
  });
});

describe('cmdlineWords', () => {
  it('splits on any whitespace', () => {
    expect(cmdlineWords('a=1\tb  c\n')).toEqual(['a=1', 'b', 'c']);
    expect(cmdlineWords(undefined)).toEqual([]);
  });
});

describe('configuredGuestAddress', () => {
  const withCmdline = (cmdline: string) => vm({ boot: { kernel: { path: '/images/vmlinux', cmdline } } });

  it("is the address of the guest init's tern.ip=addr/prefix (the last one wins, like the init's loop)", () => {
    expect(configuredGuestAddress(withCmdline('panic=-1 tern.ip=10.77.0.10/24 tern.port=7000'))).toBe(
      '10.77.0.10',
    );
    expect(configuredGuestAddress(withCmdline('tern.ip=10.0.0.1/24 tern.ip=fd00::5/64'))).toBe('fd00::5');
  });

  it('is unknown without tern.ip, with a malformed one, and for a disk boot', () => {
    expect(configuredGuestAddress(withCmdline('panic=-1 ip=10.0.0.2'))).toBeUndefined();
    expect(configuredGuestAddress(withCmdline('tern.ip=eth0/24'))).toBeUndefined();
    expect(configuredGuestAddress(withCmdline('tern.ip='))).toBeUndefined();
    expect(
      configuredGuestAddress(
        vm({
          boot: { disk: 'root' },
          disks: [{ name: 'root', path: '/images/root.qcow2', format: 'qcow2', storage: 'shared' }],
        }),
      ),
    ).toBeUndefined();
  });
});
