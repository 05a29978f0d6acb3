// Resource types — which REST collection objects of a kind live in — and the one builder of API paths, for any
// group (core, built-in or custom). The four Tern kinds as ResourceTypes are here too: the shared Kubernetes
// client (kube/), the operator's informers and the CLI all address Tern objects through them.
import { API_GROUP, API_VERSION_NAME, KINDS, NAMESPACED, PLURALS, type TernKind } from './api.js';

/** Which REST collection an object lives in; enough to build every URL the client needs. */
export interface ResourceType {
  /** '' for the core group. */
  group: string;
  version: string;
  /** Lower-case plural as in the URL, e.g. 'virtualmachines'. */
  plural: string;
  kind: string;
  namespaced: boolean;
}

export function customResource(
  group: string,
  version: string,
  kind: string,
  plural: string,
  namespaced: boolean,
): ResourceType {
  return { group, version, kind, plural, namespaced };
}

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

/** The collection URL, e.g. /apis/tern.dev/v1alpha1/namespaces/ns/virtualmachines or /api/v1/namespaces. */
export function collectionPath(type: ResourceType, namespace?: string): string {
  const root = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  if (type.namespaced && namespace)
    return `${root}/namespaces/${encodeURIComponent(namespace)}/${type.plural}`;
  return `${root}/${type.plural}`;
}

export function objectPath(
  type: ResourceType,
  name: string,
  namespace?: string,
  subresource?: string,
): string {
  if (type.namespaced && !namespace) throw new Error(`${type.kind} ${name}: namespace required`);
  const path = `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
  return subresource ? `${path}/${subresource}` : path;
}

/** A Tern kind as a ResourceType. */
export function ternResource(kind: TernKind): ResourceType {
  return customResource(API_GROUP, API_VERSION_NAME, KINDS[kind], PLURALS[kind], NAMESPACED[kind]);
}

export const VirtualMachines = ternResource('VirtualMachine');
export const HypervisorNodes = ternResource('HypervisorNode');
export const Migrations = ternResource('Migration');
export const MigrationPolicies = ternResource('MigrationPolicy');
