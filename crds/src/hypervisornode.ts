// HypervisorNode: one host running the Tern daemon. The daemon creates it and writes its status; admins
// write the spec (cordon, drain).
import { Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { PLURALS, scopeOf } from './api.js';
import { Conditions } from './conditions.js';
import { AGE_COLUMN } from './definition.js';
import type { KindDefinition } from './definition.js';
import { ByteQuantity } from './quantities.js';
import { StringEnum, Timestamp } from './schema.js';

export const ACCELERATORS = ['kvm', 'tcg'] as const;
export type Accelerator = (typeof ACCELERATORS)[number];

export const NETWORK_MODES = ['bridge', 'user'] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

export const EVACUATION_PHASES = ['Evacuating', 'Evacuated', 'Blocked'] as const;

/**
 * Condition types on HypervisorNode.status.conditions. Ready: the daemon reports, the operator sets False
 * (LeaseExpired) when it sees no heartbeat for the Lease's duration. Fenced: set by the operator; True once it has
 * seen no Lease renewal for the node's fence time plus its margin (its watchdog has killed its guests: its VMs may
 * start elsewhere), False (LeaseRenewed) when the node renews again.
 */
export const HYPERVISOR_NODE_CONDITIONS = { Ready: 'Ready', Fenced: 'Fenced' } as const;

/**
 * Annotation on a node's heartbeat Lease, written by its daemon with every renewal: the node's fence time in
 * seconds (its guests are killed that long after the last successful renewal started); "0" or absent: the node
 * does not fence itself, and its VMs are never started elsewhere. On the Lease rather than only in status, so that
 * the fence time the operator uses always comes with the renewal it measures from.
 */
export const FENCE_AFTER_ANNOTATION = 'tern.dev/fence-after-seconds';

export const HypervisorNodeSpec = Type.Object({
  unschedulable: Type.Optional(
    Type.Boolean({
      description:
        'Cordon: no new VM and no incoming migration is placed here. With node maintenance on, it mirrors the ' +
        'spec.unschedulable of the Kubernetes Node of the same name (annotation tern.dev/node-cordon-synced).',
    }),
  ),
  drain: Type.Optional(
    Type.Boolean({
      description:
        'Evacuate: implies unschedulable, and every VM here with evictionStrategy LiveMigrate gets a ' +
        'Migration (within the concurrency limits); the others stay and are reported as blocking the drain.',
    }),
  ),
});
export type HypervisorNodeSpec = Static<typeof HypervisorNodeSpec>;

export const NodeResources = Type.Object({
  cpu: Type.Integer({ minimum: 0, description: 'Virtual CPUs.' }),
  memory: ByteQuantity({ description: 'Guest memory.' }),
});
export type NodeResources = Static<typeof NodeResources>;

export const NodeNetwork = Type.Object({
  mode: StringEnum(NETWORK_MODES, {
    description:
      "bridge: each guest NIC is a tap on the node's bridge and keeps its MAC and IP across nodes. " +
      'user: QEMU user-mode networking (the daemon may not create taps), see limitation.',
  }),
  bridge: Type.Optional(
    Type.String({ maxLength: 15, description: 'The Linux bridge the guest taps join (mode bridge).' }),
  ),
  limitation: Type.Optional(
    Type.String({ maxLength: 1024, description: 'What guests cannot do on this node (mode user).' }),
  ),
});
export type NodeNetwork = Static<typeof NodeNetwork>;

export const Evacuation = Type.Object({
  phase: StringEnum(EVACUATION_PHASES, {
    description:
      'Evacuating: VMs are being moved. Evacuated: none is left. Blocked: one cannot be moved (see message).',
  }),
  startedAt: Type.Optional(Timestamp()),
  total: Type.Integer({ minimum: 0, description: 'VMs on the node when the drain began.' }),
  remaining: Type.Integer({ minimum: 0, description: 'VMs still on the node.' }),
  migrating: Type.Optional(Type.Integer({ minimum: 0 })),
  failed: Type.Optional(Type.Integer({ minimum: 0 })),
  message: Type.Optional(Type.String({ maxLength: 4096 })),
});

export const HypervisorNodeStatus = Type.Object({
  capacity: Type.Optional(NodeResources),
  allocatable: Type.Optional(NodeResources),
  accelerator: Type.Optional(
    StringEnum(ACCELERATORS, { description: 'A guest never migrates between kvm and tcg.' }),
  ),
  cpuModel: Type.Optional(
    Type.String({ maxLength: 256, description: 'CPU model QEMU exposes to guests here.' }),
  ),
  qemuVersion: Type.Optional(Type.String({ maxLength: 64, pattern: '^[0-9]+\\.[0-9]+(\\.[0-9]+)?' })),
  endpoint: Type.Optional(
    Type.String({
      description: "host:port of the daemon's gRPC API (control and migration streams), IPv6 in brackets.",
      maxLength: 261,
      pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$',
    }),
  ),
  vmCount: Type.Optional(Type.Integer({ minimum: 0 })),
  network: Type.Optional(NodeNetwork),
  conditions: Type.Optional(Conditions()),
  evacuation: Type.Optional(Evacuation),
  heartbeatTime: Type.Optional(Timestamp({ description: 'Last time the daemon reported.' })),
  fenceAfterSeconds: Type.Optional(
    Type.Integer({
      minimum: 0,
      description:
        "The daemon's fence time: its guests are killed when it has not renewed its Lease for this long. Absent " +
        'or 0: it does not fence itself, and its VMs are never started elsewhere when it is lost. (The operator ' +
        'reads the value from the Lease, annotation tern.dev/fence-after-seconds.)',
    }),
  ),
  observedGeneration: Type.Optional(Type.Integer({ format: 'int64', minimum: 0 })),
});
export type HypervisorNodeStatus = Static<typeof HypervisorNodeStatus>;

export const hypervisorNodeDefinition: KindDefinition = {
  kind: 'HypervisorNode',
  singular: 'hypervisornode',
  plural: PLURALS.HypervisorNode,
  shortNames: ['hvn'],
  scope: scopeOf('HypervisorNode'),
  description: 'A host running the Tern daemon: its capacity, accelerator, endpoint and health.',
  spec: HypervisorNodeSpec,
  status: HypervisorNodeStatus,
  specRequired: false,
  printerColumns: [
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Accelerator', type: 'string', jsonPath: '.status.accelerator' },
    { name: 'VMs', type: 'integer', jsonPath: '.status.vmCount' },
    { name: 'Allocatable-Memory', type: 'string', jsonPath: '.status.allocatable.memory' },
    { name: 'Unschedulable', type: 'boolean', jsonPath: '.spec.unschedulable' },
    AGE_COLUMN,
    { name: 'Endpoint', type: 'string', jsonPath: '.status.endpoint', priority: 1 },
    { name: 'QEMU', type: 'string', jsonPath: '.status.qemuVersion', priority: 1 },
  ],
};
