// Migration: one request to move a running VirtualMachine to another node. Its spec is fixed at creation;
// deleting it before the hand-over cancels it; afterwards it stays as a record.
import { CloneType, Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';
import { PLURALS, scopeOf } from './api.js';
import { Conditions } from './conditions.js';
import { AGE_COLUMN } from './definition.js';
import type { KindDefinition } from './definition.js';
import { MigrationSettings } from './migrationsettings.js';
import { DNS1123_LABEL_MAX_LENGTH, NodeName, VmName } from './names.js';
import { DISK_STORAGES, VM_DISKS_MAX } from './virtualmachine.js';
import { StringEnum, Timestamp, cel } from './schema.js';

export const MIGRATION_PHASES = [
  'Pending',
  'Scheduling',
  'Initializing',
  'Copying',
  'Quiescing',
  'Freezing',
  'PostCopy',
  'Succeeded',
  'Failed',
  'Aborted',
] as const;
export type MigrationPhase = (typeof MIGRATION_PHASES)[number];

export const TERMINAL_MIGRATION_PHASES = [
  'Succeeded',
  'Failed',
  'Aborted',
] as const satisfies readonly MigrationPhase[];

export const MIGRATION_FAILURE_REASONS = [
  'VMNotFound',
  'VMNotRunning',
  'AlreadyMigrating',
  'TargetIsSource',
  'TargetNotFound',
  'TargetNotReady',
  'NoTargetAvailable',
  'InsufficientCapacity',
  'IncompatibleTarget',
  // spec.overrides exceed a ceiling of a MigrationPolicy that selects the VM (refused at admission, never clamped).
  'PolicyViolation',
  'Timeout',
  'Stalled',
  'Cancelled',
  'SourceFailed',
  'TargetFailed',
  'TransportFailed',
  'HandoverFailed',
  // A post-copy migration could not finish (either QEMU died, or the link broke): the guest's state was split
  // between the nodes, both QEMUs were stopped and the VM restarts from scratch by its restartPolicy.
  'PostCopyFailed',
  // The source or target node was lost (no Lease renewal for its fence time plus the operator's margin).
  'NodeLost',
  'Internal',
] as const;
export type MigrationFailureReason = (typeof MIGRATION_FAILURE_REASONS)[number];

export const MigrationSpec = Type.Object(
  {
    vmName: VmName({ description: "The VirtualMachine to move, in the Migration's namespace." }),
    targetNode: Type.Optional(
      NodeName({ description: 'The HypervisorNode to move to. When absent the operator picks one.' }),
    ),
    overrides: Type.Optional(
      CloneType(MigrationSettings, {
        description:
          'Settings for this migration only; unset fields come from the matching MigrationPolicy. An override ' +
          'above a ceiling of a MigrationPolicy that selects the VM refuses the Migration (PolicyViolation).',
      }),
    ),
  },
  cel({ rule: 'self == oldSelf', message: 'spec is immutable: delete the Migration and create a new one' }),
);
export type MigrationSpec = Static<typeof MigrationSpec>;

export const PhaseTiming = Type.Object({
  phase: StringEnum(MIGRATION_PHASES),
  startedAt: Timestamp(),
  durationMs: Type.Optional(
    Type.Integer({ format: 'int64', minimum: 0, description: 'Set when the phase has ended.' }),
  ),
});
export type PhaseTiming = Static<typeof PhaseTiming>;

const Bytes = (description: string) =>
  Type.Optional(Type.Integer({ format: 'int64', minimum: 0, description }));

export const MigrationProgress = Type.Object({
  round: Type.Optional(
    Type.Integer({ minimum: 0, description: 'Pre-copy iteration (QEMU dirty-sync count).' }),
  ),
  transferredBytes: Bytes('Bytes sent so far.'),
  remainingBytes: Bytes('Bytes QEMU still has to send.'),
  totalBytes: Bytes('Guest memory size.'),
  dirtyBytesPerSecond: Bytes('Rate at which the guest dirties memory.'),
  throughputBytesPerSecond: Bytes('Measured transfer rate.'),
  expectedDowntimeMs: Type.Optional(Type.Integer({ minimum: 0 })),
  percent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  diskTransferredBytes: Bytes(
    'Local disks: bytes the mirrors copied so far (before and along the memory); equal to diskTotalBytes once the disks are final at the switchover.',
  ),
  diskTotalBytes: Bytes(
    "Local disks: bytes to copy, growing with the guest's writes during the migration; absent for a VM without local disks.",
  ),
});
export type MigrationProgress = Static<typeof MigrationProgress>;

export const MigrationDowntime = Type.Object({
  qemuMs: Type.Optional(Type.Integer({ minimum: 0, description: 'Downtime reported by the source QEMU.' })),
  guestGapMs: Type.Optional(
    Type.Integer({
      minimum: 0,
      description:
        "How long the guest was paused as the operator saw it: from the source's pause (Quiescing, or Freezing) " +
        'to the target running it (QEMU downtime plus the hand-over; for post-copy, to the target running it ' +
        'at the post-copy switch, while the remaining pages still streamed). Unset when the operator restarted ' +
        'during the switchover.',
    }),
  ),
  postCopyMs: Type.Optional(
    Type.Integer({
      minimum: 0,
      description:
        'Post-copy only: how long the guest ran on the target while its remaining pages still came from the ' +
        "source, as the operator saw it (from the target's resume to the source's outcome). Not a pause: a " +
        'page the guest touches first waits for its transfer.',
    }),
  ),
});

const Count = (description: string) => Type.Integer({ format: 'int64', minimum: 0, description });

export const QuiescedDisk = Type.Object({
  name: Type.String({ maxLength: DNS1123_LABEL_MAX_LENGTH }),
  storage: StringEnum(DISK_STORAGES),
  writes: Count("The guest's writes QEMU had completed on the disk when it paused the guest."),
  flushes: Count("The guest's flushes QEMU had completed on the disk when it paused the guest."),
  writesAfterPause: Count(
    'Writes completed between the pause and the end of Quiescing: 0 on a quiesced disk.',
  ),
  flushesAfterPause: Count('Flushes completed between the pause and the end of Quiescing: 0.'),
  otherAfterPause: Count('Reads, discards, failed and invalid requests after the pause: 0.'),
  mirrorCompleted: Type.Boolean({
    description:
      "A local disk's mirror concluded: the target's copy is final (always false for a shared disk).",
  }),
  flushed: Type.Boolean({
    description:
      "Flushed by QEMU's pause, and no request reached the disk since (the counters did not move).",
  }),
});
export type QuiescedDisk = Static<typeof QuiescedDisk>;

export const MigrationQuiesce = Type.Object(
  {
    durationMs: Count('From the pause before the switchover to the end of Quiescing.'),
    disks: Type.Array(QuiescedDisk, { maxItems: VM_DISKS_MAX }),
    error: Type.Optional(
      Type.String({ maxLength: 1024, description: 'Why Quiescing failed or did not finish.' }),
    ),
  },
  {
    description:
      "The source's Quiescing step (docs/disks.md): the guest paused, in-flight requests drained, every disk " +
      'flushed and no I/O since the pause, the local disks mirrored to the end.',
  },
);
export type MigrationQuiesce = Static<typeof MigrationQuiesce>;

/**
 * The steps of a switchover, in the order they normally happen (docs/monitoring.md "The switchover timeline"). The
 * source's QEMU completes only once the target acknowledged its load on the return path, so SourceCompleted comes
 * after TargetLoaded: the last byte left the source before TargetLoaded.
 */
export const SWITCHOVER_STEPS = [
  'SourcePaused',
  'SourceQuiescing',
  'FramesSteered',
  'ContinueSent',
  'SourceContinued',
  'TargetLoaded',
  'SourceCompleted',
  'OutcomeSent',
  'OutcomeReceived',
  'OwnershipRecorded',
  'ResumeRequested',
  'TargetResumed',
  'FirstFrame',
  'ResumeAcknowledged',
] as const;
export type SwitchoverStepName = (typeof SWITCHOVER_STEPS)[number];

export const SwitchoverStep = Type.Object({
  step: StringEnum(SWITCHOVER_STEPS),
  at: Timestamp({ description: "When the step happened, on the operator's clock." }),
  offsetMs: Type.Number({
    description: "Milliseconds after SourcePaused, on the operator's clock (0.01 ms resolution).",
  }),
  node: Type.Optional(
    NodeName({
      description:
        "The node whose clock stamped the step (converted with its offset in clocks); absent: the operator's.",
    }),
  ),
});
export type SwitchoverStep = Static<typeof SwitchoverStep>;

export const SwitchoverClock = Type.Object({
  node: NodeName(),
  offsetMs: Type.Number({ description: "The node's clock minus the operator's, in milliseconds." }),
  errorBoundMs: Type.Number({
    minimum: 0,
    description:
      'How far offsetMs may be off: half the shortest round trip of the readings it was measured with.',
  }),
});
export type SwitchoverClock = Static<typeof SwitchoverClock>;

export const MigrationSwitchover = Type.Object(
  {
    steps: Type.Array(SwitchoverStep, { maxItems: SWITCHOVER_STEPS.length }),
    clocks: Type.Array(SwitchoverClock, { maxItems: 2 }),
    firstFrameResolutionMs: Type.Optional(
      Type.Number({
        minimum: 0,
        description:
          "FirstFrame lies within this many milliseconds before its time: the interval between the two reads of the tap's counter that bracket it.",
      }),
    ),
    framesBeforeResume: Type.Optional(
      Type.Integer({
        format: 'int64',
        minimum: 0,
        description:
          "Frames the guest's NIC sent on the target's tap before TargetResumed, while the guest was paused there.",
      }),
    ),
    note: Type.Optional(
      Type.String({
        maxLength: 1024,
        description: 'Why a step is missing (e.g. no FirstFrame without a tap).',
      }),
    ),
  },
  {
    description:
      "The switchover's steps on one clock, the operator's (each daemon's offset measured by round trips): from the " +
      "source's pause to the target running the guest and its first frame. Only for a migration whose switchover " +
      'this operator process saw. For post-copy, the steps up to the post-copy switch (the target runs the ' +
      'guest from TargetResumed; the source completes later, see downtime.postCopyMs).',
  },
);
export type MigrationSwitchover = Static<typeof MigrationSwitchover>;

export const MigrationStatus = Type.Object({
  phase: Type.Optional(StringEnum(MIGRATION_PHASES)),
  sourceNode: Type.Optional(NodeName()),
  targetNode: Type.Optional(NodeName()),
  phaseTimings: Type.Optional(
    Type.Array(PhaseTiming, {
      maxItems: MIGRATION_PHASES.length,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['phase'],
    }),
  ),
  progress: Type.Optional(MigrationProgress),
  downtime: Type.Optional(MigrationDowntime),
  switchover: Type.Optional(MigrationSwitchover),
  quiesce: Type.Optional(MigrationQuiesce),
  failureReason: Type.Optional(StringEnum(MIGRATION_FAILURE_REASONS)),
  message: Type.Optional(Type.String({ maxLength: 4096 })),
  conditions: Type.Optional(Conditions()),
  observedGeneration: Type.Optional(Type.Integer({ format: 'int64', minimum: 0 })),
});
export type MigrationStatus = Static<typeof MigrationStatus>;

export const migrationDefinition: KindDefinition = {
  kind: 'Migration',
  singular: 'migration',
  plural: PLURALS.Migration,
  shortNames: ['mig'],
  scope: scopeOf('Migration'),
  description: 'A request to live-migrate a VirtualMachine, and the record of how it went.',
  spec: MigrationSpec,
  status: MigrationStatus,
  specRequired: true,
  printerColumns: [
    { name: 'VM', type: 'string', jsonPath: '.spec.vmName' },
    { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
    { name: 'Source', type: 'string', jsonPath: '.status.sourceNode' },
    { name: 'Target', type: 'string', jsonPath: '.status.targetNode' },
    {
      name: 'Progress',
      type: 'integer',
      jsonPath: '.status.progress.percent',
      description: 'Percent copied.',
    },
    {
      name: 'Downtime-ms',
      type: 'integer',
      jsonPath: '.status.downtime.qemuMs',
      description: 'Downtime reported by QEMU, in milliseconds.',
    },
    AGE_COLUMN,
    {
      name: 'Quiesce-ms',
      type: 'integer',
      jsonPath: '.status.quiesce.durationMs',
      description: 'How long Quiescing took, in milliseconds.',
      priority: 1,
    },
    { name: 'Reason', type: 'string', jsonPath: '.status.failureReason', priority: 1 },
  ],
};

/** On a Migration the operator's evacuation of a drained HypervisorNode created: the node it empties. */
export const EVACUATION_NODE_LABEL = 'tern.dev/evacuation-of';
