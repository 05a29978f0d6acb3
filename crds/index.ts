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

export * from './src/conditions.js';
export * from './src/formats.js';
export * from './src/hypervisornode.js';
export * from './src/migration.js';
export * from './src/migrationpolicy.js';
export * from './src/migrationsettings.js';
export * from './src/names.js';
export * from './src/quantities.js';
export * from './src/selectors.js';
export * from './src/virtualmachine.js';
export type { KindDefinition, PrinterColumn } from './src/definition.js';

export const API_GROUP = 'tern.dev';
export const API_VERSION_NAME = 'v1alpha1';
/** The `apiVersion` of every Tern object. */
export const API_VERSION = `${API_GROUP}/${API_VERSION_NAME}` as const;
export type ApiVersion = typeof API_VERSION;

/** The kubectl category of all four kinds: `kubectl get tern`. */
export const CATEGORY = 'tern';

export const KIND_DEFINITIONS: readonly KindDefinition[] = [
  virtualMachineDefinition,
  migrationDefinition,
  migrationPolicyDefinition,
  hypervisorNodeDefinition,
];

export const KINDS = {
  VirtualMachine: 'VirtualMachine',
  Migration: 'Migration',
  MigrationPolicy: 'MigrationPolicy',
  HypervisorNode: 'HypervisorNode',
} as const;
export type TernKind = keyof typeof KINDS;

/** Resource (plural) names, as used in API paths, RBAC rules and informers. */
export const PLURALS = {
  VirtualMachine: 'virtualmachines',
  Migration: 'migrations',
  MigrationPolicy: 'migrationpolicies',
  HypervisorNode: 'hypervisornodes',
} as const satisfies Record<TernKind, string>;

export const NAMESPACED = {
  VirtualMachine: true,
  Migration: true,
  MigrationPolicy: false,
  HypervisorNode: false,
} as const satisfies Record<TernKind, boolean>;

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

/** The `<plural>.<group>` name of a kind's CRD, e.g. "virtualmachines.tern.dev". */
export function crdName(kind: TernKind): string {
  return `${PLURALS[kind]}.${API_GROUP}`;
}

/**
 * The API path of a collection or an object, e.g. resourcePath('Migration', 'default', 'm1') →
 * "/apis/tern.dev/v1alpha1/namespaces/default/migrations/m1". `subresource` is "status" for status writes.
 */
export function resourcePath(
  kind: TernKind,
  namespace?: string,
  name?: string,
  subresource?: 'status',
): string {
  if (NAMESPACED[kind] && namespace === undefined && name !== undefined) {
    throw new Error(`${kind} is namespaced: a namespace is needed to address ${name}`);
  }
  if (!NAMESPACED[kind] && namespace !== undefined) throw new Error(`${kind} is cluster-scoped`);
  if (subresource && name === undefined) throw new Error('a subresource needs an object name');
  let path = `/apis/${API_VERSION}`;
  if (namespace !== undefined) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${PLURALS[kind]}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}

export function isTerminalMigrationPhase(phase: MigrationPhase | undefined): boolean {
  return phase !== undefined && (TERMINAL_MIGRATION_PHASES as readonly string[]).includes(phase);
}
