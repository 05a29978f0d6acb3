// VirtualMachine: a guest the operator keeps running on one hypervisor node at a time.
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { PLURALS, scopeOf } from './api.js';
import { Conditions } from './conditions.js';
import { AGE_COLUMN } from './definition.js';
import type { KindDefinition } from './definition.js';
import { DNS1123_LABEL_MAX_LENGTH, DNS1123_LABEL_PATTERN, NodeName, ObjectName } from './names.js';
import { ByteQuantity, quantityBoundsRule } from './quantities.js';
import { StringEnum, StringMap, Timestamp, cel } from './schema.js';

export const VM_CPU_CORES_MIN = 1;
export const VM_CPU_CORES_MAX = 64;
// 64Mi: the daemon's floor for a guest that boots a Linux kernel (hypervisor-node/src/qemu/validate.ts).
export const VM_MEMORY_MIN = '64Mi';
export const VM_MEMORY_MAX = '1Ti';
export const VM_DISKS_MAX = 16;
/** SATA disks sit on the q35 machine's built-in AHCI controller, one per port. */
export const VM_SATA_DISKS_MAX = 6;

export const VM_PHASES = [
  'Pending',
  'Scheduling',
  'Starting',
  'Running',
  'Migrating',
  'Stopping',
  'Stopped',
  'Failed',
  'Unknown',
] as const;
export type VirtualMachinePhase = (typeof VM_PHASES)[number];

export const EVICTION_STRATEGIES = ['LiveMigrate', 'None'] as const;
export const RESTART_POLICIES = ['Always', 'Never'] as const;
export const NODE_LOSS_POLICIES = ['Wait', 'Restart'] as const;
export type NodeLossPolicy = (typeof NODE_LOSS_POLICIES)[number];
export const DISK_FORMATS = ['raw', 'qcow2'] as const;
export const DISK_BUSES = ['virtio', 'sata'] as const;
export const DISK_CACHES = ['writeback', 'none', 'writethrough'] as const;
export const DISK_IO_MODES = ['threads', 'native', 'io_uring'] as const;
export const DISK_STORAGES = ['shared', 'local'] as const;
export const SOURCE_COPY_POLICIES = ['Delete', 'Retain'] as const;
export type SourceCopyPolicy = (typeof SOURCE_COPY_POLICIES)[number];
export const MIGRATION_RESULTS = ['Succeeded', 'Failed', 'Aborted'] as const;

/**
 * An absolute path on the hypervisor host. The daemon only opens paths in the VM's namespace directory or, read-only,
 * under a shared image root (docs/images.md); the API additionally refuses ".." segments and commas (QEMU's option
 * separator) so such values never reach a node.
 */
const HostPath = (description: string) =>
  Type.String({
    description,
    minLength: 2,
    maxLength: 4096,
    pattern: '^/[^,]*$',
    ...cel({
      rule: "!self.contains('/../') && !self.endsWith('/..')",
      message: 'path must not contain ".." segments',
    }),
  });

export const KernelBoot = Type.Object({
  path: HostPath('Kernel image (bzImage/vmlinuz) on the host.'),
  initrdPath: Type.Optional(HostPath('Initial ramdisk on the host.')),
  cmdline: Type.Optional(
    Type.String({
      description: 'Kernel command line; the daemon adds the serial console.',
      // x86 COMMAND_LINE_SIZE (2048) minus room for the console word the daemon prepends.
      maxLength: 2000,
      pattern: '^[^\\x00-\\x1f\\x7f]*$',
    }),
  ),
});

export const BootSource = Type.Object(
  {
    kernel: Type.Optional(KernelBoot),
    disk: Type.Optional(
      Type.String({
        description:
          'Boot from this entry of spec.disks (by name): the firmware (SeaBIOS) runs the boot loader on the disk ' +
          '(an MBR disk image; no UEFI), which loads the kernel with its own command line.',
        maxLength: DNS1123_LABEL_MAX_LENGTH,
        pattern: DNS1123_LABEL_PATTERN,
      }),
    ),
  },
  {
    description: 'Where the guest boots from: a kernel (+initrd, cmdline) or one of the disks. Exactly one.',
    ...cel({
      rule: 'has(self.kernel) != has(self.disk)',
      message: 'boot must set exactly one of kernel or disk',
    }),
  },
);

