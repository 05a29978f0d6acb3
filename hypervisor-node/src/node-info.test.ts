import type { GuestStatus } from './model/guest.js';
import { describeNode } from './node-info.js';

describe('describeNode', () => {
  const host = {
    cpus: 4,
    memoryMiB: 8192,
    qemuVersion: '10.0.2',
    hostCpuModel: 'Intel(R) Xeon(R) Processor',
  };
  const guest = (name: string, phase: GuestStatus['phase']): GuestStatus => ({
    name,
    uuid: '00000000-0000-4000-8000-000000000000',
    phase,
    accelerator: 'tcg',
    spec: {
      name,
      uuid: '',
      cpus: 1,
      memoryMiB: 512,
      boot: { kernel: '/k', cmdline: [] },
      disks: [],
      nics: [],
    },
  });

  it('subtracts the reservation and counts only guests that hold resources as allocated', () => {
    const network = { mode: 'bridge', bridge: 'tern0' } as const;
    const info = describeNode('node-a', host, 'tcg', { cpus: 1, memoryMiB: 512 }, network, [
      guest('a', 'Running'),
      guest('b', 'Starting'),
      guest('c', 'Stopped'),
    ]);
    expect(info).toEqual({
      nodeName: 'node-a',
      capacity: { cpus: 4, memoryMib: 8192 },
      allocatable: { cpus: 3, memoryMib: 7680 },
      allocated: { cpus: 2, memoryMib: 1024 },
      accelerator: 'ACCELERATOR_TCG',
      qemuVersion: '10.0.2',
      cpuModel: 'max',
      guestCount: 3,
      network: { mode: 'NETWORK_MODE_BRIDGE', bridge: 'tern0', limitation: '' },
    });
  });

  it('reports user-mode networking with its limitation', () => {
    const network = { mode: 'user', limitation: 'guests cannot reach each other' } as const;
    expect(describeNode('n', host, 'tcg', { cpus: 0, memoryMiB: 0 }, network, []).network).toEqual({
      mode: 'NETWORK_MODE_USER',
      bridge: '',
      limitation: 'guests cannot reach each other',
    });
  });

  it('reports the host CPU model under KVM', () => {
    const network = { mode: 'bridge', bridge: 'tern0' } as const;
    expect(describeNode('n', host, 'kvm', { cpus: 0, memoryMiB: 0 }, network, []).cpuModel).toBe(
      'Intel(R) Xeon(R) Processor',
    );
  });
});
