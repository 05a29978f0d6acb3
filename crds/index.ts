// Tern's API (group tern.dev, version v1alpha1): TypeScript types, constants and small helpers shared by the
// operator, the daemon and the CLI. The CRD YAML is generated from the same schemas (crds/generate.ts).
import type { KindDefinition } from './src/definition.js';
import type { HypervisorNodeSpec, HypervisorNodeStatus } from './src/hypervisornode.js';
import { hypervisorNodeDefinition } from './src/hypervisornode.js';
import type { MigrationPhase, MigrationSpec, MigrationStatus } from './src/migration.js';
import { TERMINAL_MIGRATION_PHASES, migrationDefinition } from './src/migration.js';
import type { MigrationPolicySpec, MigrationPolicyStatus } from './src/migrationpolicy.js';
import { migrationPolicyDefinition } from './src/migrationpolicy.js';
import type { VirtualMachineSpec, VirtualMachineStatus } from './src/virtualmachine.js';
import { virtualMachineDefinition } from './src/virtualmachine.js';
import type { ApiVersion, TernKind } from './src/api.js';

export * from './src/api.js';
export * from './src/conditions.js';
export * from './src/formats.js';
export * from './src/hypervisornode.js';
export * from './src/kstatus.js';
export * from './src/migration.js';
export * from './src/migrationpolicy.js';
export * from './src/migrationsettings.js';
export * from './src/names.js';
export * from './src/quantities.js';
export * from './src/resources.js';
export * from './src/selectors.js';
export * from './src/virtualmachine.js';
export type { KindDefinition, PrinterColumn } from './src/definition.js';

export const KIND_DEFINITIONS: readonly KindDefinition[] = [
  virtualMachineDefinition,
  migrationDefinition,
  migrationPolicyDefinition,
  hypervisorNodeDefinition,
];

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Object metadata as it travels over the wire: plain JSON, timestamps as RFC 3339 strings. */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

/** A Tern object: the Kubernetes envelope around a spec and status whose types come from the schemas. */
export interface TernObject<K extends TernKind, Spec, Status> {
  apiVersion: ApiVersion;
  kind: K;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export type VirtualMachine = TernObject<'VirtualMachine', VirtualMachineSpec, VirtualMachineStatus>;
export type Migration = TernObject<'Migration', MigrationSpec, MigrationStatus>;
export type MigrationPolicy = TernObject<'MigrationPolicy', MigrationPolicySpec, MigrationPolicyStatus>;
/** The daemon may register its node without a spec. */
export type HypervisorNode = Omit<
  TernObject<'HypervisorNode', HypervisorNodeSpec, HypervisorNodeStatus>,
  'spec'
> & {
  spec?: HypervisorNodeSpec;
};

export interface TernList<T> {
  apiVersion: ApiVersion;
  kind: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export function isTerminalMigrationPhase(phase: MigrationPhase | undefined): boolean {
  return phase !== undefined && (TERMINAL_MIGRATION_PHASES as readonly string[]).includes(phase);
}