export const Disk = Type.Object(
  {
    name: Type.String({ maxLength: DNS1123_LABEL_MAX_LENGTH, pattern: DNS1123_LABEL_PATTERN }),
    path: HostPath('Disk image on the host.'),
    format: Type.Optional(StringEnum(DISK_FORMATS, { default: 'raw' })),
    readOnly: Type.Optional(Type.Boolean({ default: false })),
    storage: StringEnum(DISK_STORAGES, {
      description:
        'shared: every node sees the same image at the same path (NFS, a cluster filesystem); a migration moves ' +
        'only the memory, and the target opens the image after the source has flushed and let go. local: the ' +
        'image lives on the node; a migration copies it live into a new image at the same path on the target ' +
        '(for a qcow2 overlay on a base image every node has, only the overlay).',
    }),
    bus: Type.Optional(
      StringEnum(DISK_BUSES, {
        description: `virtio: virtio-blk. sata: AHCI, for guests without virtio (at most ${VM_SATA_DISKS_MAX}).`,
        default: 'virtio',
      }),
    ),
    cache: Type.Optional(
      StringEnum(DISK_CACHES, {
        description:
          "writeback: the host's page cache, the guest's flushes reach stable storage. none: O_DIRECT, flushes " +
          'still honoured. writethrough: every write reaches stable storage before it completes.',
        default: 'writeback',
      }),
    ),
    io: Type.Optional(
      StringEnum(DISK_IO_MODES, {
        description:
          'How QEMU submits I/O: a thread pool, Linux native AIO (needs cache: none), or io_uring.',
        default: 'threads',
      }),
    ),
    sourceCopyAfterMigration: Type.Optional(
      StringEnum(SOURCE_COPY_POLICIES, {
        description:
          "storage: local only. What happens to the source node's copy of the image once a migration succeeded " +
          '(the guest runs on the target; never earlier). Delete (the default): it is removed. Retain: it is kept ' +
          'on the source node, moved aside to <path>.tern-retained-<migration id> (so that a later migration back ' +
          "finds the path free), as the Migration's message and a SourceCopyRetained Event say; an " +
          'administrator removes it.',
      }),
    ),
  },
  cel(
    {
      rule: "!has(self.io) || self.io != 'native' || (has(self.cache) && self.cache == 'none')",
      message: 'io: native needs cache: none (native AIO works on O_DIRECT files only)',
      fieldPath: '.io',
    },
    {
      // A migration mirrors a local disk into a writable copy on the target, which the target's QEMU would open
      // read-only: QEMU cannot take the mirror's writes on a read-only node.
      rule: "self.storage != 'local' || !has(self.readOnly) || !self.readOnly",
      message:
        'a storage: local disk cannot be readOnly (its live migration writes a copy on the target); ' +
        'use storage: shared for a read-only image every node has',
      fieldPath: '.readOnly',
    },
    {
      rule: "self.storage == 'local' || !has(self.sourceCopyAfterMigration)",
      message: 'sourceCopyAfterMigration applies to storage: local disks only (a shared image is not copied)',
      fieldPath: '.sourceCopyAfterMigration',
    },
  ),
);
export type Disk = Static<typeof Disk>;

export const VmNetwork = Type.Object({
  macAddress: Type.Optional(
    Type.String({
      description:
        'Locally administered unicast MAC of the guest NIC (the second hex digit is 2, 6, A or E, e.g. ' +
        '52:54:00:…). When absent the operator derives a stable locally administered address from the VM UID ' +
        'and records it in status.macAddress; it survives migrations.',
      pattern: '^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$',
      maxLength: 17,
      ...cel(
        {
          rule: "self.matches('^.[02468aceACE]')",
          message: 'macAddress must be a unicast address (the first octet must be even)',
        },
        {
          // A globally administered address belongs to some vendor's hardware; the daemons refuse it.
          rule: "!self.matches('^.[02468aceACE]') || self.matches('^.[26aeAE]')",
          message: 'macAddress must be locally administered (the second hex digit must be 2, 6, A or E)',
        },
      ),
    }),
  ),
});

