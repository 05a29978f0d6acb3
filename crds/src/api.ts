// The API's identity: group, version, kinds, plural resource names and scopes of the four Tern kinds. The kind
// definitions (src/<kind>.ts) read their plural and scope from here, so the CRDs and the clients cannot disagree.

export const API_GROUP = 'tern.dev';
export const API_VERSION_NAME = 'v1alpha1';
/** The `apiVersion` of every Tern object. */
export const API_VERSION = `${API_GROUP}/${API_VERSION_NAME}` as const;
export type ApiVersion = typeof API_VERSION;

/** The kubectl category of all four kinds: `kubectl get tern`. */
export const CATEGORY = 'tern';

export const KINDS = {
  VirtualMachine: 'VirtualMachine',
  Migration: 'Migration',
  MigrationPolicy: 'MigrationPolicy',
  HypervisorNode: 'HypervisorNode',
} as const;
export type TernKind = keyof typeof KINDS;

/** Resource (plural) names, as used in API paths, RBAC rules, informers and the CRDs. */
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

/** A kind's CRD scope, from NAMESPACED. */
export function scopeOf(kind: TernKind): 'Namespaced' | 'Cluster' {
  return NAMESPACED[kind] ? 'Namespaced' : 'Cluster';
}

/** The `<plural>.<group>` name of a kind's CRD, e.g. "virtualmachines.tern.dev". */
export function crdName(kind: TernKind): string {
  return `${PLURALS[kind]}.${API_GROUP}`;
}
