// Metadata helpers in the spirit of controller-runtime's controllerutil: keys, finalizers, owner references.
import type { KubeClient } from './client.js';
import { apiVersionOf } from './resources.js';
import type { JsonPatchOperation, KubeObject, ObjectKey, OwnerReference, ResourceType } from './types.js';

export function objectKey(object: KubeObject): ObjectKey {
  const { namespace, name } = object.metadata;
  if (!name) throw new Error('object has no metadata.name');
  return namespace ? `${namespace}/${name}` : name;
}

export function parseObjectKey(key: ObjectKey): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function hasFinalizer(object: KubeObject, finalizer: string): boolean {
  return object.metadata.finalizers?.includes(finalizer) ?? false;
}

export function isBeingDeleted(object: KubeObject): boolean {
  return object.metadata.deletionTimestamp !== undefined;
}

/**
 * Adds a finalizer with a compare-and-swap JSON patch; returns the updated object, or the given one when the
 * finalizer was already there. A ConflictError means the object changed since it was read: requeue.
 */
export async function addFinalizer<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  object: T,
  finalizer: string,
): Promise<T> {
  if (hasFinalizer(object, finalizer)) return object;
  const operation: JsonPatchOperation = object.metadata.finalizers
    ? { op: 'add', path: '/metadata/finalizers/-', value: finalizer }
    : { op: 'add', path: '/metadata/finalizers', value: [finalizer] };
  return patchMetadata(client, type, object, [operation]);
}

/** Removes only this finalizer (compare-and-swap); returns the object unchanged when it was not there. */
export async function removeFinalizer<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  object: T,
  finalizer: string,
): Promise<T> {
  const index = object.metadata.finalizers?.indexOf(finalizer) ?? -1;
  if (index < 0) return object;
  return patchMetadata(client, type, object, [{ op: 'remove', path: `/metadata/finalizers/${index}` }]);
}

function patchMetadata<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  object: T,
  operations: JsonPatchOperation[],
): Promise<T> {
  const { name, namespace, resourceVersion } = object.metadata;
  if (!name || !resourceVersion)
    throw new Error(`${type.kind}: finalizer patch needs name and resourceVersion`);
  return client.patch<T>(type, name, namespace, { type: 'json', operations }, { resourceVersion });
}

/** An owner reference to `owner`; `controller: true` marks the one owner that manages the dependent. */
export function ownerReference(
  owner: KubeObject,
  type: ResourceType,
  options: { controller?: boolean; blockOwnerDeletion?: boolean } = {},
): OwnerReference {
  const { name, uid } = owner.metadata;
  if (!name || !uid) throw new Error(`${type.kind}: owner needs name and uid (read it from the API first)`);
  return {
    apiVersion: apiVersionOf(type),
    kind: type.kind,
    name,
    uid,
    controller: options.controller ?? true,
    blockOwnerDeletion: options.blockOwnerDeletion ?? true,
  };
}

/**
 * Sets `owner` as the controller of `dependent` (in place) and returns whether metadata changed. The API forbids
 * cross-namespace owners, and an object can have only one controller.
 */
export function setControllerReference(
  dependent: KubeObject,
  owner: KubeObject,
  ownerType: ResourceType,
): boolean {
  if (ownerType.namespaced && owner.metadata.namespace !== dependent.metadata.namespace) {
    throw new Error(
      `cross-namespace owner: ${ownerType.kind} ${objectKey(owner)} cannot own an object in ${dependent.metadata.namespace ?? 'the cluster scope'}`,
    );
  }
  const reference = ownerReference(owner, ownerType, { controller: true });
  const references = dependent.metadata.ownerReferences ?? [];
  const current = references.find((r) => r.controller);
  if (current && current.uid !== reference.uid) {
    throw new Error(`${objectKey(dependent)} is already controlled by ${current.kind} ${current.name}`);
  }
  if (current) return false;
  dependent.metadata.ownerReferences = [...references.filter((r) => r.uid !== reference.uid), reference];
  return true;
}

/**
 * The RFC 3339 timestamp with microseconds that Lease and Event MicroTime fields require: the apiserver parses
 * exactly six fractional digits and Date#toISOString gives three (a plain ISO string gets a 400). Used by the
 * operator, the daemon's node Lease and the tests.
 */
export function microTime(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

/** metav1.Time: RFC 3339 with whole seconds. */
export function metaTime(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}