export const Placement = Type.Object({
  nodeName: Type.Optional(NodeName({ description: 'Run on this HypervisorNode only.' })),
  nodeSelector: Type.Optional(StringMap({ description: 'Run only on HypervisorNodes with these labels.' })),
});

export const VirtualMachineSpec = Type.Object(
  {
    running: Type.Boolean({ description: 'Whether the guest should be running.' }),
    cpu: Type.Object({
      cores: Type.Integer({
        description: 'Virtual CPUs.',
        minimum: VM_CPU_CORES_MIN,
        maximum: VM_CPU_CORES_MAX,
      }),
    }),
    memory: ByteQuantity({
      description: `Guest memory, e.g. "1Gi" (${VM_MEMORY_MIN}..${VM_MEMORY_MAX}, a whole number of MiB).`,
      ...cel(
        {
          rule: quantityBoundsRule(VM_MEMORY_MIN, VM_MEMORY_MAX),
          message: `memory must be between ${VM_MEMORY_MIN} and ${VM_MEMORY_MAX}`,
        },
        {
          rule:
            // Out-of-range values are left to the bounds rule (asInteger() fails beyond int64).
            `!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('${VM_MEMORY_MAX}')) > 0 || ` +
            '(quantity(string(self)).isInteger() && quantity(string(self)).asInteger() % 1048576 == 0)',
          message: 'memory must be a whole number of MiB',
        },
      ),
    }),
    boot: BootSource,
    disks: Type.Optional(
      Type.Array(Disk, {
        maxItems: VM_DISKS_MAX,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
        ...cel({
          rule: `self.filter(d, has(d.bus) && d.bus == 'sata').size() <= ${VM_SATA_DISKS_MAX}`,
          message: `at most ${VM_SATA_DISKS_MAX} disks on bus sata (the AHCI controller has ${VM_SATA_DISKS_MAX} ports)`,
        }),
      }),
    ),
    network: Type.Optional(VmNetwork),
    evictionStrategy: Type.Optional(
      StringEnum(EVICTION_STRATEGIES, {
        description:
          'LiveMigrate: move the guest away when its node is drained. None: it stays on the node and blocks the drain until its owner stops or moves it.',
        default: 'LiveMigrate',
      }),
    ),
    restartPolicy: Type.Optional(
      StringEnum(RESTART_POLICIES, {
        description: 'Whether a guest that crashed or exited on its own is started again.',
        default: 'Always',
      }),
    ),
    nodeLossPolicy: Type.Optional(
      StringEnum(NODE_LOSS_POLICIES, {
        description:
          'What happens when the node running the guest is lost (its daemon has not renewed its Lease for the ' +
          "node's fence time plus the operator's margin, so the node has killed the guest). Wait: the VM keeps " +
          'its node and reports NodeLost until the node returns (then restartPolicy applies there). Restart: the ' +
          'guest starts on another Ready node (the ownership record moves there, epoch + 1); needs disks every ' +
          'node sees, so a VM with a storage: local disk cannot have it. Never restarted elsewhere from a node ' +
          'that does not fence itself.',
        default: 'Wait',
      }),
    ),
    placement: Type.Optional(Placement),
  },
  cel(
    {
      rule: '!has(self.boot.disk) || (has(self.disks) && self.disks.exists(d, d.name == self.boot.disk))',
      message: 'boot.disk must name an entry of disks',
      fieldPath: '.boot.disk',
    },
    {
      // The lost node holds the only copy of a local disk: a restart elsewhere would find no image there (or a
      // stale one), so such a VM waits for its node.
      rule:
        "!has(self.nodeLossPolicy) || self.nodeLossPolicy != 'Restart' || !has(self.disks) || " +
        "!self.disks.exists(d, d.storage == 'local')",
      message:
        'nodeLossPolicy: Restart needs disks every node sees: a storage: local disk lives only on the lost ' +
        'node (use nodeLossPolicy: Wait, or storage: shared)',
      fieldPath: '.nodeLossPolicy',
    },
  ),
);
export type VirtualMachineSpec = Static<typeof VirtualMachineSpec>;

