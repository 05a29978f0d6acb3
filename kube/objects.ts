// Metadata helpers in the spirit of controller-runtime's controllerutil (keys, finalizers), and API timestamps.
import type { KubeClient } from './client.js';
import type { JsonPatchOperation, KubeObject, ObjectKey, ResourceType } from './types.js';

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