export const LastMigration = Type.Object({
  name: ObjectName({ description: 'The Migration object.' }),
  sourceNode: NodeName(),
  targetNode: Type.Optional(NodeName()),
  result: StringEnum(MIGRATION_RESULTS),
  downtimeMs: Type.Optional(Type.Integer({ minimum: 0, description: 'Downtime QEMU reported.' })),
  finishedAt: Timestamp(),
});
export type LastMigration = Static<typeof LastMigration>;

export const VirtualMachineStatus = Type.Object({
  phase: Type.Optional(StringEnum(VM_PHASES)),
  node: Type.Optional(NodeName({ description: 'The node that owns (runs) the guest.' })),
  epoch: Type.Optional(
    Type.Integer({
      format: 'int64',
      minimum: 0,
      description:
        'Ownership epoch. Moving the guest to another node is one compare-and-swap of (node, epoch) on this ' +
        'status; a daemon resumes a guest only while the record names it with its epoch.',
    }),
  ),
  activeMigration: Type.Optional(ObjectName({ description: 'The Migration currently moving the guest.' })),
  guestAddress: Type.Optional(Type.String({ maxLength: 64, description: 'IP address of the guest.' })),
  macAddress: Type.Optional(Type.String({ maxLength: 17, description: 'MAC address in use.' })),
  conditions: Type.Optional(Conditions()),
  observedGeneration: Type.Optional(Type.Integer({ format: 'int64', minimum: 0 })),
  lastMigration: Type.Optional(LastMigration),
});
export type VirtualMachineStatus = Static<typeof VirtualMachineStatus>;

/**
 * The ownership record after it moves to `node` (a placement, a migration's hand-over, or its reversal): that
 * node, with the epoch one higher than the record's now. Written only by compare-and-swap on the VM's status.
 */
export function ownershipMovedTo(
  status: VirtualMachineStatus | undefined,
  node: string,
): Required<Pick<VirtualMachineStatus, 'node' | 'epoch'>> {
  return { node, epoch: (status?.epoch ?? 0) + 1 };
}

export const virtualMachineDefinition: KindDefinition = {
  kind: 'VirtualMachine',
  singular: 'virtualmachine',
  plural: PLURALS.VirtualMachine,
  // KubeVirt already uses vm/vms/vmi; Tern's names must not shadow them in clusters that run both.
  shortNames: ['tvm'],
  scope: scopeOf('VirtualMachine'),
  description: 'A QEMU guest that Tern runs on one hypervisor node at a time and can live-migrate.',
  spec: VirtualMachineSpec,
  status: VirtualMachineStatus,
  specRequired: true,
  rootRules: [
    {
      rule: `self.metadata.name.size() <= ${DNS1123_LABEL_MAX_LENGTH} && self.metadata.name.matches('${DNS1123_LABEL_PATTERN}')`,
      message:
        'metadata.name must be a DNS-1123 label (at most 63 characters): it names the guest and its QEMU process',
    },
  ],
  printerColumns: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Node', type: 'string', jsonPath: '.status.node' },
    { name: 'CPUs', type: 'integer', jsonPath: '.spec.cpu.cores' },
    { name: 'Memory', type: 'string', jsonPath: '.spec.memory' },
    AGE_COLUMN,
    { name: 'Address', type: 'string', jsonPath: '.status.guestAddress', priority: 1 },
    { name: 'Epoch', type: 'integer', jsonPath: '.status.epoch', priority: 1 },
  ],
};
